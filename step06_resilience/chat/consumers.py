import asyncio
import json

from channels.generic.websocket import AsyncWebsocketConsumer
from redis.exceptions import RedisError

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
        self.room_name = self.scope["url_route"]["kwargs"]["room_name"]
        # Every room is a group on the channel layer. The room name is safe
        # to use here: routing.py only lets through valid group-name characters.
        self.room_group_name = f"chat_{self.room_name}"

        # self.channel_name is this consumer's own mailbox on the layer.
        await self.channel_layer.group_add(self.room_group_name, self.channel_name)
        await self.accept()
        self.renewal = asyncio.create_task(self.stay_in_the_room())

    ended = False  # set when the consumer ends (__call__)

    async def stay_in_the_room(self):
        # The layer forgets a member group_expiry seconds after its group_add
        # (settings.py): a tab open longer would stop hearing its room. Join
        # again, three times per expiry, for as long as the socket is open.
        while not self.ended:
            await asyncio.sleep(self.channel_layer.group_expiry / 3)
            try:
                await self.channel_layer.group_add(self.room_group_name, self.channel_name)
            except RedisError:
                pass  # an outage: the guard closes this socket, the page comes back

    async def __call__(self, scope, receive, send):
        try:
            await super().__call__(scope, receive, send)
        finally:
            # Also when the consumer ends with an error, and disconnect()
            # never runs: a member that stops renewing is gone within
            # group_expiry, even from a Redis that kept its data. The loops
            # also end at their next turn, whatever became of the cancel.
            self.ended = True
            if hasattr(self, "renewal"):
                self.renewal.cancel()

    async def disconnect(self, close_code):
        await self.channel_layer.group_discard(self.room_group_name, self.channel_name)

    async def receive(self, text_data=None, bytes_data=None):
        try:
            message = parse_message(text_data, bytes_data)
        except InvalidMessage as error:
            # Answer bad input instead of raising: an exception here would
            # drop the connection and print a traceback in the server log.
            await self.send(text_data=json.dumps({"error": str(error)}))
            return

        # Broadcast: hand the message to the layer, which delivers it to
        # every channel in the room's group, this one included.
        await self.channel_layer.group_send(
            self.room_group_name, {"type": "chat.message", "message": message}
        )

    async def dispatch(self, message):
        # Before every handler, Channels runs close_old_connections() in the
        # process's one shared sync thread, so that a handler which queries the
        # database finds a healthy connection (django/channels#2090). A message
        # to a room of 100 would cost 100 trips to that thread, one after the
        # other, and chat_message() never touches the database: room messages go
        # straight to it. (A chat_message() that did would have to await
        # channels.db.aclose_old_connections() first.) What the client sends,
        # and connect and disconnect, keep the check.
        if message["type"] == "chat.message":
            await self.chat_message(message)
        else:
            await super().dispatch(message)

    async def chat_message(self, event):
        # Called for each group message whose "type" is "chat.message"
        # (the dot becomes an underscore). Forward it to our WebSocket.
        try:
            await self.send(text_data=json.dumps({"message": event["message"]}))
        except (OSError, RuntimeError):
            # The client has just closed: the server refuses the send (daphne
            # with a RuntimeError, uvicorn with an OSError). Nothing is lost,
            # no one is left to read it; disconnect() comes next.
            pass


class RejectConsumer(AsyncWebsocketConsumer):
    """Refuses WebSocket paths that no chat route matches."""

    async def connect(self):
        # Closing before accept() turns the handshake down with HTTP 403.
        await self.close()
