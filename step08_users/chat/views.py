from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import UserCreationForm
from django.db import DatabaseError
from django.shortcuts import redirect, render

from .models import Room, may_enter
from .protocol import HISTORY_LENGTH


def signup(request):
    """Django's own form: a user name and a password typed twice, checked by
    AUTH_PASSWORD_VALIDATORS. Logged in at once, then to the rooms."""
    form = UserCreationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        login(request, form.save())
        return redirect("index")
    return render(request, "registration/signup.html", {"form": form})


# login_required: an anonymous visitor goes to the login page, and back here
# after (?next=/chat/lobby/).
@login_required
def index(request):
    return render(request, "chat/index.html")


@login_required
def room(request, room_name):
    # Where the page's first socket starts: after the room's latest messages
    # but HISTORY_LENGTH, as a socket without ?since= would. Said in the page,
    # so that a socket that dies before the history arrives comes back with
    # this ?since=, not since=0 (the whole room).
    try:
        if not may_enter(room_name, request.user):
            # A private room: the page would only have its socket refused.
            return render(request, "chat/private.html", {"room_name": room_name}, status=403)
        stored = Room.objects.filter(name=room_name).first()
        since = max(stored.last_number - HISTORY_LENGTH, 0) if stored else 0
    except DatabaseError:
        since = None  # the page asks with no since; its socket will say why
    return render(request, "chat/room.html", {"room_name": room_name, "since": since})
