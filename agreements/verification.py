"""Verifying a sealed agreement PDF, for the /verify/ page, the
`verify_agreement` command and courts.

The file itself is judged in a sandbox process with CPU and memory limits
(agreements/sandbox.py runs agreements/pdfcheck.py, which says what makes a
file valid); here its answer becomes a report in the reader's language. A
file the sandbox could not finish is "could not be checked": never valid,
and not called damaged either, because nobody knows."""

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from agreements import pdfcheck, sandbox

log = logging.getLogger(__name__)

PDF_MAGIC = pdfcheck.PDF_MAGIC

REASONS = {
    pdfcheck.NOT_PDF: gettext_lazy("This is not a PDF file."),
    pdfcheck.UNREADABLE: gettext_lazy("The PDF is damaged or was changed: it cannot be read."),
    pdfcheck.UNSIGNED: gettext_lazy("The PDF carries no signature."),
    pdfcheck.SIGNATURE_UNCHECKED: gettext_lazy("A signature could not be checked."),
    pdfcheck.CONTAINER_ALTERED: gettext_lazy("The signature's data inside the PDF was altered."),
    pdfcheck.CHANGED: gettext_lazy("The document was changed after it was signed."),
    pdfcheck.UNTRUSTED: gettext_lazy("A signature's certificate is not issued by a trusted authority."),
    pdfcheck.SIGNATURE_INVALID: gettext_lazy("A signature is not valid."),
    pdfcheck.CHANGED_AFTER_LAST: gettext_lazy("The document was changed after the last signature."),
}


@dataclass
class SignatureReport:
    field: str
    signer: str
    issuer: str
    serial: str
    not_before: str
    not_after: str
    signed_at: str | None
    intact: bool
    trusted: bool
    covers_whole_file: bool
    valid: bool


@dataclass
class VerificationReport:
    sha256: str
    valid: bool = False
    reasons: list[str] = field(default_factory=list)
    signatures: list[SignatureReport] = field(default_factory=list)
    # False when the sandbox could not finish the check (a limit, a crash):
    # the file is then neither valid nor known to be invalid.
    checked: bool = True


def trust_roots_pem() -> bytes:
    """The roots a seal or signature must chain to (ODR_TRUST_ROOTS), as the
    sandbox reads them: it opens no file of its own."""
    return b"\n".join(Path(path).read_bytes() for path in settings.ODR_TRUST_ROOTS)


def verify_pdf(data: bytes) -> VerificationReport:
    answer = sandbox.check(data=data, roots_pem=trust_roots_pem())
    if "unchecked" in answer:
        return unchecked_report(answer["sha256"])
    try:
        signatures = [SignatureReport(**facts) for facts in answer["signatures"]]
        reasons = [str(REASONS[code]) for code in answer["reasons"]]
        report = VerificationReport(sha256=str(answer["sha256"]), reasons=reasons, signatures=signatures)
    except (KeyError, TypeError, AttributeError):
        # Not what pdfcheck.check writes: treat the child as broken.
        log.warning("verify: the sandbox answered in an unknown shape; the file could not be checked")
        return unchecked_report(hashlib.sha256(data).hexdigest())
    report.valid = not report.reasons and all(item.valid for item in report.signatures)
    return report


def unchecked_report(sha256: str) -> VerificationReport:
    return VerificationReport(
        sha256=sha256, checked=False,
        reasons=[_("The file could not be checked within the time and memory a check may use. A sealed "
                   "agreement from this platform is checked in well under a second: enter its verification "
                   "code instead, or ask for the file again.")],
    )
