from django.core.management.base import BaseCommand, CommandError

from odr.audit import audit_verify


class Command(BaseCommand):
    help = "Check the audit log's hash chain; exit non-zero if any row was changed or removed."

    def handle(self, *args, **options):
        report = audit_verify()
        if not report.ok:
            for problem in report.problems:
                self.stderr.write(problem)
            raise CommandError(f"Audit chain broken: {len(report.problems)} problem(s) in {report.checked} rows.")
        self.stdout.write(
            self.style.SUCCESS(f"Audit chain intact: {report.checked} rows; last hash {report.last_hash}.")
        )
