"""Small helpers for servers on this machine's loopback interface."""
import socket
import time


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def is_listening(port, host="127.0.0.1"):
    """True if something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_until(ready, timeout, what, process=None):
    """Poll ready() until it is true; fail clearly on timeout or a dead process."""
    deadline = time.monotonic() + timeout
    while not ready():
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{what} exited with code {process.returncode}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} was not ready after {timeout} s")
        time.sleep(0.05)
