"""Serve a step folder with a real daphne process, the way production would.

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


class DaphneServer:
    def __init__(self, project_dir, port=None, env=None):
        self.project_dir = Path(project_dir).resolve()
        self.port = port or free_port()
        self.env = env or {}
        self.process = None
        self.url = f"http://127.0.0.1:{self.port}"
        # Browsers send the page's origin with the handshake; our clients
        # must too, or the step's origin check refuses them.
        self.origin = self.url

    def ws_url(self, room):
        return f"ws://127.0.0.1:{self.port}/ws/chat/{room}/"

    def start(self, timeout=30):
        self._log = tempfile.NamedTemporaryFile(
            "w+", prefix=f"daphne-{self.port}-", suffix=".log", delete=False
        )
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.env}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(self.port),
             "mysite.asgi:application"],
            cwd=self.project_dir, env=env, stdout=self._log, stderr=subprocess.STDOUT,
        )
        try:
            wait_until(lambda: is_listening(self.port), timeout, "daphne", self.process)
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
