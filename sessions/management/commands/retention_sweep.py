"""Destroy the content of every closed case past its retention date.

Destruction is normally queued when a case closes; this sweep (run daily by
a timer, see deploy/) catches anything left: holds lifted late, a shorter
ODR_RETENTION_DAYS. Emails that could not be delivered are purged from the
sealed outbox after a week. Safe to run at any time and repeatedly."""

from django.core.management.base import BaseCommand

from odr.mail import outbox_purge
from sessions.services.retention import retention_sweep


class Command(BaseCommand):
    help = "Crypto-shred the content of closed cases past ODR_RETENTION_DAYS (legal holds respected)."

    def handle(self, *args, **options):
        destroyed = retention_sweep()
        self.stdout.write(f"{len(destroyed)} case(s) destroyed.")
        self.stdout.write(f"{outbox_purge()} undelivered email(s) older than a week purged.")
