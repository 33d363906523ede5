"""ASGI entry point: one application that speaks both HTTP and WebSocket.

`manage.py runserver` (with daphne installed) and `daphne mysite.asgi:application`
both serve this `application`.
"""
import os

from channels.auth import AuthMiddlewareStack
from channels.routing import ProtocolTypeRouter, URLRouter
from channels.security.websocket import AllowedHostsOriginValidator
from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")

# Set Django up before importing chat.routing: it imports the consumers, which
# may import models, and models need the app registry that this call fills.
django_asgi_app = get_asgi_application()

from chat.routing import websocket_urlpatterns  # noqa: E402 (must follow the setup)

application = ProtocolTypeRouter(
    {
        # Ordinary requests (the pages, the admin) go to Django as usual.
        "http": django_asgi_app,
        # WebSocket handshakes pass three layers, outside in:
        # - the origin check refuses pages served by other sites (HTTP 403),
        #   so a random web page cannot open a socket to your chat;
        # - the auth stack puts the logged-in user in scope["user"];
        # - the router picks a consumer by path, like urls.py picks a view.
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
        ),
    }
)
