"""Queue every filing delivery still pending (after an outage)."""

from django.core.management.base import BaseCommand

from agreements.services.filing import deliveries_recover


class Command(BaseCommand):
    help = "Queue delivery now for every filing still waiting to be delivered."

    def handle(self, *args, **options):
        queued = deliveries_recover()
        self.stdout.write(f"Queued delivery for {len(queued)} filing(s).")
