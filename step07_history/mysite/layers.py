"""channels_redis's RedisChannelLayer, with two upstream weak spots worked around.

1. All consumers of a server process share one blocking read (BZPOPMIN) of
   the messages that Redis holds for the process: whichever consumer is
   waiting when a read is due makes it, for all of them. When a client
   leaves, Channels cancels its consumer's wait; if that consumer was the one
   reading, the read is abandoned, and a message Redis had just handed over is
   dropped with it, for every consumer of the process
   (django/channels_redis#366, django/channels#1683; step 4's README has the
   figures). Here the read outlives its reader: the consumer leaves at once,
   and the next consumer to wait takes the same read over, with whatever it
   brings.
2. After each delivery, channels_redis removes the message's backup copy in
   a task that nobody waits for. If Redis has just gone away, that task's
   error would reach the log as a traceback ("Task exception was never
   retrieved"). Here it is one line.
"""
import asyncio
import logging

from channels_redis import core
from redis.exceptions import ConnectionError as RedisConnectionError

logger = logging.getLogger(__name__)


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
