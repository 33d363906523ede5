"""channels_redis's RedisChannelLayer, with one upstream bug worked around.

All consumers of a server process share one blocking read (BZPOPMIN) of the
messages that Redis holds for the process. When a client leaves, Channels
cancels its consumer's wait for the layer; if that consumer was the one
reading, and Redis had just answered, the message is dropped with the read,
for every consumer of the process it was meant for (django/channels_redis#366,
django/channels#1683; step 4's README has the figures).

Here a cancelled read is allowed to finish: a message it took then lands in
channels_redis's backup queue, from which the next read puts it back.
"""
import asyncio

from channels_redis import core


class RedisChannelLayer(core.RedisChannelLayer):
    async def _brpop_with_clean(self, index, channel, timeout):
        read = asyncio.ensure_future(super()._brpop_with_clean(index, channel, timeout))
        try:
            return await asyncio.shield(read)
        except asyncio.CancelledError:
            # Wait for the read (at most `timeout`, 5 s, and only while no
            # message comes) so that what it took is safe, then leave as asked.
            await asyncio.gather(read, return_exceptions=True)
            raise
