"""Reads about agreements: what a case's members see, and what the public
verification page may show (no confidential case content: the case
reference, the signers, times, methods, certificates and fingerprints)."""

from dataclasses import dataclass, field

from django.db.models import Q
from django.utils.translation import gettext as _

from agreements import sandbox
from agreements.models import Agreement, AgreementStatus
from agreements.services.issuing import sealed_pdf
from agreements.services.signing import verification_code_normalise
from agreements.verification import VerificationReport, verify_pdf


@dataclass
class Verification:
    """A file's verdict, with the platform's record of it when there is one."""

    report: VerificationReport
    agreement: Agreement | None = None
    signers: list = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return self.report.valid and self.agreement is not None


def _with_record(report: VerificationReport, agreement: Agreement | None) -> Verification:
    if agreement is None:
        report.reasons.append(_("This file is not an agreement sealed by this platform (its fingerprint is not in the register)."))
        report.valid = False
        return Verification(report=report)
    signers = list(agreement.signers.select_related("user"))
    return Verification(report=report, agreement=agreement, signers=signers)


def verify_file(data: bytes) -> Verification:
    """A PDF someone holds: valid if its signatures and seal are (see
    verification.verify_pdf) and it is, byte for byte, a sealed agreement in
    the platform's register. Anyone can send one, so it waits for one of the
    process's slots for uploads first (sandbox.Busy if none frees up). A file
    that could not be checked is not looked up in the register."""
    with sandbox.upload_slot():
        report = verify_pdf(data)
    if not report.checked:
        return Verification(report=report)
    agreement = (
        Agreement.objects.select_related("case").filter(sealed_sha256=report.sha256, status=AgreementStatus.SEALED).first()
    )
    return _with_record(report, agreement)


def verify_code(code: str) -> Verification | None:
    """The agreement a verification code names (None if none), with the
    verdict on the sealed PDF the platform holds."""
    normalised = verification_code_normalise(code)
    agreement = (
        Agreement.objects.select_related("case").filter(verification_code=normalised, status=AgreementStatus.SEALED).first()
    )
    if agreement is None:
        return None
    report = verify_pdf(sealed_pdf(agreement))
    return _with_record(report, agreement)


def filings_for_court(*, court, status: str = "", number: str = "", since=None, until=None):
    """A court's filings (only its own), newest first, filtered."""
    from agreements.models import Filing

    rows = Filing.objects.filter(court=court).select_related("case", "agreement")
    if status:
        rows = rows.filter(status=status)
    if number:
        rows = rows.filter(Q(court_case_number__icontains=number) | Q(case__reference__icontains=number))
    if since:
        rows = rows.filter(filed_at__date__gte=since)
    if until:
        rows = rows.filter(filed_at__date__lte=until)
    return rows.order_by("-filed_at", "-pk")


def filing_of_court(*, court, public_id):
    """One filing of `court` (None for another court's: it does not exist for them)."""
    from agreements.models import Filing

    return (
        Filing.objects.select_related("case", "court", "agreement").prefetch_related("events")
        .filter(public_id=public_id, court=court).first()
    )
