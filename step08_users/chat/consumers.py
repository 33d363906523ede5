import asyncio
import json
import logging
import math
import time

from channels.db import aclose_old_connections, database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.db import IntegrityError, InterfaceError, OperationalError
from redis.exceptions import RedisError

from . import flood, presence
from .models import Room, may_enter, messages_after, store_message
from .protocol import HISTORY_LENGTH, InvalidMessage, parse_message, parse_since

logger = logging.getLogger(__name__)

BAD_REQUEST = 4400  # close code: 4000 + HTTP 400, "bad request"
DATABASE_UNAVAILABLE = 4503  # 4000 + HTTP 503, as for Redis (mysite/redis_guard.py)
LOGGED_OUT = 4401  # 4000 + HTTP 401: this socket's user logged out; the page does not retry
NOT_A_MEMBER = 4403  # 4000 + HTTP 403: no longer a member of this private room
BATCH = 100  # stored messages read from the database at a time
# The most stored messages one catch-up sends: the room's latest. A client
# further behind (?since=0 in a big room) is told what it skipped, so that
# no client can make a worker read and send a room's whole history.
CATCH_UP_LIMIT = 1000
# The database's "I cannot answer now": a server restarting or out of reach,
# a connection cut, SQLite's lock still held after its timeout.
DATABASE_ERRORS = (OperationalError, InterfaceError)

# The batches this worker process is reading, by (room id, after which). When
# two workers' announcements cross, every socket of the room that sees the gap
# asks for the same batch at the same moment: they share one query instead of
# queueing one each in the worker's one database thread.
reads_in_flight = {}


async def read_batch(room_id, after):
    """The frames of the room's next BATCH messages after `after`."""
    key = (room_id, after)
    read = reads_in_flight.get(key)
    if read is None or read.get_loop() is not asyncio.get_running_loop():
        read = reads_in_flight[key] = asyncio.ensure_future(frames_after(room_id, after))
        # Done: forget it (and mark a failure seen, even if every reader left).
        read.add_done_callback(lambda read: read.cancelled() or read.exception())
        read.add_done_callback(lambda read: reads_in_flight.pop(key, None)
                               if reads_in_flight.get(key) is read else None)
    # A reader that leaves does not cancel the read for the others.
    return await asyncio.shield(read)


async def frames_after(room_id, after):
    return [message.as_frame() async for message in messages_after(room_id, after, BATCH)]


class ChatConsumer(AsyncWebsocketConsumer):
    """One instance per open WebSocket, like one view call per request.

    Asynchronous: the handlers run on the server's event loop, with no
    thread of their own. While one awaits, the others keep running, so a
    handler must await slow work and never block: no time.sleep, no blocking
    library call (run it through sync_to_async). The ORM's plain methods raise
    SynchronousOnlyOperation here; use its async ones (aget, acreate...).
    """

    async def connect(self):
        # The auth middleware (AuthMiddlewareStack, spelled out in asgi.py)
        # read the handshake's session cookie and put its user here, once: the
        # socket keeps that user for as long as it is open, even after they
        # log out (see session_ended()). No session, an unknown or expired
        # one: AnonymousUser. (No "user" at all: a router served without it.)
        self.user = self.scope.get("user")
        if "database_error" in self.scope:  # it could not read the session (mysite/asgi.py)
            return await self.database_unavailable(
                {"type": "websocket.connect"}, self.scope["database_error"])
        if self.user is None or not self.user.is_authenticated:
            # Closing before accept() refuses the handshake: HTTP 403.
            return await self.close()
        self.room_name = self.scope["url_route"]["kwargs"]["room_name"]
        # A private room refuses a non-member at the door, before any history.
        if not await database_sync_to_async(may_enter)(self.room_name, self.user):
            return await self.close()
        # Every room is a group on the channel layer. The room name is safe
        # to use here: routing.py only lets through valid group-name characters.
        self.room_group_name = f"chat_{self.room_name}"

        # Where this socket starts: after the message the client last saw
        # (?since=7), or HISTORY_LENGTH messages before the room's latest.
        try:
            since = parse_since(self.scope["query_string"])
        except InvalidMessage as error:
            return await self.refuse(str(error))
        room = await Room.objects.filter(name=self.room_name).afirst()  # the async ORM
        last_number = room.last_number if room else 0  # no room: nothing said yet
        self.room_id = room.pk if room else None  # the catch-up queries by id
        if since is None:
            since = max(last_number - HISTORY_LENGTH, 0)
        elif since > last_number:
            return await self.refuse(
                f'"since" is {since}, but this room\'s last message is {last_number}.'
            )
        # The cursor: the number of the last message this socket carried.
        # Every message goes out through it, so none is sent twice or skipped.
        self.last_sent = since

        # self.channel_name is this consumer's own mailbox on the layer.
        # Join first, read the database second: a message stored after the
        # read is announced to this channel, so none falls in between.
        await self.channel_layer.group_add(self.room_group_name, self.channel_name)
        # And this user's own group, which every socket of theirs joins, in
        # every tab, on every worker: logging out tells it (chat/signals.py).
        self.user_group_name = f"user_{self.user.pk}"
        await self.channel_layer.group_add(self.user_group_name, self.channel_name)
        await self.accept()
        self.renewal = asyncio.create_task(self.stay_in_the_room())
        await self.send_stored_messages(last_number)
        # Here: take a lease on the room's presence list (chat/presence.py),
        # send the list to this client, and to the room if it is new to them.
        self.presence_read_at = self.presence_sent = None
        here, tell_the_room = await presence.enter(self.room_name, self.user, self.channel_name)
        self.presence_renewal = asyncio.create_task(self.stay_present())
        await self.presence_changed(here)
        if tell_the_room:
            await self.channel_layer.group_send(self.room_group_name, here)

    accepted = closing = False
    held_back_until = 0  # time.monotonic() until which flood control refuses

    async def accept(self, subprotocol=None, headers=None):
        await super().accept(subprotocol, headers)
        self.accepted = True

    async def refuse(self, reason, code=BAD_REQUEST):
        # A handshake refused with HTTP 403 cannot say why. Accept, say why in
        # an error frame, and close with a code that says "do not retry as is"
        # (4400), or "try again later" (4503).
        if not self.accepted:
            await self.accept()
        await self.send_frame({"error": reason})
        self.closing = True
        await self.close(code=code)

    ended = False  # set when the consumer ends (__call__)

    async def stay_in_the_room(self):
        # The layer forgets a member group_expiry seconds after its group_add
        # (settings.py): a tab open longer would stop hearing its room. Join
        # again, three times per expiry, for as long as the socket is open.
        while not self.ended:
            await asyncio.sleep(self.channel_layer.group_expiry / 3)
            try:
                await self.channel_layer.group_add(self.room_group_name, self.channel_name)
                await self.channel_layer.group_add(self.user_group_name, self.channel_name)
            except RedisError:
                pass  # an outage: the guard closes this socket, the page comes back

    async def stay_present(self):
        # Renew this socket's lease every RENEW seconds. Leases of a killed
        # worker run out unannounced: the renewal that removes them tells the room.
        while not self.ended:
            await asyncio.sleep(presence.RENEW)
            try:
                here = await presence.renew(self.room_name, self.user, self.channel_name)
                if here:
                    await self.channel_layer.group_send(self.room_group_name, here)
            except RedisError:
                pass  # an outage: the guard closes this socket, the page comes back

    async def presence_changed(self, event):
        # The room's list, as Redis read it at event["read_at"]: two tellings
        # may cross, and an older list must not replace a newer one.
        if self.presence_read_at is not None and event["read_at"] <= self.presence_read_at:
            return
        self.presence_read_at = event["read_at"]
        if event["names"] != self.presence_sent:
            self.presence_sent = event["names"]
            await self.send_frame({"presence": event["names"]})

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
            if hasattr(self, "presence_renewal"):
                self.presence_renewal.cancel()

    async def disconnect(self, close_code):
        if not hasattr(self, "user_group_name"):
            return  # refused at the handshake: it joined nothing
        await self.channel_layer.group_discard(self.room_group_name, self.channel_name)
        await self.channel_layer.group_discard(self.user_group_name, self.channel_name)
        if hasattr(self, "presence_renewal"):
            # Gone: give the lease back, and tell those who stay if this was
            # the user's last socket in the room.
            self.presence_renewal.cancel()
            here = await presence.leave(self.room_name, self.user, self.channel_name)
            if here:
                await self.channel_layer.group_send(self.room_group_name, here)

    async def session_ended(self, event):
        # The user of this socket logged out, in this tab or another, on this
        # worker or another (chat/signals.py). The socket was opened with
        # their session and would go on speaking for them: close it, with a
        # code the page does not reconnect on.
        self.closing = True
        await self.close(code=LOGGED_OUT)

    async def membership_changed(self, event):
        # Someone changed who may enter this room (the admin: chat/signals.py).
        # A member stays; whoever may no longer enter is closed now, not at
        # their next message, so that they read nothing more either.
        if not await database_sync_to_async(may_enter)(self.room_name, self.user):
            await self.send_frame({"error": "You are no longer a member of this room."})
            self.closing = True
            await self.close(code=NOT_A_MEMBER)

    async def receive(self, text_data=None, bytes_data=None):
        try:
            message, key = parse_message(text_data, bytes_data)
        except InvalidMessage as error:
            # Answer bad input instead of raising: an exception here would
            # drop the connection and print a traceback in the server log.
            reply = {"error": str(error)}
            if error.key is not None:
                reply["key"] = error.key  # so that the client stops resending it
            await self.send(text_data=json.dumps(reply))
            return

        # Flood control, per user across every tab and worker (chat/flood.py).
        # Over the limit, the message is refused, not queued: the socket stays
        # open, and the room hears nothing of it. Once refused, this socket
        # refuses by itself until the window ends: a flooder costs no more
        # trips to Redis.
        wait = math.ceil(self.held_back_until - time.monotonic())
        if wait <= 0:
            wait = await flood.retry_after(self.user)
            self.held_back_until = time.monotonic() + wait
        if wait > 0:
            reply = {"error": f"Too many messages: at most {flood.LIMIT} every "
                     f"{flood.WINDOW} s. Try again in {wait} s.", "retry_after": wait}
            if key is not None:
                reply["key"] = key  # refused: the client does not send it again
            await self.send(text_data=json.dumps(reply))
            return

        # Store first. Django's transactions are synchronous only (atomic()
        # refuses to run on the event loop), so store_message() runs in a
        # thread; database_sync_to_async also closes worn-out connections
        # there, as Django does after each request. A key stored before
        # returns that message instead of a new one.
        try:
            stored, _ = await database_sync_to_async(store_message)(
                self.room_name, message, key, author=self.user
            )
        except IntegrityError:
            # The only constraint a message can break: its author, deleted
            # since this socket opened (chat/signals.py closes their sockets;
            # this is a message that was on its way meanwhile).
            return await self.session_ended({})
        event = {"type": "chat.message", "frame": stored.as_frame()}
        # The sender's acknowledgement: its message with its id, now, through
        # this socket's cursor, whatever the layer does with the broadcast.
        await self.chat_message(event)
        # Then tell the room. For a key stored before, the room is told again,
        # in case the first telling never happened (a worker killed between
        # the commit and the broadcast): who has the message ignores it.
        await self.channel_layer.group_send(self.room_group_name, event)

    async def dispatch(self, message):
        # Before every handler, Channels runs close_old_connections() in the
        # process's one shared sync thread, so that a handler which queries the
        # database finds a healthy connection (django/channels#2090). A message
        # to a room of 100 would cost 100 trips to that thread, one after the
        # other, and chat_message() rarely touches the database (it checks for
        # itself when it does): room messages go straight to it. What the
        # client sends, and connect and disconnect, keep the check.
        if self.closing and message["type"] != "websocket.disconnect":
            # Told to come back: take nothing more from this socket. A message
            # stored after one that failed would break the sender's order.
            return
        try:
            if message["type"] == "chat.message":
                await self.chat_message(message)
            elif message["type"] == "presence.changed":
                await self.presence_changed(message)  # no database either
            else:
                await super().dispatch(message)
        except DATABASE_ERRORS as error:
            await self.database_unavailable(message, error)

    async def database_unavailable(self, message, error):
        # The database is a dependency like Redis: when it cannot answer, close
        # this socket cleanly, with a reason and one log line, and let the page
        # reconnect (4503: try again later). A newcomer is refused the same
        # way, in an error frame. What was being stored is not acknowledged:
        # the client sends it again, with its key, once it is back.
        if message["type"] == "websocket.disconnect":
            # Channels' connection check failed before disconnect(): leave the
            # room all the same.
            return await self.websocket_disconnect(message)
        if self.closing:
            return  # this socket was told already; disconnect() comes next
        logger.warning("Database unavailable, closing %s: %s", self.scope["path"],
                       " ".join(str(error).split()))  # psycopg's errors span lines
        await self.refuse("The database is unavailable: try again shortly.",
                          DATABASE_UNAVAILABLE)

    async def chat_message(self, event):
        # Called for each group message whose "type" is "chat.message"
        # (the dot becomes an underscore). The event says "message N is
        # stored". Events may arrive out of order (two workers announce at
        # about the same time) or not at all (the layer delivers at most
        # once), so this socket's cursor decides:
        number = event["frame"]["id"]
        if number == self.last_sent + 1:
            await self.send_frame(event["frame"])  # the next one: send it as is
        elif number > self.last_sent:
            # Some are missing: ask the database, after the connection check
            # that dispatch() skipped (Channels' docs: before the first query
            # in a while).
            await aclose_old_connections()
            await self.send_stored_messages(number)
        # else: already sent through this socket; nothing to do.

    async def send_stored_messages(self, latest):
        """Send the stored messages after the last one sent, in order, up to
        `latest` (the newest this socket knows of) and those stored meanwhile:
        at most CATCH_UP_LIMIT + BATCH, in at most 11 queries. Stop as soon as
        the client has gone."""
        if self.room_id is None:  # the room had no message when this socket came
            room = await Room.objects.filter(name=self.room_name).afirst()
            if room is None:
                return
            self.room_id = room.pk
        if latest - self.last_sent > CATCH_UP_LIMIT:
            first, self.last_sent = self.last_sent + 1, latest - CATCH_UP_LIMIT
            skipped = {"error": f"Messages {first} to {self.last_sent} are not sent: a "
                       f"catch-up sends the latest {CATCH_UP_LIMIT} at most.",
                       "truncated": True, "skipped": [first, self.last_sent]}
            if not await self.send_frame(skipped):
                return
        for _ in range(CATCH_UP_LIMIT // BATCH + 1):
            frames = await read_batch(self.room_id, self.last_sent)
            for frame in frames:
                if not await self.send_frame(frame):
                    return  # the client has gone: read no more for it
            # A shared read may have begun just before `latest` was stored:
            # then read once more, from where this one ended.
            if len(frames) < BATCH and self.last_sent >= latest:
                return

    async def send_frame(self, frame):
        """Send a frame, through the cursor if it is a message; False if the
        client has gone."""
        if "id" in frame:
            self.last_sent = frame["id"]
        try:
            await self.send(text_data=json.dumps(frame))
        except (OSError, RuntimeError):
            # The client has just closed: the server refuses the send (daphne
            # with a RuntimeError, uvicorn with an OSError). Nothing is lost,
            # no one is left to read it; disconnect() comes next.
            return False
        return True


class RejectConsumer(AsyncWebsocketConsumer):
    """Refuses WebSocket paths that no chat route matches."""

    async def connect(self):
        # Closing before accept() turns the handshake down with HTTP 403.
        await self.close()
