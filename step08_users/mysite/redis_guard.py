"""What a WebSocket gets when the channel layer's Redis is out of reach.

Without this, a Redis outage ends every open chat with an exception inside
the consumer: one full traceback in the server log per connected client.
With it, each affected socket is closed cleanly and logged in one line:

- a client connecting while Redis is down is refused at the handshake
  (HTTP 403: closing before accept() means "refused");
- an open chat is closed with code 4503 (ours: "service unavailable", in
  the 4000-4999 range that RFC 6455 reserves for private use).

"Out of reach" is a refused connection (Redis stopped) or no answer in
time (Redis frozen, or a network that silently drops the connection: see
socket_timeout in settings.py). The page reconnects by itself (room.html),
and the server keeps running: new connections chat again as soon as Redis
is back.
"""
import logging

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import MaxConnectionsError
from redis.exceptions import TimeoutError as RedisTimeoutError

logger = logging.getLogger(__name__)

REDIS_UNAVAILABLE = 4503  # 4000 + HTTP 503, "service unavailable"


class RedisOutageGuard:
    """ASGI middleware: turns a lost Redis connection into a clean close."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        try:
            await self.app(scope, receive, send)
        except MaxConnectionsError as error:
            # Redis is fine: this process has used up its connection pool
            # (CHANNEL_LAYERS "max_connections"). Say so, not "unavailable".
            logger.warning("Redis connection pool full, closing %s: %s", scope["path"], error)
            await close(send)
        except (RedisConnectionError, RedisTimeoutError) as error:
            logger.warning("Redis unavailable, closing %s: %s", scope["path"], error)
            await close(send)


async def close(send):
    try:
        await send({"type": "websocket.close", "code": REDIS_UNAVAILABLE})
    except (OSError, RuntimeError):
        pass  # the socket was closed already (by the client, or by the consumer)
