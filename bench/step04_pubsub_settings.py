"""step04's settings, with the Redis pub/sub channel layer instead (benchmark only).

The benchmark serves the unchanged step04 folder with

    DJANGO_SETTINGS_MODULE=bench.step04_pubsub_settings
    PYTHONPATH=<the repository>

(step04's asgi.py only sets DJANGO_SETTINGS_MODULE if it is unset).
"""
from mysite.settings import *  # noqa: F403 (everything step04 sets...)
from mysite.settings import CHANNEL_LAYERS as STEP4_CHANNEL_LAYERS

# ...but this. Same Redis; no "capacity": the pub/sub layer keeps no backlog
# in Redis, so it has no capacity to set (it would ignore the key).
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
        "CONFIG": {"hosts": STEP4_CHANNEL_LAYERS["default"]["CONFIG"]["hosts"]},
    }
}
