"""step08's settings, with a cheap password hasher (benchmark only).

The flood section signs up 51 users or more through step 8's sign-up form
before it measures anything, and Django's default hasher (PBKDF2, a million
iterations) takes about half a second of CPU per password on the benchmark's
2-core machine: 51 sign-ups took 30 s there. Django's docs advise a fast hasher for
tests, for the same reason. Nothing measured hashes a password: a WebSocket
handshake checks the session's user with an HMAC of the stored hash
(get_session_auth_hash()), which costs the same whatever the hasher.

Served like step04_pubsub_settings.py: DJANGO_SETTINGS_MODULE names this
module, PYTHONPATH holds the repository (step08's asgi.py and manage.py only
set a default).
"""
from mysite.settings import *  # noqa: F403 (everything step08 sets...)

# ...but this. MD5 is no way to keep a password: for throwaway users only.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
