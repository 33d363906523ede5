"""Two server processes, and (steps 4 and 5) the Redis between them going away."""
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.support import chatting_on_a_redis_of_its_own
from workshop.clients import chat_client
from workshop.steps import PRODUCTION, REDIS, RESILIENCE

pytestmark = pytest.mark.layer(
    3, "Two server processes, and (steps 4 and 5) the Redis between them going away"
)


@pytest.fixture(scope="module")
def second_server(start_server):
    """Another daphne process serving the same project."""
    return start_server()


@pytest.mark.hint(
    "At step 3 the layer is channels.layers.InMemoryChannelLayer; Redis comes in step"
    " 4."
)
@pytest.mark.limit
@pytest.mark.steps(3)
async def test_in_memory_layer_does_not_cross_processes(server, second_server):
    """The limit that step 4 lifts: each process has a layer of its own."""
    async with (
        chat_client(server, "lobby") as alice,
        chat_client(server, "lobby") as bob,
        chat_client(second_server, "lobby") as carol,
    ):
        await alice.send_message("same process only")
        assert await alice.receive() == {"message": "same process only"}
        assert await bob.receive() == {"message": "same process only"}
        await carol.assert_receives_nothing(within=1)


@pytest.mark.hint(
    'Does CHANNEL_LAYERS use channels_redis.core.RedisChannelLayer with the address '
    'from os.environ["REDIS_URL"]?'
)
@pytest.mark.steps(REDIS)
async def test_redis_layer_carries_a_room_across_processes(server, second_server):
    async with (
        chat_client(server, "lobby") as alice,
        chat_client(second_server, "lobby") as carol,
        chat_client(second_server, "kitchen") as dave,
    ):
        await alice.send_message("hello from process one")
        assert await carol.receive() == {"message": "hello from process one"}
        await carol.send_message("hello from process two")
        assert await alice.receive() == {"message": "hello from process one"}
        assert await alice.receive() == {"message": "hello from process two"}
        await dave.assert_receives_nothing(within=1)


# How each server reports an application that raised (steps 1-4 run under
# daphne, 5 under uvicorn): the log line, and what a client then sees, after
# the handshake (a close code) and before it (an HTTP status).
CRASH = {
    "daphne": ("Exception inside application", 1011, 500),
    # uvicorn drops the connection without a close frame: the client says 1006.
    "uvicorn": ("Exception in ASGI application", 1006, 500),
}


@pytest.mark.hint(
    "Before step 6 nothing stands between the consumer and Redis: it is step 6 "
    "that closes sockets cleanly during an outage."
)
@pytest.mark.limit
@pytest.mark.steps(*range(REDIS, RESILIENCE))
async def test_redis_outage_ends_open_chats_and_refuses_newcomers(
    redis_server, start_server, step
):
    """The limit that step 6 lifts: steps 4 and 5 do nothing about a Redis outage.

    The consumer's wait for the layer fails, so the chat ends with an error and
    a traceback in the log; a newcomer's group_add() fails before accept(),
    which the server answers with HTTP 500. When Redis is back, the same server
    process chats again: redis-py reconnects by itself.
    """
    logged, close_code, status = CRASH["uvicorn" if step >= PRODUCTION else "daphne"]
    # (redis_server: skip without Redis.)
    async with chatting_on_a_redis_of_its_own(start_server, "lobby") as (redis, server, alice):
        redis.stop()
        try:
            with pytest.raises(ConnectionClosed):
                await alice.receive(timeout=15)
            assert alice.websocket.close_code == close_code

            with pytest.raises(InvalidStatus) as refused:
                async with chat_client(server, "lobby", open_timeout=15):
                    pass
            assert refused.value.response.status_code == status
        finally:
            redis.start()

        # Redis is back (empty: it keeps nothing on disk), and so is the chat. The
        # pool may still hand out a connection that died with Redis: the handshake
        # that gets it fails with a 500 (step 6 retries on a fresh connection).
        failed_attempts = 0
        while True:
            try:
                async with (
                    chat_client(server, "lobby") as bob,
                    chat_client(server, "lobby") as carol,
                ):
                    await bob.send_message("after the outage")
                    assert await bob.receive() == {"message": "after the outage"}
                    assert await carol.receive() == {"message": "after the outage"}
                break
            except InvalidStatus as refused:
                assert refused.response.status_code == status
                failed_attempts += 1
                assert failed_attempts <= 3, "the server did not chat again after Redis came back"

        log = server.log()
        assert log.count(logged) == 2 + failed_attempts, log
        assert "redis.exceptions.ConnectionError" in log, log
