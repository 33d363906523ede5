"""ASGI entry point: one application that speaks both HTTP and WebSocket.

`manage.py runserver` (with daphne installed) and `daphne mysite.asgi:application`
both serve this `application`.
"""
import os

from channels.routing import ProtocolTypeRouter
from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")

django_asgi_app = get_asgi_application()

application = ProtocolTypeRouter(
    {
        # Ordinary requests (the pages, the admin) go to Django as usual.
        "http": django_asgi_app,
        # Step 1 adds "websocket" here: until then nothing answers the chat's socket.
    }
)
