"""What closes an open socket when who may use it changes.

Logging out closes the user's sockets, in every tab and on every worker; so
does deleting the user.

A WebSocket keeps the user it was opened with: AuthMiddlewareStack reads the
session once, at the handshake, and Channels never looks at it again. Logging
out ends the session for the next HTTP request, not for a socket already
open, which would go on reading and posting as that user. So every socket of
a user joins the group user_<id> (chat/consumers.py), and logging out tells
that group, through the channel layer: every worker hears it.

Changing a private room's members rechecks every socket in that room.
"""
import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.contrib.auth.signals import user_logged_out
from django.db import transaction
from django.db.models.signals import m2m_changed, post_delete
from django.dispatch import receiver
from redis.exceptions import RedisError

from .models import Room

logger = logging.getLogger(__name__)


@receiver(user_logged_out)
def close_the_users_sockets(sender, request, user, **kwargs):
    if user is None:  # logging out while not logged in
        return
    close_the_sockets_of(user.pk)


@receiver(post_delete, sender=settings.AUTH_USER_MODEL)
def close_a_deleted_users_sockets(sender, instance, **kwargs):
    # A user deleted (in the admin, say) is logged out of every socket too,
    # once the deletion is committed. (Django sets instance.pk to None after
    # this signal: keep it now.)
    user_id = instance.pk
    transaction.on_commit(lambda: close_the_sockets_of(user_id))


def close_the_sockets_of(user_id):
    # The signals come from synchronous code (LogoutView, the admin), in a
    # thread: async_to_sync runs the send on the server's event loop and waits.
    try:
        async_to_sync(get_channel_layer().group_send)(
            f"user_{user_id}", {"type": "session.ended"}
        )
    except RedisError as error:
        # Log out all the same. Redis being away, the guard (mysite/redis_guard.py)
        # closes the sockets that use it; a socket it leaves open stays the user's.
        logger.warning("Redis unavailable, sockets of user %s stay open: %s", user_id, error)


@receiver(m2m_changed, sender=Room.members.through)
def recheck_the_rooms_sockets(sender, instance, action, reverse, pk_set, **kwargs):
    """Who may enter a room changed (in the admin, say): every socket in it
    checks again, and those of users who may no longer enter are closed
    (chat/consumers.py, membership_changed). Checked once the change is
    committed: a socket checking earlier would read the old members."""
    if action not in ("post_add", "post_remove", "post_clear"):
        return
    if reverse:  # user.private_rooms.add(room): instance is the user
        names = list(Room.objects.filter(pk__in=pk_set or ()).values_list("name", flat=True))
        if action == "post_clear":
            names = None  # which rooms is no longer known: see below
    else:
        names = [instance.name]
    if names is None:
        names = list(Room.objects.values_list("name", flat=True))

    def tell():
        layer = get_channel_layer()
        for name in names:
            try:
                async_to_sync(layer.group_send)(f"chat_{name}", {"type": "membership.changed"})
            except RedisError as error:
                logger.warning("Redis unavailable, room %s not told of its members: %s",
                               name, error)

    transaction.on_commit(tell)
