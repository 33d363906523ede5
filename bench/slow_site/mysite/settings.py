"""Settings for the benchmark's slow chat: only what a consumer needs.

No database, no templates, no apps: this project serves two WebSocket
consumers and nothing else.
"""
SECRET_KEY = "django-insecure-benchmark-only"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1"]
INSTALLED_APPS = []
DATABASES = {}
USE_TZ = True
