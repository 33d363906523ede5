"""Settings for the workshop's chat site, kept to what the chat needs.

For development only: the secret key is public and DEBUG is on.
"""
import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = "django-insecure-workshop-key-for-local-development-only"
DEBUG = True
# Empty with DEBUG on means localhost, 127.0.0.1 and [::1]. The WebSocket
# origin check in asgi.py uses this list too.
ALLOWED_HOSTS = []

INSTALLED_APPS = [
    # daphne first: it replaces runserver with one that also speaks WebSocket.
    "daphne",
    "chat",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "mysite.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "mysite.wsgi.application"
# Channels: the application that daphne and runserver serve.
ASGI_APPLICATION = "mysite.asgi.application"

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": BASE_DIR / "db.sqlite3",
    }
}

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# The channel layer lets consumers send messages to each other. This one
# lives in Redis: every server process that uses the same Redis shares its
# groups, so a room spans processes (and machines).
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        # Messages a server process may have waiting in Redis before the
        # layer drops new ones (default 100). A burst needs more: see README.
        "CONFIG": {"capacity": 1000, "hosts": [{
            "address": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
            # The layer waits for messages with 5 s blocking reads; redis-py 8
            # would cut every read at 5 s and end the socket: no read timeout.
            "socket_timeout": None,
            # redis-py 8 pools stop at 100 connections: too few for a burst.
            "max_connections": 2000,
        }]},
    }
}
