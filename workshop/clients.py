"""A real WebSocket client that speaks the chat's JSON frames (tests, notebooks)."""
import asyncio
import json
import resource
from contextlib import asynccontextmanager

from websockets.asyncio.client import connect


def allow_open_files(count):
    """Raise this process's soft limit on open files to `count` if it is lower."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < count:
        wanted = count if hard == resource.RLIM_INFINITY else min(count, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


class ChatClient:
    def __init__(self, websocket):
        self.websocket = websocket

    async def send_message(self, text):
        await self.websocket.send(json.dumps({"message": text}))

    async def send_raw(self, frame):
        """Send any frame, str (text) or bytes (binary), as hostile clients do."""
        await self.websocket.send(frame)

    async def receive(self, timeout=5):
        """The next frame, decoded from JSON."""
        return json.loads(await asyncio.wait_for(self.websocket.recv(), timeout))

    async def assert_receives_nothing(self, within=0.5):
        try:
            frame = await asyncio.wait_for(self.websocket.recv(), within)
        except asyncio.TimeoutError:  # the same as TimeoutError from Python 3.11
            return
        raise AssertionError(f"expected no message, received {frame!r}")


@asynccontextmanager
async def chat_client(server, room, origin=None, **options):
    """Open the room's WebSocket on a running server (a DaphneServer)."""
    async with connect(server.ws_url(room), origin=origin or server.origin, **options) as ws:
        yield ChatClient(ws)
