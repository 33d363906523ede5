import json

from channels.generic.websocket import AsyncWebsocketConsumer

from .protocol import InvalidMessage, parse_message


class ChatConsumer(AsyncWebsocketConsumer):
    """One instance per open WebSocket, like one view call per request.

    Asynchronous: the handlers run on the server's event loop, with no
    thread of their own. While one awaits, the others keep running, so a
    handler must await slow work and never block: no time.sleep, no blocking
    library call (run it through sync_to_async). The ORM's plain methods raise
    SynchronousOnlyOperation here; use its async ones (aget, acreate...).
    """

    async def connect(self):
        await self.accept()

    async def disconnect(self, close_code):
        pass

    async def receive(self, text_data=None, bytes_data=None):
        try:
            message = parse_message(text_data, bytes_data)
        except InvalidMessage as error:
            # Answer bad input instead of raising: an exception here would
            # drop the connection and print a traceback in the server log.
            await self.send(text_data=json.dumps({"error": str(error)}))
            return

        # Echo: the message goes back to this socket, and to no one else.
        await self.send(text_data=json.dumps({"message": message}))


class RejectConsumer(AsyncWebsocketConsumer):
    """Refuses WebSocket paths that no chat route matches."""

    async def connect(self):
        # Closing before accept() turns the handshake down with HTTP 403.
        await self.close()
