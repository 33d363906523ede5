"""The echo consumers of step 1 (sync) and step 2 (async), plus one slow call.

Each message waits SLOW_CALL_SECONDS before its echo, as a handler would
that asks a database or an API something. The sync consumer waits the sync
way (the thread stops, like a blocking database driver); the async one
awaits (the event loop serves others meanwhile, like an async driver).
Everything else is what the steps do: parse, answer errors, echo.
"""
import asyncio
import json
import time

from channels.generic.websocket import AsyncWebsocketConsumer, WebsocketConsumer

SLOW_CALL_SECONDS = 0.1


def parse(text_data):
    """The message a frame carries, or None (the steps use chat/protocol.py)."""
    try:
        message = json.loads(text_data or "").get("message")
    except (ValueError, AttributeError):
        return None
    return message if isinstance(message, str) and message.strip() else None


class SlowSyncConsumer(WebsocketConsumer):
    """step01's ChatConsumer with a blocking 100 ms call in receive()."""

    def connect(self):
        self.accept()

    def receive(self, text_data=None, bytes_data=None):
        message = parse(text_data)
        if message is None:
            self.send(text_data=json.dumps({"error": "bad frame"}))
            return
        # Channels runs every sync handler of the process in one shared
        # thread, so this sleep holds up the other sync consumers too.
        time.sleep(SLOW_CALL_SECONDS)
        self.send(text_data=json.dumps({"message": message}))


class SlowAsyncConsumer(AsyncWebsocketConsumer):
    """step02's ChatConsumer with an awaited 100 ms call in receive()."""

    async def connect(self):
        await self.accept()

    async def receive(self, text_data=None, bytes_data=None):
        message = parse(text_data)
        if message is None:
            await self.send(text_data=json.dumps({"error": "bad frame"}))
            return
        # While this coroutine waits, the event loop runs the others.
        await asyncio.sleep(SLOW_CALL_SECONDS)
        await self.send(text_data=json.dumps({"message": message}))
