"""When a dependency fails: Redis outages, and the layer's own weak spots."""
import os
import signal

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.support import chatting_on_a_redis_of_its_own
from workshop.clients import chat_client
from workshop.steps import RESILIENCE, since

pytestmark = [
    pytest.mark.steps(*since(RESILIENCE)),
    pytest.mark.layer(3, "Resilience: Redis outages, clients coming and going"),
]


@pytest.mark.hint(
    "Copy mysite/redis_guard.py, wrap URLRouter in RedisOutageGuard in asgi.py, and "
    "add the retry to the Redis host settings."
)
async def test_redis_outage_closes_cleanly_and_chat_resumes_without_restart(
    redis_server, start_server
):
    """Step 5's limit, lifted: one clean close or refusal per socket, then chat again."""
    # (redis_server: skip without Redis.)
    async with chatting_on_a_redis_of_its_own(start_server, "lobby") as (redis, server, alice):
        redis.stop()
        try:
            # The open chat is closed promptly with the guard's code.
            with pytest.raises(ConnectionClosed):
                await alice.receive(timeout=15)
            assert alice.websocket.close_code == 4503

            # A newcomer is refused at the handshake, at once, not left hanging.
            for _ in range(3):
                with pytest.raises(InvalidStatus) as refused:
                    async with chat_client(server, "lobby", open_timeout=15):
                        pass
                assert refused.value.response.status_code == 403
        finally:
            redis.start()

        # Redis is back: the same server chats again, with no refusal in between.
        # (Another room: from step 7 on, "lobby" would first replay its history.)
        async with chat_client(server, "after") as bob, chat_client(server, "after") as carol:
            await bob.send_message("after the outage")
            assert await bob.receive() == {"message": "after the outage"}
            assert await carol.receive() == {"message": "after the outage"}

    log = server.log()
    assert "Traceback" not in log, log
    assert log.count("Redis unavailable") >= 4, log  # one line per closed or refused socket


@pytest.mark.hint(
    "mysite/layers.py: catch redis's ConnectionError in _clean_receive_backup() and "
    "log one WARNING line (step 6's README, \"When Redis goes away\")."
)
async def test_the_layer_cleaning_up_after_a_delivery_without_redis_logs_one_line(caplog):
    """channels_redis runs this cleanup in a task nobody awaits: an error there
    would reach the log as a traceback."""
    from channels.layers import get_channel_layer

    from workshop.ports import free_port

    layer = get_channel_layer()
    config = {**layer.hosts[0], "address": f"redis://127.0.0.1:{free_port()}/0"}
    without_redis = type(layer)(hosts=[config])
    with caplog.at_level("WARNING"):
        await without_redis._clean_receive_backup(0, without_redis.prefix + "specific.x!")
    assert [record.levelname for record in caplog.records] == ["WARNING"]
    assert "Redis unavailable" in caplog.text


@pytest.mark.hint(
    'Give the Redis host settings a "socket_timeout" above the layer\'s 5 s '
    "blocking read, and catch redis's TimeoutError in the guard too."
)
async def test_a_redis_that_stops_answering_closes_chats_cleanly_too(redis_server, start_server):
    """A frozen Redis (or a network that drops packets) refuses nothing: it
    just never answers. The socket timeout turns that into an error the guard
    handles."""
    async with chatting_on_a_redis_of_its_own(start_server, "frozen") as (redis, server, alice):
        os.kill(redis.process.pid, signal.SIGSTOP)
        try:
            with pytest.raises(ConnectionClosed):
                await alice.receive(timeout=60)
            assert alice.websocket.close_code == 4503
        finally:
            os.kill(redis.process.pid, signal.SIGCONT)
        async with chat_client(server, "thawed") as bob:
            await bob.send_message("after")
            assert await bob.receive() == {"message": "after"}
        log = server.log()
        assert "Traceback" not in log, log
        assert "Redis unavailable" in log, log
