"""channels_redis's RedisChannelLayer, with two upstream weak spots worked around.

1. All consumers of a server process share one blocking read (BZPOPMIN) of
   the messages that Redis holds for the process: whichever consumer is
   waiting when a read is due makes it, for all of them. When a client
   leaves, Channels cancels its consumer's wait. If that consumer was the one
   reading, and Redis had just popped a message but the layer had not yet
   written its backup copy (the two awaits in channels_redis's
   _brpop_with_clean()), the message is gone, for every consumer of the
   process (django/channels#1683; step 4's README has the figures). Here the
   read outlives its reader: the consumer leaves at once, and the next
   consumer to wait takes the same read over, with whatever it brings.
2. After each delivery, channels_redis removes the message's backup copy in
   a task that nobody waits for. If Redis has just gone away, that task's
   error would reach the log as a traceback ("Task exception was never
   retrieved"). Here it is one line.
"""
import asyncio
import logging
from importlib.metadata import version

from channels_redis import core
from django.core.exceptions import ImproperlyConfigured
from redis.exceptions import ConnectionError as RedisConnectionError

logger = logging.getLogger(__name__)

# Both fixes override private methods of channels_redis, read in its core.py of
# this version. Another version may have changed them: refuse to start on it.
CHECKED_WITH = "4.3.0"
if version("channels_redis") != CHECKED_WITH:
    raise ImproperlyConfigured(
        f"mysite/layers.py was checked with channels_redis {CHECKED_WITH}, and "
        f"{version('channels_redis')} is installed: read its core.py, then update CHECKED_WITH"
    )


class RedisChannelLayer(core.RedisChannelLayer):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.reads_left_behind = {}  # Redis key -> a read whose reader has gone

    async def _brpop_with_clean(self, index, channel, timeout):
        read = self.reads_left_behind.pop(channel, None)
        if not can_take_over(read):
            read = asyncio.ensure_future(super()._brpop_with_clean(index, channel, timeout))
        try:
            return await asyncio.shield(read)
        except asyncio.CancelledError:
            # This consumer is leaving; the read goes on without it. Should the
            # read fail, the next one finds out for itself: mark its error seen.
            read.add_done_callback(lambda read: read.cancelled() or read.exception())
            self.reads_left_behind[channel] = read
            raise

    async def _clean_receive_backup(self, index, channel):
        try:
            await super()._clean_receive_backup(index, channel)
        except RedisConnectionError as error:
            # The copy stays in Redis, and the process's next read puts it
            # back: this message may be delivered once more.
            logger.warning("Redis unavailable, a delivered message may come again: %s", error)


def can_take_over(read):
    """A read left behind can be taken over if it still runs or brought a result
    (not if it failed: the next read finds out for itself), on this event loop."""
    if read is None or read.get_loop() is not asyncio.get_running_loop():
        return False
    return not read.done() or not (read.cancelled() or read.exception())
