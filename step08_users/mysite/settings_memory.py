"""These settings with step 3's in-memory channel layer: `make stepN-memory`,
N being this step's number.

Only to see why production needs Redis: each worker process gets a layer of
its own, so a room splits into as many rooms as there are workers.
"""
from .settings import *  # noqa: F403

CHANNEL_LAYERS = {
    "default": {"BACKEND": "channels.layers.InMemoryChannelLayer", "CONFIG": {"capacity": 1000}}
}
