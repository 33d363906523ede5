from django.urls import re_path

from . import consumers
from .protocol import ROOM_NAME_PATTERN

# The WebSocket counterpart of urls.py: which consumer serves which path.
websocket_urlpatterns = [
    re_path(
        rf"^ws/chat/(?P<room_name>{ROOM_NAME_PATTERN})/$",
        consumers.ChatConsumer.as_asgi(),
    ),
    # Every other path, a room name outside the pattern included, is refused
    # cleanly here rather than failing with "No route found" in the server log.
    re_path(r"", consumers.RejectConsumer.as_asgi()),
]
