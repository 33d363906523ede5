"""The step served by a real daphne process, with real WebSocket clients."""
import asyncio
import json
from collections import defaultdict

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from workshop.clients import chat_client, get_page, login_headers
from workshop.steps import CHANNEL_LAYER, since

pytestmark = pytest.mark.layer(
    2, "The step served by a real daphne process, with real WebSocket clients"
)


@pytest.mark.hint(
    'Is chat/urls.py included under "chat/" in mysite/urls.py, with the index view '
    'and template?'
)
def test_index_page_asks_for_a_room(server):
    status, html = get_page(server, "/chat/")
    assert status == 200
    assert 'id="room-name-input"' in html and 'id="room-name-submit"' in html


@pytest.mark.hint(
    "The room view renders chat/room.html with room_name, passed to JavaScript with "
    "json_script."
)
def test_room_page_has_the_chat_and_its_room_name(server):
    status, html = get_page(server, "/chat/lobby/")
    assert status == 200
    for element_id in ("chat-log", "chat-message-input", "chat-message-submit"):
        assert f'id="{element_id}"' in html
    assert '<script id="room-name" type="application/json">"lobby"</script>' in html


@pytest.mark.hint('The room URL in chat/urls.py uses ROOM_NAME_PATTERN, like the WebSocket route.')
@pytest.mark.parametrize(
    "path", ["/chat/caf%C3%A9/", "/chat/" + "a" * 81 + "/", "/chat/./", "/chat/../"]
)
def test_room_page_for_a_name_no_socket_would_accept_is_404(server, path):
    assert get_page(server, path)[0] == 404


@pytest.mark.hint(
    'Is "websocket" in mysite/asgi.py routed to chat.routing.websocket_urlpatterns, '
    'and does the consumer accept() and echo?'
)
async def test_sender_receives_its_message(server):
    async with chat_client(server, "lobby") as alice:
        await alice.send_message("hello")
        assert await alice.receive() == {"message": "hello"}


@pytest.mark.hint('Before step 3 the consumer only echoes to its own socket.')
@pytest.mark.limit
@pytest.mark.steps(1, 2)
async def test_a_second_client_in_the_room_receives_nothing(server):
    """The limit that step 3 lifts: steps 1 and 2 only echo."""
    async with chat_client(server, "lobby") as alice, chat_client(server, "lobby") as bob:
        await alice.send_message("anyone there?")
        assert await alice.receive() == {"message": "anyone there?"}
        await bob.assert_receives_nothing(within=1)
        # Bob's own message is the first thing he hears.
        await bob.send_message("just me")
        assert await bob.receive() == {"message": "just me"}


@pytest.mark.hint(
    "Does the consumer join a group on connect (group_add) and send to that group "
    "(group_send)?"
)
@pytest.mark.steps(*since(CHANNEL_LAYER))
async def test_message_reaches_everyone_in_the_room_and_no_one_else(server):
    async with (
        chat_client(server, "lobby") as alice,
        chat_client(server, "lobby") as bob,
        chat_client(server, "kitchen") as carol,
    ):
        await alice.send_message("hi all")
        assert await alice.receive() == {"message": "hi all"}
        assert await bob.receive() == {"message": "hi all"}
        await carol.assert_receives_nothing(within=1)


@pytest.mark.hint(
    "Everyone in the room must get every message: join a group (see above). A full "
    'channel drops messages silently, so set "capacity": 1000 in CHANNEL_LAYERS.'
)
@pytest.mark.steps(*since(CHANNEL_LAYER))
async def test_burst_of_40_clients_loses_nothing_and_keeps_order(server):
    """40 clients each send 5 messages as fast as they can: 200 messages for every
    member's channel, twice the layer's default capacity, 8,000 deliveries."""
    # Not more: a message that waits in a channel longer than the layer's expiry
    # (60 s, in memory and on Redis) is dropped, and in memory its channel leaves
    # the group as well. A synchronous consumer delivers through the one thread
    # that all of a process's synchronous consumers share: about 0.7 ms a delivery
    # on 2 idle cores, 3 ms on busy ones, where 40 x 25 (40,000 deliveries) took
    # over 60 s and lost messages, however long the wait below. 40 x 5 drains in
    # about 5 s idle, 23 s at the busiest measured.
    clients, messages_each = 40, 5
    total = clients * messages_each
    joined = 0
    everyone_joined = asyncio.Event()

    async def chatter(number):
        nonlocal joined
        async with chat_client(server, "burst", max_queue=None) as client:
            # Start sending only when all 40 are in the room, so that each
            # of them should hear every message.
            joined += 1
            if joined == clients:
                everyone_joined.set()
            await everyone_joined.wait()

            for sequence in range(messages_each):
                await client.send_message(f"{number}:{sequence}")
            received = defaultdict(list)
            for _ in range(total):
                sender, sequence = (await client.receive(timeout=15))["message"].split(":")
                received[sender].append(int(sequence))
            return received

    for received in await asyncio.gather(*(chatter(n) for n in range(clients))):
        assert sum(map(len, received.values())) == total
        for sequences in received.values():
            assert sequences == list(range(messages_each))  # all, in order


@pytest.mark.parametrize(
    "frame",
    ["", "not json", "[1, 2]", '{"message": 7}', '{"message": ""}', b"\x00\x01",
     '{"message": "\\ud800"}'],
)
@pytest.mark.hint('Does receive() answer InvalidMessage with {"error": ...} instead of raising?')
async def test_bad_frames_get_an_error_and_the_chat_goes_on(server, frame):
    async with chat_client(server, "lobby") as alice:
        await alice.send_raw(frame)
        assert "error" in await alice.receive()
        await alice.send_message("still here")
        assert await alice.receive() == {"message": "still here"}


@pytest.mark.hint(
    "Serve the project with daphne (daphne first in INSTALLED_APPS): it limits frames"
    " to 1 MiB."
)
async def test_huge_frame_closes_the_connection_and_the_server_serves_on(server):
    # Daphne drops frames over 1 MiB by closing the connection (code 1009,
    # "too big", which the client may not see while it is still sending).
    async with chat_client(server, "lobby", max_size=None) as alice:
        try:
            await alice.send_raw(json.dumps({"message": "x" * (2 * 1024 * 1024)}))
        except ConnectionClosed:
            pass  # closed while we were still sending: fine, that is the point
        await alice.websocket.wait_closed()
        assert alice.websocket.close_code in (1009, 1006)
    async with chat_client(server, "lobby") as bob:
        await bob.send_message("fine")
        assert await bob.receive() == {"message": "fine"}


@pytest.mark.parametrize(
    "path",
    ["/ws/chat/caf%C3%A9/", "/ws/chat/a%20b/", "/ws/chat/" + "a" * 81 + "/", "/ws/nope/",
     "/ws/chat/./", "/ws/chat/../"],
)
@pytest.mark.hint(
    "Does the last route in chat/routing.py send every other path to RejectConsumer?"
)
async def test_handshake_for_unknown_path_or_bad_room_is_refused_with_403(server, path):
    url = f"ws://127.0.0.1:{server.port}{path}"
    with pytest.raises(InvalidStatus) as refused:
        # Logged in from step 8 on: refused for its path, not for its user.
        async with connect(url, origin=server.origin, additional_headers=login_headers(server)):
            pass
    assert refused.value.response.status_code == 403


@pytest.mark.hint(
    "In mysite/asgi.py, wrap the websocket application in "
    "AllowedHostsOriginValidator."
)
@pytest.mark.parametrize("origin", ["http://evil.example", "http://127.0.0.1.evil.example"])
async def test_handshake_from_another_site_is_refused_with_403(server, origin):
    with pytest.raises(InvalidStatus) as refused:
        async with chat_client(server, "lobby", origin=origin):
            pass
    assert refused.value.response.status_code == 403
