import json

from channels.generic.websocket import WebsocketConsumer

from .protocol import InvalidMessage, parse_message


class ChatConsumer(WebsocketConsumer):
    """One instance per open WebSocket, like one view call per request.

    Synchronous: Channels runs each handler in a worker thread so that it
    cannot block the server's event loop. All synchronous consumers in the
    process share that one thread, so a handler that waits holds up the other
    consumers in the process too (notebook 03 measures it).
    """

    def connect(self):
        self.accept()

    def disconnect(self, close_code):
        pass

    def receive(self, text_data=None, bytes_data=None):
        try:
            message = parse_message(text_data, bytes_data)
        except InvalidMessage as error:
            # Answer bad input instead of raising: an exception here would
            # drop the connection and print a traceback in the server log.
            self.send(text_data=json.dumps({"error": str(error)}))
            return

        # Echo: the message goes back to this socket, and to no one else.
        self.send(text_data=json.dumps({"message": message}))


class RejectConsumer(WebsocketConsumer):
    """Refuses WebSocket paths that no chat route matches."""

    def connect(self):
        # Closing before accept() turns the handshake down with HTTP 403.
        self.close()
