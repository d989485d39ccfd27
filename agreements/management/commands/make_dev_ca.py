"""Create the development CA and the platform's sealing certificate.

Writes ODR_PKI_DIR/ca.pem (the trust root to give `pyhanko sign validate
--trust`) and ODR_PKI_DIR/seal.p12 (ODR_SEAL_PKCS12, with
ODR_SEAL_PASSPHRASE). Leaves existing files alone unless --force: a new CA
would make every agreement sealed before it untrusted here."""

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from agreements.pki import DEMO_SIGNER_FILE, DEMO_SIGNER_PASSWORD, write_dev_pki


class Command(BaseCommand):
    help = "Create a development CA and the platform's sealing certificate (never for production)."

    def add_arguments(self, parser):
        parser.add_argument("--force", action="store_true", help="Replace an existing development CA.")

    def handle(self, *args, force=False, **options):
        directory = Path(settings.ODR_PKI_DIR)
        if not settings.ODR_SEAL_PASSPHRASE:
            raise CommandError("Set ODR_SEAL_PASSPHRASE first.")
        if (directory / "ca.pem").exists() and (directory / "seal.p12").exists() and not force:
            self.stdout.write(f"The development CA is already in {directory} (use --force to replace it).")
            return
        ca, p12 = write_dev_pki(directory, settings.ODR_SEAL_PASSPHRASE)
        self.stdout.write(
            f"Development CA: {ca}\nPlatform seal: {p12}\n"
            f"Demo signer certificate: {directory / DEMO_SIGNER_FILE} (password {DEMO_SIGNER_PASSWORD})"
        )
