"""The benchmark's slow chat: the step 1 and step 2 consumers, each made slow.

    ws://127.0.0.1:<port>/ws/chat/sync/    SlowSyncConsumer  (as step 1)
    ws://127.0.0.1:<port>/ws/chat/async/   SlowAsyncConsumer (as step 2)

Served by daphne from this folder (workshop.servers.DaphneServer), like a step.
No origin check and no auth stack: the benchmark's clients are the only users.
"""
import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")
django.setup()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402

from chat.consumers import SlowAsyncConsumer, SlowSyncConsumer  # noqa: E402

application = ProtocolTypeRouter(
    {
        "websocket": URLRouter(
            [
                path("ws/chat/sync/", SlowSyncConsumer.as_asgi()),
                path("ws/chat/async/", SlowAsyncConsumer.as_asgi()),
            ]
        ),
    }
)
