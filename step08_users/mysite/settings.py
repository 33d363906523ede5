"""Settings for the workshop's chat site, ready for production.

Secrets and switches come from the environment, never from this file: the
same code runs on your laptop and on the server, and the secret key is not in
git. The workshop's `make stepN` (N = 5 on) sets safe local values
(see README.md).
"""
import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

BASE_DIR = Path(__file__).resolve().parent.parent

# Off unless DJANGO_DEBUG=1: debug pages show your settings to the world.
DEBUG = os.environ.get("DJANGO_DEBUG") == "1"
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    raise ImproperlyConfigured("Set DJANGO_SECRET_KEY: see README.md in this folder")
# Comma-separated host names, e.g. "chat.example.com". The WebSocket origin
# check in asgi.py uses this list too.
ALLOWED_HOSTS = [
    host.strip() for host in os.environ.get("DJANGO_ALLOWED_HOSTS", "").split(",") if host.strip()
]

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
    # Serves the collected static files (the admin's CSS and JS) from the
    # same server processes: no separate file server to run.
    "servestatic.middleware.ServeStaticMiddleware",
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

# The messages live here. DATABASE_URL picks the database, for example
# postgres://chat:secret@db.internal:5432/chat; without it, SQLite in
# db.sqlite3. No persistent connections (CONN_MAX_AGE 0), as Django's docs
# ask under ASGI: each HTTP request (the admin's) runs in a thread of its own
# and would leave its connection open behind it. So each message opens a
# connection (SQLite: a file; PostgreSQL: a few milliseconds on one machine).
# psycopg's pool (OPTIONS {"pool": {...}}, psycopg[pool]) would save that, but
# while PostgreSQL is down each query would wait for the pool's timeout, one
# after another in the worker's one database thread: see README.md.
DATABASES = {
    "default": dj_database_url.config(
        default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}", conn_max_age=0, conn_health_checks=True
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several worker processes write to one SQLite file:
    # - WAL: readers never wait for the writer, nor the writer for readers;
    # - IMMEDIATE: a transaction takes the write lock when it begins, so two
    #   writers queue up instead of one failing with "database is locked";
    # - timeout: how many seconds a writer may queue (the default is 5).
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }

# Users: Django's own auth (django.contrib.auth), with its sessions. The chat
# pages need a logged-in user; an anonymous visitor goes to the login page.
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "index"
LOGOUT_REDIRECT_URL = "login"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
# `manage.py collectstatic` copies every app's static files here.
STATIC_ROOT = BASE_DIR / "staticfiles"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# The proxy in front (deploy/nginx.conf) ends TLS and says in this header
# whether the browser used https; Django trusts it because only the proxy
# can reach the server processes.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# With DEBUG off, Django's default logging reports its own errors (a 500,
# say) only by email to ADMINS, and this site has none. Print warnings and
# errors on the console instead, one line each.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"line": {"format": "%(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "line"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
}

# The channel layer lets consumers send messages to each other. This one
# lives in Redis: every server process that uses the same Redis shares its
# groups, so a room spans processes (and machines).
# Flood control (chat/flood.py): at most this many messages per user every
# 10 seconds, across all their tabs and workers. From the environment like
# the rest: a load test raises it.
CHAT_FLOOD_LIMIT = int(os.environ.get("CHAT_FLOOD_LIMIT", "20"))

CHANNEL_LAYERS = {
    "default": {
        # channels_redis's RedisChannelLayer, with two upstream weak spots
        # worked around (mysite/layers.py).
        "BACKEND": "mysite.layers.RedisChannelLayer",
        # Messages a server process may have waiting in Redis before the
        # layer drops new ones (default 100). A burst needs more: see README.
        # group_expiry: a member that has not joined again for this long is
        # forgotten (default: a day). chat/consumers.py joins again in time; a
        # socket that ended without leaving is forgotten within 5 minutes.
        "CONFIG": {"capacity": 1000, "group_expiry": 300, "hosts": [{
            "address": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
            # The layer waits for messages with 5 s blocking reads. Longer
            # than that with no answer, and Redis is gone without a word (a
            # frozen server, a dropped network): give up, so the guard can act.
            "socket_timeout": 10,
            # redis-py 8 pools stop at 100 connections: too few for a burst.
            "max_connections": 2000,
            # After Redis restarts, the pooled connections are dead.
            # Retry once, on a new connection, instead of failing.
            "retry": Retry(NoBackoff(), retries=1),
        }]},
    }
}

# The chat's own state in Redis, who is here and the flood counters
# (chat/presence.py): on the layer's Redis, with the layer's settings.
CHAT_REDIS = CHANNEL_LAYERS["default"]["CONFIG"]["hosts"][0]
