"""Two server processes, and (step 4) the Redis between them going away."""
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from workshop.clients import chat_client

pytestmark = pytest.mark.layer(
    3, "Two server processes, and (step 4) the Redis between them going away"
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
@pytest.mark.steps(4)
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


@pytest.mark.hint(
    "Copy mysite/redis_guard.py, wrap URLRouter in RedisOutageGuard in asgi.py, and "
    "add the retry to the Redis host settings."
)
@pytest.mark.steps(4)
async def test_redis_outage_closes_cleanly_and_chat_resumes_without_restart(
    redis_server, start_server
):
    # A server of its own, so that its log shows only this story.
    server = start_server()
    async with chat_client(server, "lobby") as alice:
        await alice.send_message("before the outage")
        assert await alice.receive() == {"message": "before the outage"}

        redis_server.stop()
        try:
            # The open chat is closed promptly with the guard's code.
            with pytest.raises(ConnectionClosed):
                await alice.receive(timeout=10)
            assert alice.websocket.close_code == 4503

            # A newcomer is refused at the handshake, at once, not left hanging.
            for _ in range(3):
                with pytest.raises(InvalidStatus) as refused:
                    async with chat_client(server, "lobby", open_timeout=10):
                        pass
                assert refused.value.response.status_code == 403
        finally:
            redis_server.start()

    # Redis is back: the same server process chats again.
    async with chat_client(server, "lobby") as bob, chat_client(server, "lobby") as carol:
        await bob.send_message("after the outage")
        assert await bob.receive() == {"message": "after the outage"}
        assert await carol.receive() == {"message": "after the outage"}

    log = server.log()
    assert "Traceback" not in log, log
    assert log.count("Redis unavailable") >= 4  # one line per closed or refused socket
