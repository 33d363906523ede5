from django.urls import path, re_path

from . import views
from .protocol import ROOM_NAME_PATTERN

urlpatterns = [
    path("", views.index, name="index"),
    # Before the room pattern, which "signup" would match too.
    path("signup/", views.signup, name="signup"),
    # The same room-name pattern as the WebSocket route in routing.py.
    re_path(rf"^(?P<room_name>{ROOM_NAME_PATTERN})/$", views.room, name="room"),
]
