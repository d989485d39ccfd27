"""Queue sealing now for every agreement still waiting to be sealed (after an
outage, or once the cause of repeated sealing failures is fixed)."""

from django.core.management.base import BaseCommand

from agreements.services.issuing import agreements_recover


class Command(BaseCommand):
    help = "Queue sealing again for agreements left in the SEALING state."

    def handle(self, *args, **options):
        queued = agreements_recover()
        self.stdout.write(f"Queued sealing for {len(queued)} agreement(s).")
