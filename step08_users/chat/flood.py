"""Flood control: at most LIMIT messages per user per WINDOW seconds.

The count is in Redis, not in the consumer: a user's tabs on other workers
share it, so opening more tabs does not multiply the allowance. A fixed
window that starts with the user's first message in it: SET NX EX creates
the counter with its expiry, INCR counts (and keeps the expiry), in one
transaction, so no counter is ever left without an expiry.
"""
from django.conf import settings

from . import presence

LIMIT = settings.CHAT_FLOOD_LIMIT  # messages (20 unless the environment says otherwise)
WINDOW = 10  # seconds


async def retry_after(user):
    """0 if the user may send one more message now; else the seconds to wait."""
    counter = f"flood:{user.pk}"
    async with presence.client().pipeline(transaction=True) as pipe:
        pipe.set(counter, 0, ex=WINDOW, nx=True)
        pipe.incr(counter)
        pipe.ttl(counter)
        _, count, ttl = await pipe.execute()
    if count <= LIMIT:
        return 0
    return max(ttl, 1)
