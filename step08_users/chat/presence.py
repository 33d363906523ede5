"""Who is in each room, across workers: leases in Redis.

Each open socket holds a lease in the room's sorted set presence:<room>:
member "<user id>:<user name>:<channel name>", score the time it runs out.
Its consumer renews it every RENEW seconds and removes it on leaving. A
worker killed with SIGKILL removes nothing, but renews nothing either: its
leases run out LEASE seconds later, and the next reader (every socket reads
the list each RENEW seconds) drops them. So a killed worker's users vanish
from everyone's list within LEASE + RENEW seconds (20 s here).

Why not channels_redis's groups? A group is a sorted set too, with
group_expiry (300 s in settings.py): a channel added more than group_expiry
ago is dropped, but only when someone group_sends to the group, and nobody is
told. The layer has no public call that lists a group's channels, and a
channel name does not say whose it is. group_expiry bounds how long a dead
consumer's channel receives messages for nobody; it says nothing of who is here.

Several tabs of one user hold several leases, and the list shows their
name once.
"""
import asyncio
import time

import redis.asyncio as redis
from django.conf import settings

LEASE = 15  # seconds a lease lasts without being renewed
RENEW = 5  # seconds between renewals: three per lease, so one late renewal loses nothing

_clients = {}  # event loop -> its Redis client (a client is bound to the loop it runs on)


def client():
    loop = asyncio.get_running_loop()
    if loop not in _clients:
        _clients.clear()  # an old loop's client is of no use any more (tests)
        _clients[loop] = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=10)
    return _clients[loop]


def key(room_name):
    return f"presence:{room_name}"


def lease(user, channel_name):
    # Django's user names never contain ":" (letters, digits and @.+-_ only).
    return f"{user.pk}:{user.username}:{channel_name}"


async def hold(room_name, user, channel_name):
    """Take or renew this socket's lease."""
    async with client().pipeline(transaction=True) as pipe:
        pipe.zadd(key(room_name), {lease(user, channel_name): time.time() + LEASE})
        pipe.expire(key(room_name), LEASE)  # a room everyone left leaves no key behind
        await pipe.execute()


async def release(room_name, user, channel_name):
    await client().zrem(key(room_name), lease(user, channel_name))


async def who_is_here(room_name):
    """The names of the users with a live lease in the room, sorted, each once."""
    now = time.time()
    async with client().pipeline(transaction=True) as pipe:
        pipe.zremrangebyscore(key(room_name), "-inf", now)
        pipe.zrange(key(room_name), 0, -1)
        _, leases = await pipe.execute()
    return sorted({member.decode().split(":", 2)[1] for member in leases})
