"""Rewrap every case's data key under the current master key.

Procedure (docs/confidentiality.md, docs/operations.md):
  1. `manage.py rotate_master_key --generate` prints a new key.
  2. Set ODR_MASTER_KEY to the new key and ODR_PREVIOUS_MASTER_KEYS to the
     old one; restart the processes (both keys now read, the new one writes).
  3. `manage.py rotate_master_key` rewraps every data key under the new key;
     content is not touched.
  4. Remove the old key from ODR_PREVIOUS_MASTER_KEYS, restart, and destroy
     every copy of it (backups of the key included).
"""

from django.core.management.base import BaseCommand, CommandError

from odr import crypto
from odr.audit import audit_record
from odr.models import AuditAction, DataKey


class Command(BaseCommand):
    help = "Rewrap every data key under the current master key (ODR_MASTER_KEY)."

    def add_arguments(self, parser):
        parser.add_argument("--generate", action="store_true", help="Print a new random master key and exit.")

    def handle(self, *args, generate=False, **options):
        if generate:
            self.stdout.write(crypto.generate_master_key())
            return
        kid = crypto.current_key_id()
        try:
            rewrapped, current = crypto.rewrap_all()
        except crypto.UndecryptableError as error:
            raise CommandError(
                f"{error} Put the old master key in ODR_PREVIOUS_MASTER_KEYS and run again; nothing was changed "
                "in the batch that failed."
            ) from None
        left = DataKey.objects.filter(destroyed_at__isnull=True).exclude(key_id=kid).count()
        audit_record(
            action=AuditAction.MASTER_KEY_ROTATED, actor=None,
            details={"key_id": kid, "rewrapped": rewrapped, "already_current": current},
        )
        self.stdout.write(
            f"Master key {kid}: {rewrapped} data keys rewrapped, {current} already under it, {left} left."
        )
