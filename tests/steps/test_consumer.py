"""The consumer in-process: Channels' WebsocketCommunicator, no server, no network.

Fast, and precise about what the consumer itself does with each frame.
"""
import asyncio
import json

import pytest
from channels.generic.websocket import AsyncWebsocketConsumer, WebsocketConsumer
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator

from tests.support import CONSUMER_WAITS, TESTER
from workshop.steps import CHANNEL_LAYER, HISTORY, PRODUCTION, REDIS, RESILIENCE, USERS, since

pytestmark = pytest.mark.layer(
    1, "The consumer in-process (Channels' WebsocketCommunicator: no server, no network)"
)

# Frames a careless or hostile client may send, each answered with an error.
# (An empty frame is tested over a real socket in test_server.py: the
# communicator refuses to send one.)
BAD_FRAMES = {
    "not JSON": "hello",
    "JSON but not an object": '["message", "hi"]',
    "no message key": '{"text": "hi"}',
    "message is a number": '{"message": 42}',
    "message is null": '{"message": null}',
    "message is an object": '{"message": {"nested": true}}',
    "message is blank": '{"message": "   "}',
    "message too long": json.dumps({"message": "x" * 1001}),
    "frame too long": json.dumps({"message": "x", "padding": "y" * 20_000}),
    "deeply nested JSON": "[" * 3000 + "]" * 3000,
    # Valid JSON, but half of an emoji: no text frame or channel layer carries it.
    "lone surrogate": '{"message": "\\ud800"}',
    "1,001 emoji, escaped": json.dumps({"message": "\N{GRINNING FACE}" * 1001}),
}

# Room names the routes refuse: not group-name characters, or too long.
BAD_ROOM_NAMES = ["caf%C3%A9", "two%20words", "a" * 81, "semi;colon", ".", ".."]


@pytest.fixture(autouse=True)
def channel_layer_backend(request, step):
    """From step 4 on, the channel layer is a real Redis (and from the history step on,
    tests/steps/conftest.py gives these tests a database)."""
    if step >= REDIS:
        request.getfixturevalue("redis_server")


@pytest.fixture(autouse=True)
async def backup_cleanups_finish(step):
    """After each delivery, channels_redis deletes the message's backup copy in
    a task of its own, which holds a lock of the process's channel until it is
    done. Let those tasks finish before the test's event loop closes: a lock
    still held would belong to a closed loop, and the next test's consumer
    would fail to take it ("bound to a different event loop")."""
    yield
    if step >= REDIS:
        from channels.layers import get_channel_layer

        await get_channel_layer().wait_received()


class PatientCommunicator(WebsocketCommunicator):
    """WebsocketCommunicator waiting 5 s instead of 1 s: a busy CI machine is slow.

    (make check waits less once the consumer has left a wait unanswered:
    CONSUMER_WAITS, tests/support.py.)
    """

    async def connect(self, timeout=5):
        return await super().connect(CONSUMER_WAITS.timeout(timeout))

    async def disconnect(self, code=1000, timeout=5):
        # The history step's consumer may still be reading the database when told to go.
        return await super().disconnect(code, CONSUMER_WAITS.timeout(timeout, disconnecting=True))

    async def receive_json_from(self, timeout=5):
        """The next frame, without what later steps add to each message (the
        "id" of the history step, the "author" of the users step)."""
        frame = await self.receive_frame(timeout)
        frame.pop("id", None)
        return frame

    async def receive_output(self, timeout=1):
        # asgiref waits out the whole timeout even when the application has
        # already crashed (asgiref/testing.py, receive_output): a consumer that
        # raises would cost 5 s per test. Stop waiting when it ends instead.
        timeout = CONSUMER_WAITS.timeout(timeout)
        getter = asyncio.ensure_future(self.output_queue.get())
        try:
            await asyncio.wait(
                [getter, self.future], timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            getter.cancel()
        if getter.done() and not getter.cancelled():
            return getter.result()
        # Nothing came: asgiref's own version raises the application's error,
        # or the timeout.
        return await super().receive_output(timeout=0.01)


    async def receive_nothing(self, timeout=0.1, interval=0.01):
        # From the users step on, lists of who is here come as people come
        # and go: they are not a message.
        while not await super().receive_nothing(timeout, interval):
            output = self.output_queue.get_nowait()
            if '"presence"' not in output.get("text", "")[:12]:
                return False
        return True

    async def receive_frame(self, timeout=5):
        """The next frame, but for what the users step adds: lists of who is
        here passed over, and each message's "author" dropped."""
        while "presence" in (frame := await super().receive_json_from(timeout)):
            pass
        frame.pop("author", None)
        return frame


# From the users step on, the consumer needs a logged-in user in its scope, where
# AuthMiddlewareStack puts the session's user: the communicator puts one of the
# test database's there (the fixture below).
# The whole application (mysite/asgi.py) reads the user from a session cookie:
# SESSION_COOKIE is a session of that user.
USER = None
SESSION_COOKIE = []


@pytest.fixture(autouse=True)
def logged_in(request, step):
    global USER, SESSION_COOKIE
    if step >= USERS:
        from django.test import Client

        USER, _ = request.getfixturevalue("django_user_model").objects.get_or_create(
            username=TESTER)
        browser = Client()
        browser.force_login(USER)
        SESSION_COOKIE = [(b"cookie", f"sessionid={browser.cookies['sessionid'].value}".encode())]


def communicator(room="lobby", path=None):
    # Imported here rather than at the top, so that a mistake in the project's
    # code fails these tests one by one (make check) instead of the whole file.
    from chat.routing import websocket_urlpatterns

    application = URLRouter(websocket_urlpatterns)
    client = PatientCommunicator(application, path or f"/ws/chat/{room}/")
    if USER is not None:
        client.scope["user"] = USER
    return client


@pytest.mark.hint(
    "Step 1's ChatConsumer subclasses channels.generic.websocket.WebsocketConsumer, "
    "with plain def methods."
)
@pytest.mark.steps(1)
def test_step1_consumer_is_synchronous():
    from chat.consumers import ChatConsumer

    assert issubclass(ChatConsumer, WebsocketConsumer)


# Step 2 teaches the async form; from step 3 on, either form is a correct answer
# (the official tutorial's step 3 is synchronous: see step 3's README).
@pytest.mark.hint(
    "Make ChatConsumer an AsyncWebsocketConsumer: async def for every method, and "
    "await accept() and send()."
)
@pytest.mark.steps(2)
def test_consumer_is_asynchronous():
    from chat.consumers import ChatConsumer

    assert issubclass(ChatConsumer, AsyncWebsocketConsumer)


@pytest.mark.hint(
    'Does connect() call accept(), and receive() send {"message": ...} back with '
    "json.dumps? Is the route in chat/routing.py ws/chat/<room_name>/?"
)
async def test_sender_receives_its_own_message():
    client = communicator()
    connected, _ = await client.connect()
    assert connected
    await client.send_json_to({"message": "hello"})
    assert await client.receive_json_from() == {"message": "hello"}
    await client.disconnect()


@pytest.mark.hint('Send the message back exactly as parse_message() returned it.')
async def test_unicode_and_html_arrive_unchanged():
    client = communicator()
    await client.connect()
    text = "café ☕ <b>bold</b> \"quotes\" 日本語"
    await client.send_json_to({"message": text})
    assert await client.receive_json_from() == {"message": text}
    await client.disconnect()


@pytest.mark.hint('Before step 3, receive() sends only to its own socket (self.send).')
@pytest.mark.steps(1, 2)
async def test_echo_does_not_reach_another_client_in_the_room():
    alice, bob = communicator(), communicator()
    await alice.connect()
    await bob.connect()
    await alice.send_json_to({"message": "only for alice"})
    assert await alice.receive_json_from() == {"message": "only for alice"}
    assert await bob.receive_nothing(timeout=0.3)
    await alice.disconnect()
    await bob.disconnect()


@pytest.mark.hint(
    'Does connect() group_add the room group, and receive() group_send {"type": '
    '"chat.message", ...} with a chat_message() method that sends it on?'
)
@pytest.mark.steps(*since(CHANNEL_LAYER))
async def test_message_reaches_the_room_and_only_the_room():
    alice, bob, carol = communicator("lobby"), communicator("lobby"), communicator("other")
    for client in (alice, bob, carol):
        assert (await client.connect())[0]
    await alice.send_json_to({"message": "hi room"})
    assert await alice.receive_json_from() == {"message": "hi room"}
    assert await bob.receive_json_from() == {"message": "hi room"}
    assert await carol.receive_nothing(timeout=0.3)
    for client in (alice, bob, carol):
        await client.disconnect()


@pytest.mark.hint('Does disconnect() call group_discard with the same group name?')
@pytest.mark.steps(*since(CHANNEL_LAYER))
async def test_a_client_that_left_gets_nothing_more():
    alice, bob = communicator(), communicator()
    await alice.connect()
    await bob.connect()
    await bob.disconnect()  # leaves the group
    await alice.send_json_to({"message": "bob has gone"})
    assert await alice.receive_json_from() == {"message": "bob has gone"}
    await alice.disconnect()


@pytest.mark.hint(
    'Set "socket_timeout": None in the Redis host settings (step 4), or a timeout '
    "above 5 s (step 6): redis-py 8 ends any read after 5 s, which is how long "
    "the layer's blocking read lasts."
)
@pytest.mark.steps(*since(REDIS))
def test_redis_reads_may_outlast_the_layers_blocking_read():
    """Checked first, and by the settings: an idle chat shows it only after
    5 s (test_real_use.py), and every wait longer than that fails meanwhile."""
    from channels.layers import get_channel_layer

    layer = get_channel_layer()
    timeout = layer.hosts[0].get("socket_timeout", 5)  # redis-py 8's default
    assert timeout is None or timeout > layer.brpop_timeout, (
        f"socket_timeout is {timeout} s, the layer's blocking read {layer.brpop_timeout} s"
    )


async def a_room_after_its_members_expired(monkeypatch):
    """Two members of a room, then as long as a tab stays open past the layer's
    group_expiry (a day by default; 2 s here), then a message to the room."""
    from channels.layers import get_channel_layer

    monkeypatch.setattr(get_channel_layer(), "group_expiry", 2)
    alice, bob = communicator("long"), communicator("long")
    for client in (alice, bob):
        assert (await client.connect())[0]
    await asyncio.sleep(4)
    await alice.send_json_to({"message": "still here?"})
    return alice, bob


@pytest.mark.limit
@pytest.mark.hint("Step 6's consumer joins its group again before the layer forgets it.")
@pytest.mark.steps(*range(REDIS, RESILIENCE))
async def test_a_socket_open_longer_than_group_expiry_stops_hearing_its_room(monkeypatch):
    """The limit that step 6 lifts: channels_redis's group_send skips members
    that joined more than group_expiry ago, and pings keep such a tab open."""
    alice, bob = await a_room_after_its_members_expired(monkeypatch)
    assert await bob.receive_nothing(timeout=1)
    for client in (alice, bob):
        await client.disconnect()


@pytest.mark.hint(
    "connect() starts a task that calls group_add again every group_expiry / 3 "
    "seconds; cancel it when the consumer ends (step 6's README)."
)
@pytest.mark.steps(*since(RESILIENCE))
async def test_a_socket_open_longer_than_group_expiry_still_hears_its_room(monkeypatch):
    alice, bob = await a_room_after_its_members_expired(monkeypatch)
    assert await alice.receive_json_from() == {"message": "still here?"}
    assert await bob.receive_json_from() == {"message": "still here?"}
    for client in (alice, bob):
        await client.disconnect()


@pytest.fixture
def sync_thread_trips(monkeypatch):
    """trips(room, members): how many times Channels checked the database
    connections (close_old_connections(), which runs in the process's shared
    sync thread) while one message went to a room of `members` clients."""
    import channels.db

    calls = []
    close = channels.db.close_old_connections
    monkeypatch.setattr(channels.db, "close_old_connections", lambda: calls.append(close()))

    async def trips(room, members):
        clients = [communicator(room) for _ in range(members)]
        for client in clients:
            assert (await client.connect())[0]
        before = len(calls)
        await clients[0].send_json_to({"message": "counted"})
        for client in clients:
            assert await client.receive_json_from() == {"message": "counted"}
        counted = len(calls) - before
        for client in clients:
            await client.disconnect()
        return counted

    return trips


@pytest.mark.limit
@pytest.mark.hint("Steps 3 and 4 pay trips to the sync thread for each member and message.")
@pytest.mark.steps(*range(CHANNEL_LAYER, PRODUCTION))
async def test_each_member_costs_trips_to_the_sync_thread(sync_thread_trips):
    """Channels checks the database connections before every handler (an async
    consumer's dispatch(); a sync consumer's, before and after): a message
    costs a room of 4 more trips than a room of 1."""
    assert await sync_thread_trips("crowd", 4) > await sync_thread_trips("alone", 1)


@pytest.mark.hint(
    "Room messages need no database check: override dispatch() so that a "
    '"chat.message" event goes straight to chat_message(), any other to '
    "super().dispatch() (step 5's README)."
)
@pytest.mark.steps(*since(PRODUCTION))
async def test_room_messages_cost_no_trip_to_the_sync_thread(sync_thread_trips):
    assert await sync_thread_trips("crowd", 4) == await sync_thread_trips("alone", 1)


@pytest.mark.hint(
    "End mysite/asgi.py with gc.collect() and gc.freeze(), once the application "
    "is built (step 5's README)."
)
@pytest.mark.steps(*since(PRODUCTION))
@pytest.mark.filterwarnings("ignore:No directory at:UserWarning")
def test_a_worker_sets_what_it_loaded_aside_from_the_garbage_collector():
    import gc

    import mysite.asgi  # noqa: F401 (what a worker does first)

    assert gc.get_freeze_count() > 0


@pytest.mark.hint(
    'Does receive() call parse_message() and, on InvalidMessage, send {"error": '
    'str(error)} and return?'
)
@pytest.mark.parametrize("frame", BAD_FRAMES.values(), ids=BAD_FRAMES.keys())
async def test_bad_frame_gets_an_error_and_the_connection_stays_usable(frame):
    client = communicator()
    await client.connect()
    await client.send_to(text_data=frame)
    reply = await client.receive_json_from()
    assert set(reply) == {"error"} and reply["error"]
    # Still connected, still chatting.
    await client.send_json_to({"message": "still here"})
    assert await client.receive_json_from() == {"message": "still here"}
    await client.disconnect()


@pytest.mark.hint(
    "receive() takes text_data=None, bytes_data=None and hands both to "
    "parse_message()."
)
async def test_binary_frame_gets_an_error():
    client = communicator()
    await client.connect()
    await client.send_to(bytes_data=b'{"message": "hi"}')
    reply = await client.receive_json_from()
    assert "binary" in reply["error"].lower()
    await client.disconnect()


@pytest.mark.hint('Use parse_message() from chat/protocol.py rather than your own length check.')
async def test_longest_allowed_message_is_accepted():
    client = communicator()
    await client.connect()
    await client.send_json_to({"message": "é" * 1000})
    assert await client.receive_json_from() == {"message": "é" * 1000}
    await client.disconnect()


@pytest.mark.hint(
    "Use parse_message() from chat/protocol.py: it counts the message's characters, "
    "not the escapes in the frame."
)
async def test_longest_message_in_escaped_emoji_is_accepted():
    # Python's json.dumps escapes each emoji as \ud83d\ude00: 12,015 characters
    # of frame for a message of 1,000 characters.
    text = "\N{GRINNING FACE}" * 1000
    client = communicator()
    await client.connect()
    await client.send_to(text_data=json.dumps({"message": text}))
    assert await client.receive_json_from() == {"message": text}
    await client.disconnect()


@pytest.mark.hint('Does the route in chat/routing.py use ROOM_NAME_PATTERN from chat/protocol.py?')
@pytest.mark.parametrize("room", ["a", "Room_1", "x.y-z", "a" * 80, "..."])
async def test_room_names_that_are_allowed(room):
    client = communicator(room)
    connected, _ = await client.connect()
    assert connected
    await client.disconnect()


@pytest.mark.hint(
    "The chat route must use ROOM_NAME_PATTERN, and the last route must send "
    "everything else to RejectConsumer."
)
@pytest.mark.parametrize("room", BAD_ROOM_NAMES)
async def test_room_names_outside_the_pattern_are_refused(room):
    connected, _ = await communicator(room).connect()
    assert not connected


@pytest.mark.hint(
    'End websocket_urlpatterns with re_path(r"", consumers.RejectConsumer.as_asgi()),'
    ' whose connect() calls close().'
)
@pytest.mark.parametrize("path", ["/ws/", "/ws/chat/", "/ws/chat/lobby", "/ws/other/lobby/", "/"])
async def test_unknown_paths_are_refused(path):
    connected, _ = await communicator(path=path).connect()
    assert not connected


@pytest.mark.hint(
    "In mysite/asgi.py, wrap the websocket application in "
    "AllowedHostsOriginValidator."
)
# From step 5 on, the static files middleware warns when asgi.py is imported
# before the deploy's collectstatic, as it is here: no server, no deploy.
@pytest.mark.filterwarnings("ignore:No directory at:UserWarning")
async def test_origin_check_refuses_other_sites():
    from mysite.asgi import application

    def with_origin(origin):
        headers = [(b"origin", origin.encode()), (b"host", b"testserver"), *SESSION_COOKIE]
        return PatientCommunicator(application, "/ws/chat/lobby/", headers=headers)

    connected, _ = await with_origin("http://evil.example").connect()
    assert not connected
    # Django's test setup allows the host "testserver"; test_server.py checks
    # the real settings against a real server on 127.0.0.1.
    ours = with_origin("http://testserver")
    connected, _ = await ours.connect()
    assert connected
    await ours.disconnect()


@pytest.mark.hint(
    "chat/consumers.py: read_batch(room_id, after) lets the sockets of a worker that "
    "ask for the same batch at once share one query (step 7's README)."
)
@pytest.mark.steps(*since(HISTORY))
async def test_sockets_that_see_the_same_gap_at_once_share_one_query(monkeypatch):
    import chat.consumers
    from channels.db import database_sync_to_async
    from chat.models import Room, store_message

    for text in ("one", "two"):
        await database_sync_to_async(store_message)("shared", text)
    room = await Room.objects.aget(name="shared")
    queries = []
    real = chat.consumers.messages_after

    def counted(*arguments):
        queries.append(arguments)
        return real(*arguments)

    monkeypatch.setattr(chat.consumers, "messages_after", counted)
    # Ten sockets of one worker wake up to the same gap.
    batches = await asyncio.gather(*(chat.consumers.read_batch(room.pk, 0) for _ in range(10)))
    assert len(queries) == 1
    assert all(batch == batches[0] for batch in batches)
    assert [frame["message"] for frame in batches[0]] == ["one", "two"]
    # Later, the same question is asked again: it is a new query.
    await chat.consumers.read_batch(room.pk, 0)
    assert len(queries) == 2


@pytest.mark.hint(
    "chat_message() compares the event's id with the last id sent: the next one is"
    " sent, older ones are dropped, and a gap is filled from the database."
)
@pytest.mark.steps(*since(HISTORY))
async def test_announcements_out_of_order_or_twice_give_each_message_once_in_order():
    from channels.db import database_sync_to_async
    from channels.layers import get_channel_layer
    from chat.models import store_message

    client = communicator("order")
    assert (await client.connect())[0]
    first, _ = await database_sync_to_async(store_message)("order", "first")
    second, _ = await database_sync_to_async(store_message)("order", "second")
    # As from two workers: the second one announced first, then both, again.
    for message in (second, first, second):
        await get_channel_layer().group_send(
            "chat_order", {"type": "chat.message", "frame": message.as_frame()}
        )
    assert await client.receive_frame() == {"id": 1, "message": "first"}
    assert await client.receive_frame() == {"id": 2, "message": "second"}
    assert await client.receive_nothing(timeout=0.5)
    await client.disconnect()


@pytest.mark.limit
@pytest.mark.hint("Step 7's limit: a message whose notice is lost waits for the next notice.")
@pytest.mark.steps(*since(HISTORY))
async def test_a_lost_notice_delays_a_message_until_the_next_one():
    """The layer may drop a notice; a connected socket then learns of the
    message only from the next notice's gap (or when it reconnects)."""
    from channels.db import database_sync_to_async
    from channels.layers import get_channel_layer
    from chat.models import store_message

    client = communicator("quiet")
    assert (await client.connect())[0]
    await database_sync_to_async(store_message)("quiet", "its notice was lost")
    assert await client.receive_nothing(timeout=0.5)
    later, _ = await database_sync_to_async(store_message)("quiet", "the next one")
    await get_channel_layer().group_send(
        "chat_quiet", {"type": "chat.message", "frame": later.as_frame()}
    )
    assert await client.receive_frame() == {"id": 1, "message": "its notice was lost"}
    assert await client.receive_frame() == {"id": 2, "message": "the next one"}
    await client.disconnect()
