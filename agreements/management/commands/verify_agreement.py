"""Verify a sealed agreement PDF as /verify/ does, in the same sandbox and
within the same limits; exit status 1 when it is not valid, or could not be
checked."""

import json
from dataclasses import asdict
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from agreements.selectors import verify_file
from agreements.verification import verify_pdf


class Command(BaseCommand):
    help = (
        "Verify the signatures and seal of an agreement PDF and that it is, byte for byte, an agreement "
        "this platform sealed (exit 1 if not valid)."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)
        parser.add_argument("--json", action="store_true", help="Print the full report as JSON.")
        parser.add_argument(
            "--signatures-only", action="store_true",
            help="Judge the file's signatures and seal only, without the platform's register.",
        )

    def handle(self, *args, file: Path, json: bool = False, signatures_only: bool = False, **options):
        try:
            data = file.read_bytes()
        except OSError as error:
            raise CommandError(f"{file}: {error.strerror}") from None
        if signatures_only:
            report, record = verify_pdf(data), None
            valid = report.valid
        else:
            verification = verify_file(data)
            report, record, valid = verification.report, verification, verification.valid
        if json:
            out = asdict(report)
            out["valid"] = valid
            if record is not None and record.agreement is not None:
                out["register"] = _register(record)
            self.stdout.write(_dumps(out))
        else:
            verdict = "VALID" if valid else "NOT VALID" if report.checked else "COULD NOT BE CHECKED"
            self.stdout.write(f"{file}: {verdict}")
            self.stdout.write(f"SHA-256: {report.sha256}")
            if record is not None and record.agreement is not None:
                register = _register(record)
                self.stdout.write(f"Case {register['case']}, sealed {register['sealed_at']}, "
                                  f"verification code {register['verification_code']}")
                for signer in register["signers"]:
                    self.stdout.write(f"  signed by {signer['name']} ({signer['role']}) {signer['signed_at']} "
                                      f"by {signer['method']}")
            for item in report.signatures:
                self.stdout.write(
                    f"- {item.field}: {item.signer}; signed {item.signed_at or '?'}; "
                    f"intact={item.intact} trusted={item.trusted} whole file={item.covers_whole_file}"
                )
            for reason in report.reasons:
                self.stdout.write(f"! {reason}")
        if not valid:
            raise SystemExit(1)


def _register(record) -> dict:
    agreement = record.agreement
    return {
        "case": agreement.case.reference,
        "verification_code": agreement.verification_code,
        "sealed_at": agreement.sealed_at.isoformat(),
        "frozen_sha256": agreement.frozen_sha256,
        "signers": [
            {"name": s.user.display_name, "role": s.role, "method": s.method,
             "signed_at": s.signed_at.isoformat() if s.signed_at else None}
            for s in record.signers
        ],
    }


def _dumps(value) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2)
