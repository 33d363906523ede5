from django.db import DatabaseError
from django.shortcuts import render

from .models import Room
from .protocol import HISTORY_LENGTH


def index(request):
    return render(request, "chat/index.html")


def room(request, room_name):
    # Where the page's first socket starts: after the room's latest messages
    # but HISTORY_LENGTH, as a socket without ?since= would. Said in the page,
    # so that a socket that dies before the history arrives comes back with
    # this ?since=, not since=0 (the whole room).
    try:
        stored = Room.objects.filter(name=room_name).first()
        since = max(stored.last_number - HISTORY_LENGTH, 0) if stored else 0
    except DatabaseError:
        since = None  # the page asks with no since; its socket will say why
    return render(request, "chat/room.html", {"room_name": room_name, "since": since})
