"""Servers run as real processes on 127.0.0.1, the way production runs them.

    with DaphneServer("step03_channel_layer") as server:
        server.ws_url("lobby")   # ws://127.0.0.1:<port>/ws/chat/lobby/

Any folder shaped like a step works (manage.py, mysite/, chat/), so the same
harness tests the reference steps and an attendee's own project.
"""
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from .ports import free_port, is_listening, wait_until


class ServerProcess:
    """A chat server in a child process on a free port, its output in a log file.

    Subclasses say which command to run; this class starts it, waits until the
    port accepts connections, and stops it.
    """

    name = "server"

    def __init__(self, port=None, env=None, cwd=None):
        self.port = port or free_port()
        self.env = env or {}
        self.cwd = cwd
        self.process = None
        self.url = f"http://127.0.0.1:{self.port}"
        # Browsers send the page's origin with the handshake; our clients
        # must too, or the step's origin check refuses them.
        self.origin = self.url

    def command(self):
        raise NotImplementedError

    def ws_url(self, room):
        return f"ws://127.0.0.1:{self.port}/ws/chat/{room}/"

    def start(self, timeout=30):
        self._log = tempfile.NamedTemporaryFile(
            "w+", prefix=f"{self.name}-{self.port}-", suffix=".log", delete=False
        )
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.env}
        self.process = subprocess.Popen(
            self.command(), cwd=self.cwd, env=env, stdout=self._log, stderr=subprocess.STDOUT
        )
        try:
            wait_until(lambda: is_listening(self.port), timeout, self.name, self.process)
        except (RuntimeError, TimeoutError) as error:
            self.stop()
            raise RuntimeError(f"{error}; its log:\n{self.log()}") from None
        return self

    def log(self):
        """Everything the server has printed so far."""
        return Path(self._log.name).read_text(errors="replace")

    def stop(self):
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()
        Path(self._log.name).unlink(missing_ok=True)


class DaphneServer(ServerProcess):
    """A step's ASGI application (mysite.asgi) served by daphne."""

    name = "daphne"

    def __init__(self, project_dir, port=None, env=None):
        self.project_dir = Path(project_dir).resolve()
        super().__init__(port, env, cwd=self.project_dir)

    def command(self):
        return [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(self.port),
                "mysite.asgi:application"]


def uvicorn_command(port, workers):
    """How production starts the step: `uvicorn mysite.asgi:application`, run in its folder."""
    # --ws-max-size: refuse frames over 1 MiB, as daphne does (uvicorn's
    # default is 16 MiB). --lifespan off: Channels' ProtocolTypeRouter serves
    # "http" and "websocket" only, and uvicorn would say so at every start.
    return [sys.executable, "-m", "uvicorn", "mysite.asgi:application",
            "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
            "--ws-max-size", str(1024 * 1024), "--lifespan", "off"]


class UvicornServer(ServerProcess):
    """A step served as in production: uvicorn with several worker processes.

    The workers share one listening socket; the operating system gives each
    new connection to one of them.
    """

    name = "uvicorn"

    def __init__(self, project_dir, workers=2, port=None, env=None, options=()):
        self.project_dir = Path(project_dir).resolve()
        self.workers = workers
        self.options = list(options)
        super().__init__(port, env, cwd=self.project_dir)

    def command(self):
        return [*uvicorn_command(self.port, self.workers), *self.options]

    def worker_pids(self):
        """The process ids of the workers alive now (children of uvicorn's parent)."""
        import psutil

        return [child.pid for child in psutil.Process(self.process.pid).children()
                if child.is_running() and child.status() != psutil.STATUS_ZOMBIE
                and "spawn_main" in " ".join(child.cmdline())]
