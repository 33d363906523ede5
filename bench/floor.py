"""The floor: the same chat rooms, written directly on `websockets`.

    python -m bench.floor --port 8765

No Django, no Channels, no channel layer: one process keeps each room's open
sockets in a set and writes every message to all of them. It speaks the
steps' protocol (/ws/chat/<room>/, {"message": ...} frames) so the same
clients measure it, and shows how fast this machine moves WebSocket frames
in Python at all: the layers above cost what the steps measure beyond it.
"""
import argparse
import asyncio
import json
import logging
import sys

from websockets.asyncio.server import broadcast, serve

from workshop.servers import ServerProcess
from workshop.steps import REPO


rooms = {}  # path -> set of open connections


async def chat(websocket):
    members = rooms.setdefault(websocket.request.path, set())
    members.add(websocket)
    try:
        async for frame in websocket:
            try:
                message = json.loads(frame)["message"]
            except (ValueError, TypeError, KeyError):
                await websocket.send(json.dumps({"error": "bad frame"}))
                continue
            # Encoded once, written to every member without waiting for any.
            broadcast(members, json.dumps({"message": message}))
    finally:
        members.discard(websocket)


async def serve_forever(port):
    # The harness checks that the port is open with a bare TCP connection,
    # which websockets would log as a failed handshake: keep the log quiet.
    logging.getLogger("websockets").setLevel(logging.CRITICAL)
    async with serve(chat, "127.0.0.1", port, compression=None) as server:
        await server.serve_forever()


class FloorServer(ServerProcess):
    """This module run as a process, with the same interface as DaphneServer."""

    name = "floor"

    def __init__(self, port=None):
        super().__init__(port, cwd=REPO)

    def command(self):
        return [sys.executable, "-m", "bench.floor", "--port", str(self.port)]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    try:
        asyncio.run(serve_forever(parser.parse_args().port))
    except KeyboardInterrupt:
        pass
