"""Verify a sealed agreement PDF; exit status 1 when it is not valid."""

import json
from dataclasses import asdict
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from agreements.verification import verify_pdf


class Command(BaseCommand):
    help = "Verify the seal and signatures of an agreement PDF (exit 1 if invalid)."

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)
        parser.add_argument("--json", action="store_true", help="Print the full report as JSON.")

    def handle(self, *args, file: Path, json: bool = False, **options):
        try:
            data = file.read_bytes()
        except OSError as error:
            raise CommandError(f"{file}: {error.strerror}") from None
        report = verify_pdf(data)
        if json:
            self.stdout.write(_dumps(asdict(report)))
        else:
            self.stdout.write(f"{file}: {'VALID' if report.valid else 'NOT VALID'}")
            self.stdout.write(f"SHA-256: {report.sha256}")
            for item in report.signatures:
                self.stdout.write(
                    f"- {item.field}: {item.signer}; signed {item.signed_at or '?'}; "
                    f"intact={item.intact} trusted={item.trusted} whole file={item.covers_whole_file}"
                )
            for reason in report.reasons:
                self.stdout.write(f"! {reason}")
        if not report.valid:
            raise SystemExit(1)


def _dumps(value) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2)
