"""ASGI entry point: one application that speaks both HTTP and WebSocket.

In production, several uvicorn worker processes serve this `application`
(`uvicorn mysite.asgi:application --workers 2`); `manage.py runserver` and
daphne serve it too.
"""
import gc
import os

from channels.auth import AuthMiddleware
from channels.routing import ProtocolTypeRouter, URLRouter
from channels.sessions import CookieMiddleware, SessionMiddleware
from channels.security.websocket import AllowedHostsOriginValidator
from django.core.asgi import get_asgi_application

from mysite.redis_guard import RedisOutageGuard

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")

# Set Django up (settings, app registry) before importing code that may import
# models: the routing imports the consumers, and a model imported before the
# registry is ready raises AppRegistryNotReady.
django_asgi_app = get_asgi_application()

from chat.routing import websocket_urlpatterns  # noqa: E402 (must follow the setup)
from django.contrib.auth.models import AnonymousUser  # noqa: E402
from django.db import InterfaceError, OperationalError  # noqa: E402


class UserMiddleware(AuthMiddleware):
    """Channels' AuthMiddleware, which reads the session and its user from the
    database at every handshake, with one change: when the database cannot
    answer, the scope says so, and the consumer refuses with 4503 (try again
    later), as for any database outage, instead of the handshake failing with
    a traceback."""

    async def resolve_scope(self, scope):
        try:
            await super().resolve_scope(scope)
        except (OperationalError, InterfaceError) as error:
            scope["user"]._wrapped = AnonymousUser()
            scope["database_error"] = error


application = ProtocolTypeRouter(
    {
        # Ordinary requests (the pages, the admin) go to Django as usual.
        "http": django_asgi_app,
        # WebSocket handshakes pass four layers, outside in:
        # - the origin check refuses (HTTP 403) a handshake whose Origin host is
        #   not in ALLOWED_HOSTS, or that has no Origin, so a page on another
        #   site cannot open a socket here from a visitor's browser. It protects
        #   browsers; it is not authentication: other clients can send any Origin;
        # - the auth stack puts the logged-in user in scope["user"] (the
        #   session cookie's);
        # - the guard closes sockets cleanly if Redis goes away;
        # - the router picks a consumer by path, like urls.py picks a view.
        "websocket": AllowedHostsOriginValidator(
            # AuthMiddlewareStack(inner) is these three, with Channels' AuthMiddleware.
            CookieMiddleware(SessionMiddleware(UserMiddleware(
                RedisOutageGuard(URLRouter(websocket_urlpatterns)))))
        ),
    }
)

# What the worker has loaded by now (Django, the apps, the libraries) stays
# until it exits. Set it aside, so that the garbage collector's full passes
# stop walking all of it: each pass used to stop every chat of the worker for
# tens of milliseconds (step 5's README: "A message to a room of 100").
gc.collect()  # first, so that no garbage is set aside with it
gc.freeze()
