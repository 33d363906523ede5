"""What every test suite shares: a tool may be missing on a laptop, never in CI;
and a chat with a Redis of its own, for the outage tests."""
import asyncio
import os
import signal
import threading
import time
from contextlib import asynccontextmanager

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

# The one exception to "nothing skips in CI": .ci/run's no-browser
# configuration hides the browser on purpose, to prove that everything else
# passes without one and that the browser tests skip with their hint.
CI_HIDES_THE_BROWSER = os.environ.get("CI_HIDES_THE_BROWSER", "") == "1"


def skip_or_fail(reason, allowed_in_ci=False):
    """Skip when this machine lacks something; fail in CI, where everything must
    run (unless CI removed that thing on purpose: allowed_in_ci)."""
    if IN_CI and not allowed_in_ci:
        pytest.fail(reason)
    pytest.skip(reason)


def first_traceback(log, most_lines=40):
    """The first traceback in a server's log, to its exception line: its last
    lines if it is long (the exception is what names the problem)."""
    lines = log[log.index("Traceback"):].splitlines()
    # A traceback ends at its first line that is not indented (the exception),
    # or at a chained one's "During handling..." line.
    end = next((number for number, line in enumerate(lines[1:], 1)
                if line and not line.startswith(" ")), len(lines) - 1)
    lines = lines[:end + 1]
    if len(lines) > most_lines:
        lines = lines[:1] + ["  ..."] + lines[-(most_lines - 2):]
    return "\n".join(lines)


# From the users step on, a handshake needs a logged-in user: the tests of the
# steps before it chat as this one, signed up in each database the servers use
# (tests/steps/conftest.py).
TESTER, PASSWORD = "tester", "the-tests-own-password"


# --- make check: waits for an in-process consumer (tests/steps/test_consumer.py) ---
#
# `make test` waits as long as a busy CI machine needs. `make check` grades a
# project mid-exercise, whose consumer often does not answer at all: waiting
# the full time in every test would take minutes. So, in make check only
# (tests/plugin.py turns it on), once one wait has gone unanswered, the
# others are short: their answer was missing for the same reason, and the
# report lists them under that first one. A consumer that blocks the event
# loop (time.sleep() in async def) cannot be timed out at all: the watch below
# interrupts it, and the later in-process tests are not tried.


class BlockedEventLoop(Exception):
    """Raised in the code that held the event loop too long (make check)."""


class ConsumerWaits:
    """make check's patience with an in-process consumer, for one pytest run."""

    FIRST = 2.0  # seconds at most for a first answer (an in-process one takes ms)
    SHORT = 0.5  # seconds, once a wait has gone unanswered
    BLOCKED = 2.0  # seconds without the event loop running: it is blocked

    def __init__(self):
        self.checking = False
        self.unanswered = None  # the first test whose wait timed out
        self.blocked = None  # the first test that blocked the event loop
        self.last_timeout = None  # this test's last in-process wait (None: it had none)
        self._loop = self._beat = None
        self._watching = False

    def start_test(self):
        """Called before each test: no in-process wait of its own yet, so a real
        server's timeout is not reported with an earlier test's length."""
        self.last_timeout = None

    def timeout(self, timeout, disconnecting=False):
        """The timeout to use for a wait of `timeout` seconds (and watch the loop).

        A consumer that is told to go may have more to finish (step 6's reads
        the database): its wait keeps its whole length until one went unanswered.
        """
        if not self.checking:
            return timeout
        if self.blocked:
            pytest.skip(f"not tried yet: first make {self.blocked} work")
        self._watch(asyncio.get_running_loop())
        if self.unanswered:
            self.last_timeout = min(timeout, self.SHORT)
        else:
            self.last_timeout = timeout if disconnecting else min(timeout, self.FIRST)
        return self.last_timeout

    # The watch: the loop beats every 0.1 s; a thread checks the beats, and
    # a signal raises BlockedEventLoop in whatever code holds the loop.

    def _watch(self, loop):
        if self._loop is loop:
            return
        self._loop, self._beat, self._watching = loop, time.monotonic(), True
        loop.call_soon(self._heartbeat, loop)
        if not getattr(self, "_thread", None):
            signal.signal(signal.SIGUSR2, self._interrupt)
            self._thread = threading.Thread(target=self._check_beats, daemon=True)
            self._thread.start()

    def _heartbeat(self, loop):
        if loop is self._loop and not loop.is_closed():
            self._beat = time.monotonic()
            loop.call_later(0.1, self._heartbeat, loop)

    def stop_watching(self):
        """Called after each test: the loop is not ours to watch any more."""
        self._watching, self._loop = False, None

    def _check_beats(self):
        while True:
            time.sleep(0.1)
            if self._watching and time.monotonic() - self._beat > self.BLOCKED:
                self._watching = False  # once per test is enough
                signal.pthread_kill(threading.main_thread().ident, signal.SIGUSR2)

    def _interrupt(self, signum, frame):
        if self._loop is not None:
            raise BlockedEventLoop(
                f"the event loop did not run for {self.BLOCKED:.0f} s: something blocked it, "
                "such as time.sleep() in async def (await asyncio.sleep() instead)"
            )


CONSUMER_WAITS = ConsumerWaits()


@asynccontextmanager
async def chatting_on_a_redis_of_its_own(start_server, room):
    """A Redis and a server of their own, and a client that has chatted in
    `room`: yields (redis, server, client). The other tests keep their Redis,
    and this server's log shows only this story."""
    from workshop.clients import chat_client
    from workshop.redis import RedisServer

    with RedisServer() as redis:
        server = start_server(env={"REDIS_URL": redis.url})
        async with chat_client(server, room) as client:
            await client.send_message("before the outage")
            assert await client.receive() == {"message": "before the outage"}
            yield redis, server, client
