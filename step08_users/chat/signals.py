"""Logging out closes the user's sockets, in every tab and on every worker.

A WebSocket keeps the user it was opened with: AuthMiddlewareStack reads the
session once, at the handshake, and Channels never looks at it again. Logging
out ends the session for the next HTTP request, not for a socket already
open, which would go on reading and posting as that user. So every socket of
a user joins the group user_<id> (chat/consumers.py), and logging out tells
that group, through the channel layer: every worker hears it.
"""
import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.contrib.auth.signals import user_logged_out
from django.dispatch import receiver
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)


@receiver(user_logged_out)
def close_the_users_sockets(sender, request, user, **kwargs):
    if user is None:  # logging out while not logged in
        return
    # Django sends this signal from a synchronous view (LogoutView), in a
    # thread: async_to_sync runs the send on the server's event loop and waits.
    try:
        async_to_sync(get_channel_layer().group_send)(
            f"user_{user.pk}", {"type": "session.ended"}
        )
    except RedisError as error:
        # Log out all the same. Redis being away, the guard (mysite/redis_guard.py)
        # closes the sockets that use it; a socket it leaves open stays the user's.
        logger.warning("Redis unavailable, sockets of user %s stay open: %s", user.pk, error)
