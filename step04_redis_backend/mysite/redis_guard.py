"""What a WebSocket gets when the channel layer's Redis is out of reach.

Without this, a Redis outage ends every open chat with an exception inside
the consumer: one full traceback in the server log per connected client.
With it, each affected socket is closed cleanly and logged in one line:

- a client connecting while Redis is down is refused at the handshake
  (HTTP 403: closing before accept() means "refused");
- an open chat is closed with code 4503 (ours: "service unavailable";
  daphne only lets applications send 1000 or a code from 3000 to 4999).

The server itself keeps running either way, and new connections chat again
as soon as Redis is back: channels_redis reconnects by itself.
"""
import logging

from redis.exceptions import ConnectionError as RedisConnectionError

logger = logging.getLogger(__name__)

REDIS_UNAVAILABLE = 4503  # 4000 + HTTP 503, "service unavailable"


class RedisOutageGuard:
    """ASGI middleware: turns a lost Redis connection into a clean close."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        try:
            await self.app(scope, receive, send)
        except RedisConnectionError as error:
            logger.warning("Redis unavailable, closing %s: %s", scope["path"], error)
            await send({"type": "websocket.close", "code": REDIS_UNAVAILABLE})
