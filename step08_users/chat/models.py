"""What the chat remembers: every message, numbered 1, 2, 3, ... in its room.

The channel layer delivers at most once and forgets; the database keeps each
message, so a client that missed some (it was away, a worker died, Redis
restarted) asks for them again by number.
"""
from django.conf import settings
from django.db import models, transaction


class Room(models.Model):
    """A room, created with its first message. It hands out the numbers."""

    name = models.CharField(max_length=80, unique=True)
    # The number of the room's latest message (0 before the first one).
    last_number = models.PositiveBigIntegerField(default=0)
    # Who may enter. None: a public room, open to every logged-in user, as
    # before. Someone: a private room, for them alone (set in the admin).
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="private_rooms"
    )

    def __str__(self):
        return self.name


def may_enter(room_name, user):
    """Whether the user may read and post in the room: a public room (no
    members, or not created yet) or one the user is a member of."""
    room = Room.objects.filter(name=room_name).first()
    if room is None or not room.members.exists():
        return True
    return room.members.filter(pk=user.pk).exists()


class Message(models.Model):
    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="messages")
    # Its place in the room: 1, 2, 3, ... with no gap. The frames call it "id".
    number = models.PositiveBigIntegerField()
    text = models.TextField()
    # Who said it: the user, not a copy of their name (a renamed user's old
    # messages show the new name). Null for messages stored before this step,
    # and for those of a user since deleted.
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The sender's own name for this message, so that sending it twice (after
    # a reconnect, say) stores it once. None for clients that send no key.
    key = models.CharField(max_length=64, null=True, blank=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["room", "number"], name="one_message_per_number"),
            # Rows whose key is NULL never clash: SQL counts no two NULLs as equal.
            models.UniqueConstraint(fields=["room", "key"], name="one_message_per_key"),
        ]

    def __str__(self):
        return f"{self.room} #{self.number}: {self.text[:40]}"

    def as_frame(self):
        """What the clients receive: {"id": 7, "author": "alice", "message": "hi"},
        and "key" if it has one. "author" is null if that user was deleted."""
        frame = {"id": self.number, "author": self.author.username if self.author else None,
                 "message": self.text}
        if self.key is not None:
            frame["key"] = self.key
        return frame


def store_message(room_name, text, key=None, author=None):
    """Save a message; return (message, True), or (the stored one, False) for a known key.

    One transaction, and one sender per room at a time: the room's row stays
    locked until the commit. So each message gets the next number and is
    committed before the next number is handed out: whoever sees message 7
    can be sure that 1 to 6 are in the database too.
    """
    with transaction.atomic():
        # PostgreSQL locks the row (SELECT ... FOR UPDATE). SQLite has no row
        # locks: there "transaction_mode": "IMMEDIATE" (settings.py) locks the
        # whole database for writing from the start of the transaction.
        room, _ = Room.objects.select_for_update().get_or_create(name=room_name)
        if key is not None:
            stored = room.messages.select_related("author").filter(key=key).first()
            if stored is not None:
                return stored, False
        room.last_number += 1
        room.save(update_fields=["last_number"])
        message = room.messages.create(
            number=room.last_number, text=text, key=key, author=author
        )
        return message, True


def messages_after(room_id, number, count):
    """The room's first `count` messages after `number`, in order.

    By the room's id, not its name: `room__name=` joins the rooms, and
    PostgreSQL's planner then walks the room_id index and sorts every message
    of the room for each batch (26 ms at 100,000 messages, 166 ms at 300,000).
    With the id, it is one range of the unique (room, number) index, read in
    order: under a millisecond, however big the room.
    """
    messages = Message.objects.filter(room_id=room_id, number__gt=number).order_by("number")
    # select_related: each message's author in the same query, not one query per message.
    return messages.select_related("author")[:count]
