"""Logging out closes the user's room sockets at once (4401), in every process."""

from django.contrib.auth import signals as auth_signals
from django.dispatch import receiver

from sessions import events


@receiver(auth_signals.user_logged_out)
def _close_sockets_on_logout(sender, request, user, **kwargs):
    if user is not None and user.pk:
        events.send_logout(user.pk)
