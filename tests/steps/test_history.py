"""History: every message stored, numbered, and caught up on after a reconnect."""
import asyncio
import json
import os
import random
import signal
import socket
import sqlite3
import time
from contextlib import AsyncExitStack, closing

import pytest
from websockets.asyncio.client import connect

from tests.support import skip_or_fail
from workshop.clients import (ChatClient, ReconnectingClient, chat_client, get_page,
                              login_headers)
from workshop.postgres import HOW_TO_GET_POSTGRES, PostgresServer, find_postgres_bin
from workshop.production import prepare
from workshop.steps import HISTORY, since

pytestmark = [
    pytest.mark.steps(*since(HISTORY)),
    pytest.mark.layer(3, "History: messages stored, ids, catch-up after a reconnect"),
]


async def say(client, *texts):
    """Send each text and wait for its acknowledgement; return the frames."""
    frames = []
    for text in texts:
        await client.send_message(text)
        frames.append(await client.receive_frame())
        assert frames[-1]["message"] == text
    return frames


@pytest.mark.hint(
    "connect() sends the stored messages after accept(), as {\"id\": ..., \"message\": "
    "...}, oldest first; chat/models.py numbers them 1, 2, 3 in each room."
)
async def test_a_newcomer_receives_the_history_with_ids_in_order(server):
    async with chat_client(server, "arrival") as alice:
        said = await say(alice, "one", "two", "three")
    assert said == [{"id": 1, "message": "one"}, {"id": 2, "message": "two"},
                    {"id": 3, "message": "three"}]
    async with chat_client(server, "arrival") as bob:
        assert [await bob.receive_frame() for _ in said] == said
        await bob.assert_receives_nothing(within=0.5)
        # Ids are per room: another room starts at 1.
        async with chat_client(server, "elsewhere") as carol:
            assert await say(carol, "first here") == [{"id": 1, "message": "first here"}]


@pytest.mark.hint("Without ?since=, send only the last HISTORY_LENGTH (50) messages.")
async def test_without_since_only_the_last_50_messages_arrive(server):
    async with chat_client(server, "long") as alice:
        await say(alice, *(f"message {number}" for number in range(1, 61)))
    async with chat_client(server, "long") as bob:
        ids = [(await bob.receive_frame())["id"] for _ in range(50)]
        assert ids == list(range(11, 61))
        await bob.assert_receives_nothing(within=0.5)


@pytest.mark.hint(
    "Parse ?since= with parse_since(self.scope[\"query_string\"]) and send the stored "
    "messages with a larger id, then the live ones."
)
async def test_since_sends_what_came_after_it_then_the_live_messages(server):
    async with chat_client(server, "catch-up") as alice:
        await say(alice, "1", "2", "3", "4", "5")
        async with chat_client(server, "catch-up", since=3) as bob:
            assert await bob.receive_frame() == {"id": 4, "message": "4"}
            assert await bob.receive_frame() == {"id": 5, "message": "5"}
            await say(alice, "6")
            assert await bob.receive_frame() == {"id": 6, "message": "6"}
            await bob.assert_receives_nothing(within=0.5)


# Step 6's limit, lifted.
@pytest.mark.hint(
    "A client that comes back with ?since=<the last id it holds> must receive what "
    "was said meanwhile."
)
async def test_a_client_that_reconnects_receives_what_was_said_meanwhile(server):
    async with chat_client(server, "away") as bob:
        async with chat_client(server, "away") as alice:
            [said] = await say(alice, "before you left")
            assert await bob.receive_frame() == said
        await say(bob, "said while alice was away")
        async with chat_client(server, "away", since=said["id"]) as alice_again:
            assert await alice_again.receive() == {"message": "said while alice was away"}
            await alice_again.assert_receives_nothing(within=0.5)


# What a bad ?since= looks like: not a whole number from 0 up, more than one,
# too many digits for the database, or beyond the room's last message.
BAD_SINCE = {
    "a word": "since=abc",
    "negative": "since=-1",
    "a fraction": "since=1.5",
    "empty": "since=",
    "twice": "since=1&since=2",
    "a superscript digit": "since=%C2%B2",
    "19 digits": "since=" + "9" * 19,
    "beyond the last message": "since=5",
}


@pytest.mark.hint(
    "On a bad ?since=, accept, send {\"error\": ...} and close with code 4400: never"
    " an exception."
)
@pytest.mark.parametrize("query", BAD_SINCE.values(), ids=BAD_SINCE.keys())
async def test_a_bad_since_gets_an_error_and_the_socket_is_closed(server, query):
    async with chat_client(server, "strict") as alice:
        await say(alice, "one message: ids up to 1")
    url = f"{server.ws_url('strict')}?{query}"
    async with connect(url, origin=server.origin,
                       additional_headers=login_headers(server)) as websocket:
        reply = await ChatClient(websocket).receive_frame()
        assert set(reply) == {"error"} and "since" in reply["error"]
        await asyncio.wait_for(websocket.wait_closed(), 10)
        assert websocket.close_code == 4400


@pytest.mark.hint(
    "A key already stored in the room returns that message: store_message() looks it "
    "up inside its transaction, and the cursor sends nothing twice."
)
async def test_a_message_sent_twice_with_its_key_is_stored_once(server):
    async with chat_client(server, "twice") as alice, chat_client(server, "twice") as bob:
        await alice.send_message("only once", key="k-1")
        first = await alice.receive_frame()
        assert first == {"id": 1, "message": "only once", "key": "k-1"}
        assert await bob.receive_frame() == first
        # Sent again, as after an acknowledgement lost in a disconnection.
        await alice.send_message("only once", key="k-1")
        await alice.assert_receives_nothing(within=1)
        await bob.assert_receives_nothing(within=0.5)
    async with chat_client(server, "twice", since=1) as alice_again:
        await alice_again.send_message("only once", key="k-1")
        await alice_again.send_message("something new", key="k-2")
        assert await alice_again.receive_frame() == {
            "id": 2, "message": "something new", "key": "k-2"
        }
    async with chat_client(server, "twice", since=0) as carol:
        assert [(await carol.receive_frame())["id"] for _ in range(2)] == [1, 2]
        await carol.assert_receives_nothing(within=0.5)


BAD_KEYS = {"a number": 42, "empty": "", "too long": "k" * 65, "a list": ["k"]}


@pytest.mark.hint(
    "parse_message() refuses a \"key\" that is not a string of 1 to 64 characters; an"
    " error about a message carries its valid key back."
)
@pytest.mark.parametrize("key", BAD_KEYS.values(), ids=BAD_KEYS.keys())
async def test_a_bad_key_gets_an_error_and_the_chat_goes_on(server, key):
    async with chat_client(server, "keys") as alice:
        await alice.send_message("hi", key=key)
        reply = await alice.receive_frame()
        assert set(reply) == {"error"} and "key" in reply["error"]
        # A refused message with a good key: the error names the key.
        await alice.send_message("   ", key="k-blank")
        assert set(await alice.receive_frame()) == {"error", "key"}
        await say(alice, "still here")


@pytest.mark.hint(
    "Messages live in the database (chat/models.py, migrations shipped), not in the "
    "server's memory."
)
async def test_the_history_is_kept_across_a_server_restart(start_server):
    server = start_server()
    async with chat_client(server, "durable") as alice:
        said = await say(alice, "written to disk")
    server.stop()
    server.start()
    async with chat_client(server, "durable") as bob:
        assert [await bob.receive_frame()] == said
    assert "Traceback" not in server.log()


# --- The proof: nothing acknowledged is lost, through failures --------------------


@pytest.fixture(scope="module")
def postgres():
    """A PostgreSQL server of the tests' own (workshop/postgres.py)."""
    if find_postgres_bin() is None:
        skip_or_fail(HOW_TO_GET_POSTGRES)
    with PostgresServer() as server:
        yield server


def new_postgres_database(postgres, project, production_env):
    """DATABASE_URL of a new, migrated database on the tests' PostgreSQL."""
    url = postgres.create_database(f"chat_{os.getpid()}_{int(time.monotonic() * 1000)}")
    prepare(project, {**production_env, "DATABASE_URL": url})
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_database(request, tmp_path, project, production_env):
    """DATABASE_URL of a new, migrated database: a SQLite file, or PostgreSQL."""
    if request.param == "postgresql":
        return new_postgres_database(request.getfixturevalue("postgres"), project,
                                     production_env)
    url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    prepare(project, {**production_env, "DATABASE_URL": url})
    return url


async def wait_until(condition, timeout, what):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not {what} after {timeout} s")
        await asyncio.sleep(0.1)


CLIENTS, MESSAGES_EACH = 10, 50


async def chat_through(server, trouble):
    """CLIENTS clients that follow room.html's rules exchange CLIENTS x MESSAGES_EACH
    messages while `trouble(clients)` runs; return them once every message is
    acknowledged and every client holds the last one."""
    clients = [ReconnectingClient(server, "proof").start() for _ in range(CLIENTS)]
    try:
        await wait_until(lambda: all(client.connections for client in clients), 30,
                         "all connected")

        async def chat(number, client):
            for sequence in range(MESSAGES_EACH):
                await client.send(f"{number}:{sequence}")
                await asyncio.sleep(random.uniform(0.05, 0.2))

        await asyncio.gather(trouble(clients),
                             *(chat(n, client) for n, client in enumerate(clients)))
        total = CLIENTS * MESSAGES_EACH
        await wait_until(lambda: not any(client.pending for client in clients), 90,
                         "every message acknowledged")
        await wait_until(lambda: all(client.last_id == total for client in clients), 30,
                         f"every client at id {total}")
    finally:
        for client in clients:
            await client.stop()
    return clients


def assert_nothing_lost(clients):
    """Every message stored once, and every client holds them all, once, in order."""
    total = CLIENTS * MESSAGES_EACH
    # Every message was stored once: the acknowledgements number them 1 to 500.
    acknowledged = {}
    for client in clients:
        acknowledged.update(client.acknowledged)
    assert sorted(acknowledged.values()) == list(range(1, total + 1))
    for client in clients:
        assert client.duplicates == []
        assert [error for error in client.errors if "unavailable" not in error["error"]] == []
        assert [number for number, _, _ in client.messages] == list(range(1, total + 1))
        assert {key: number for number, _, key in client.messages} == acknowledged
        # Every text once, and each sender's messages in the order it sent them.
        by_sender = {}
        for _, text, _ in client.messages:
            sender, sequence = text.split(":")
            by_sender.setdefault(int(sender), []).append(int(sequence))
        assert by_sender == {n: list(range(MESSAGES_EACH)) for n in range(CLIENTS)}


@pytest.mark.hint(
    "Store before broadcasting; send every message through the cursor (the next id "
    "as is, a gap from the database); on a known key, answer with the stored message."
)
async def test_nothing_acknowledged_is_lost_through_a_killed_worker_and_a_redis_outage(
    start_server, redis_server, fresh_database
):
    """10 clients that follow room.html's rules exchange 500 messages on 2 workers,
    while one worker is killed and Redis stops for 3 seconds. In the end each
    client holds every message, once, in id order."""
    server = start_server(env={"DATABASE_URL": fresh_database})

    async def trouble(clients):
        await asyncio.sleep(1.5)
        os.kill(random.choice(server.worker_pids()), signal.SIGKILL)
        await asyncio.sleep(1.5)
        redis_server.stop()
        await asyncio.sleep(3)
        redis_server.start()

    clients = await chat_through(server, trouble)
    assert_nothing_lost(clients)
    for client in clients:
        assert client.errors == []
        # The outage closed every socket: every client had to come back.
        assert client.connections >= 2
    assert "Traceback" not in server.log(), server.log()


DATABASE_UNAVAILABLE = 4503


async def assert_refused_while_the_database_is_down(server):
    """A newcomer is told, in an error frame and close code 4503, to come back later."""
    async with connect(server.ws_url("proof"), origin=server.origin,
                       additional_headers=login_headers(server)) as websocket:
        assert "unavailable" in json.loads(await asyncio.wait_for(websocket.recv(), 30))["error"]
        await asyncio.wait_for(websocket.wait_closed(), 10)
        assert websocket.close_code == DATABASE_UNAVAILABLE


@pytest.mark.hint(
    "ChatConsumer.dispatch() turns OperationalError and InterfaceError into an error "
    "frame, close code 4503 and one WARNING line: the page comes back and resends."
)
async def test_a_database_outage_closes_sockets_cleanly_and_loses_nothing(
    request, start_server, fresh_database
):
    """PostgreSQL restarted (pg_ctl restart -m fast), then down until sockets and a
    newcomer have been refused; SQLite locked by another writer past the step's
    20 s timeout. Either way: no traceback, every socket that the outage ended
    closed with 4503 and one log line, and nothing acknowledged lost."""
    server = start_server(env={"DATABASE_URL": fresh_database})

    def closed(clients):
        return lambda: any(DATABASE_UNAVAILABLE in client.close_codes for client in clients)

    newcomers = 0

    async def postgres_down(clients):
        nonlocal newcomers
        postgres = request.getfixturevalue("postgres")
        await asyncio.sleep(1.5)
        postgres.restart()  # every session ends; the pool's checks replace them
        await asyncio.sleep(1)
        postgres.shut_down()
        try:
            await assert_refused_while_the_database_is_down(server)
            newcomers += 1
            await wait_until(closed(clients), 60, "a socket closed by the outage")
        finally:
            postgres.start_again()

    async def sqlite_locked(clients):
        await asyncio.sleep(1.5)
        path = fresh_database.removeprefix("sqlite:///")
        with closing(sqlite3.connect(path, isolation_level=None)) as other_writer:
            other_writer.execute("BEGIN IMMEDIATE")  # the write lock, held
            await wait_until(closed(clients), 60, "a socket closed by the lock")
            other_writer.execute("ROLLBACK")

    trouble = sqlite_locked if fresh_database.startswith("sqlite") else postgres_down
    clients = await chat_through(server, trouble)
    assert_nothing_lost(clients)
    log = server.log()
    assert "Traceback" not in log, log
    codes = [code for client in clients for code in client.close_codes]
    assert DATABASE_UNAVAILABLE in codes and set(codes) == {DATABASE_UNAVAILABLE}, codes
    assert [status for client in clients for status in client.refusals] == []
    assert log.count("Database unavailable, closing") == len(codes) + newcomers, log


# --- Hostile use: on SQLite and on PostgreSQL ----------------------------------


@pytest.fixture(scope="module")
def postgres_server(start_server, postgres, project, production_env):
    """The step on a PostgreSQL database of its own, for this module's tests."""
    url = new_postgres_database(postgres, project, production_env)
    return start_server(env={"DATABASE_URL": url})


@pytest.fixture(params=["sqlite", "postgresql"])
def any_server(request):
    """The step on SQLite (the tests' `server`), then on PostgreSQL. Rooms are
    not emptied on PostgreSQL between tests: each test uses rooms of its own."""
    server = request.getfixturevalue("server" if request.param == "sqlite" else "postgres_server")
    before = len(server.log())
    yield server
    assert "Traceback" not in server.log()[before:], server.log()[before:]


async def fill(client, count, text="x"):
    """Store `count` messages through the client, sent without waiting; return the
    acknowledgements."""
    async def send_all():
        for number in range(count):
            await client.send_message(f"{number} {text}")

    sending = asyncio.ensure_future(send_all())
    acknowledged = [await client.receive_frame(timeout=30) for _ in range(count)]
    await sending
    return acknowledged


@pytest.mark.hint(
    "parse_message() refuses NUL (\\u0000) in \"message\" and \"key\": PostgreSQL "
    "cannot store it."
)
async def test_a_nul_character_gets_an_error_on_every_database(any_server):
    async with chat_client(any_server, "nul") as alice:
        await alice.send_message("a\u0000b", key="k-nul")
        reply = await alice.receive_frame()
        assert reply["key"] == "k-nul" and "NUL" in reply["error"]
        await alice.send_message("hi", key="k\u0000")
        reply = await alice.receive_frame()
        assert set(reply) == {"error"} and "key" in reply["error"]
        [said] = await say(alice, "still here")
    async with chat_client(any_server, "nul", since=0) as bob:
        assert await bob.receive_frame() == said  # nothing else was stored
        await bob.assert_receives_nothing(within=0.5)


@pytest.mark.hint(
    "A catch-up sends at most CATCH_UP_LIMIT (1,000) messages, the latest: a client "
    "further behind first gets {\"error\": ..., \"truncated\": true, \"skipped\": [first, last]}."
)
async def test_a_catch_up_sends_at_most_the_latest_1000_messages(any_server):
    async with chat_client(any_server, "big", max_queue=None) as alice:
        await fill(alice, 1005)
    async with chat_client(any_server, "big", since=0, max_queue=None) as bob:
        notice = await bob.receive_frame()
        assert notice["truncated"] is True and notice["skipped"] == [1, 5]
        assert "1000" in notice["error"]
        ids = [(await bob.receive_frame())["id"] for _ in range(1000)]
        assert ids == list(range(6, 1006))
        await bob.assert_receives_nothing(within=0.5)
    async with chat_client(any_server, "big", since=900) as carol:  # within the limit
        assert [(await carol.receive_frame())["id"] for _ in range(105)] == list(range(901, 1006))
        await carol.assert_receives_nothing(within=0.5)


def room_members(room):
    """How many channels the room's group has in Redis (channels_redis keeps each
    group in a sorted set named asgi:group:<group>)."""
    import redis

    with redis.Redis.from_url(os.environ["REDIS_URL"]) as client:
        return client.zcard(f"asgi:group:chat_{room}")


@pytest.mark.hint(
    "send_frame() returns False once the client has gone, and send_stored_messages() "
    "then stops reading: no query for a client that left."
)
async def test_a_client_that_leaves_mid_catch_up_stops_the_queries(
    start_server, postgres, project, production_env
):
    """On PostgreSQL, whose log counts the queries: a client asks for 1,000 long
    messages (12 MB of frames, more than the sockets' buffers hold), reads one
    and drops the connection. The catch-up must stop within its first batch."""
    url = new_postgres_database(postgres, project, production_env)
    server = start_server(workers=1, env={"DATABASE_URL": url})
    async with chat_client(server, "leave", max_queue=None) as alice:
        await fill(alice, 1000, "\U0001f600" * 990)  # JSON sends each emoji as 12 bytes
    postgres.log_statements(True)  # the pooled connections too
    before = len(postgres.log())

    # A small receive buffer, so that the server's sends block after a few frames.
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", server.port))
    async with connect(f"{server.ws_url('leave')}?since=0", origin=server.origin,
                       additional_headers=login_headers(server), sock=sock,
                       max_queue=1) as websocket:
        assert json.loads(await websocket.recv())["id"] == 1
        websocket.transport.abort()  # gone, without a closing handshake
    await wait_until(lambda: room_members("leave") == 0, 30, "the consumer gone")
    postgres.log_statements(False)

    catch_up_queries = [line for line in postgres.log()[before:].splitlines()
                        if 'FROM "chat_message"' in line and '"number" >' in line]
    # 1,000 messages are 10 batches: a catch-up that went on would read all 10.
    # This one stops at the first send that fails, once the sockets' buffers
    # are full: within the first batch or two.
    assert len(catch_up_queries) <= 2, catch_up_queries
    assert "Traceback" not in server.log()


@pytest.mark.hint(
    "Query the catch-up by the room's id (chat.models.messages_after): by room__name, "
    "PostgreSQL's planner scans and sorts the whole room for every batch."
)
def test_the_catch_up_query_reads_one_range_of_the_unique_index(fresh_database, project):
    """bench/catchup.py fills a room of 20,000 messages and explains the query."""
    from bench.catchup import run

    plan = run(fresh_database, 20_000, project)["by_id_plan"]
    if fresh_database.startswith("sqlite"):
        assert "(room_id=? AND number>?)" in plan and "TEMP B-TREE" not in plan, plan
    else:
        assert "Index Scan using one_message_per_number" in plan and "Sort" not in plan, plan


@pytest.mark.hint(
    "views.room() puts the first socket's since in the page ({{ since|json_script:"
    "\"since\" }}), and room.html starts lastId from it."
)
async def test_the_room_page_says_where_its_first_socket_starts(server):
    """A page whose first socket dies before the history arrives must not come
    back with since=0, the whole room: the page itself says where it starts."""
    async with chat_client(server, "page", max_queue=None) as alice:
        await fill(alice, 60)

    def page(room):
        return get_page(server, f"/chat/{room}/")[1]

    assert '<script id="since" type="application/json">10</script>' in await asyncio.to_thread(
        page, "page")
    assert '<script id="since" type="application/json">0</script>' in await asyncio.to_thread(
        page, "empty")
