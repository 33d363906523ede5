"""Who is in each room, across workers: leases in Redis.

Each open socket holds a lease in the room's sorted set presence:<room>:
member "<user id>:<user name>:<channel name>", score the time it runs out.
Its consumer renews it every RENEW seconds and gives it back on leaving. A
worker killed with SIGKILL gives nothing back, but renews nothing either:
its leases run out LEASE seconds later, and the next renewal in the room
(every socket renews every RENEW seconds) removes them and tells the room.
So a killed worker's users vanish from everyone's list within LEASE + RENEW
seconds (20 s here).

The room is told only when its list of names may have changed: a socket
that comes, if its user had no other socket in the room; one that goes, if
it was its user's last; a renewal that removed leases that ran out. So a
user's tenth tab costs one lease, not a message to everyone. Each list
carries the Redis clock read in the same transaction, and a socket never
shows an older list after a newer one when two tellings cross.

Why not channels_redis's groups? A group is a sorted set too, with
group_expiry (300 s in settings.py): a channel added more than group_expiry
ago is dropped, but only when someone group_sends to the group, and nobody is
told. The layer has no public call that lists a group's channels, and a
channel name does not say whose it is. group_expiry bounds how long a dead
consumer's channel receives messages for nobody; it says nothing of who is here.
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
        # The channel layer's Redis, with the layer's own settings (settings.py):
        # its timeout, its retry after Redis restarts, its pool size for a burst.
        options = dict(settings.CHAT_REDIS)
        _clients[loop] = redis.Redis.from_url(options.pop("address"), **options)
    return _clients[loop]


def key(room_name):
    return f"presence:{room_name}"


def lease(user, channel_name):
    # Django's user names never contain ":" (letters, digits and @.+-_ only).
    return f"{user.pk}:{user.username}:{channel_name}"


def the_list(leases, clock):
    """The event that tells a room who is in it: the names, each once, sorted,
    and when Redis read them (microseconds)."""
    seconds, microseconds = clock
    names = sorted({member.decode().split(":", 2)[1] for member in leases})
    return {"type": "presence.changed", "names": names, "read_at": seconds * 10**6 + microseconds}


def has_another(leases, user, channel_name):
    mine, theirs = lease(user, channel_name), f"{user.pk}:"
    return any(member.decode().startswith(theirs) and member.decode() != mine
               for member in leases)


async def enter(room_name, user, channel_name):
    """Take this socket's lease. Returns the room's list, and whether to tell
    the room (the list may be new to the others)."""
    async with client().pipeline(transaction=True) as pipe:
        pipe.zremrangebyscore(key(room_name), "-inf", time.time())
        pipe.zadd(key(room_name), {lease(user, channel_name): time.time() + LEASE})
        pipe.expire(key(room_name), LEASE)  # a room everyone left leaves no key behind
        pipe.zrange(key(room_name), 0, -1)
        pipe.time()
        removed, _, _, leases, clock = await pipe.execute()
    return the_list(leases, clock), bool(removed) or not has_another(leases, user, channel_name)


async def renew(room_name, user, channel_name):
    """Renew this socket's lease. Returns the room's list if leases had run out
    (a killed worker's), else None: nothing to tell."""
    async with client().pipeline(transaction=True) as pipe:
        pipe.zadd(key(room_name), {lease(user, channel_name): time.time() + LEASE})
        pipe.expire(key(room_name), LEASE)
        pipe.zremrangebyscore(key(room_name), "-inf", time.time())
        _, _, removed = await pipe.execute()
    if removed:
        return await read(room_name)


async def leave(room_name, user, channel_name):
    """Give the lease back. Returns the room's list if it may have changed, else None."""
    async with client().pipeline(transaction=True) as pipe:
        pipe.zrem(key(room_name), lease(user, channel_name))
        pipe.zremrangebyscore(key(room_name), "-inf", time.time())
        pipe.zrange(key(room_name), 0, -1)
        pipe.time()
        _, removed, leases, clock = await pipe.execute()
    if removed or not has_another(leases, user, channel_name):
        return the_list(leases, clock)


async def read(room_name):
    async with client().pipeline(transaction=True) as pipe:
        pipe.zrange(key(room_name), 0, -1)
        pipe.time()
        leases, clock = await pipe.execute()
    return the_list(leases, clock)
