"""Verifying a sealed agreement PDF, for the /verify/ page, the
`verify_agreement` command and courts.

A file is valid only if it is a PDF, every signature in it is intact and
chains to a trusted root (pyHanko's `bottom_line`), and the last signature
covers the entire file: pyHanko's `valid` alone stays true for a tampered
byte, and bytes appended after the last signature are not covered by it."""

import hashlib
import io
from dataclasses import dataclass, field

from asn1crypto import cms
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from django.conf import settings
from django.utils.translation import gettext as _
from pyhanko.keys import load_cert_from_pemder
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko.sign.validation.status import SignatureCoverageLevel
from pyhanko_certvalidator import ValidationContext

PDF_MAGIC = b"%PDF-"


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


def trust_roots() -> list:
    return [load_cert_from_pemder(path) for path in settings.ODR_TRUST_ROOTS]


def _container_untouched(embedded, roots) -> bool:
    """What pyHanko does not judge: the signature container itself. The PDF
    reserves room for it and pads the rest with zeros, and it carries copies
    of certificates that need not be used for validation; a changed byte in
    either leaves pyHanko's verdict as it was. So: the padding is all zeros,
    and every embedded certificate is signed by its issuer (another embedded
    certificate or a trusted root)."""
    try:
        raw = bytes(embedded.sig_object["/Contents"])
        container = cms.ContentInfo.load(raw)
        if any(raw[len(container.dump()):]):
            return False
        embedded_certs = [
            x509.load_der_x509_certificate(choice.chosen.dump())
            for choice in embedded.signed_data["certificates"]
        ]
        issuers = embedded_certs + [x509.load_der_x509_certificate(root.dump()) for root in roots]
        for certificate in embedded_certs:
            candidates = [i for i in issuers if i.subject == certificate.issuer]
            if not any(_issued_by(certificate, issuer) for issuer in candidates):
                return False
    except Exception:  # noqa: BLE001 — anything unreadable in the container is an alteration
        return False
    return True


def _issued_by(certificate, issuer) -> bool:
    try:
        certificate.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def verify_pdf(data: bytes) -> VerificationReport:
    report = VerificationReport(sha256=hashlib.sha256(data).hexdigest())
    if not data.startswith(PDF_MAGIC):
        report.reasons.append(_("This is not a PDF file."))
        return report
    try:
        signatures = PdfFileReader(io.BytesIO(data), strict=False).embedded_signatures
    except Exception:  # noqa: BLE001 — the reader fails in many ways on a damaged file (even assert)
        report.reasons.append(_("The PDF is damaged or was changed: it cannot be read."))
        return report
    if not signatures:
        report.reasons.append(_("The PDF carries no signature."))
        return report
    roots = trust_roots()
    for position, embedded in enumerate(signatures):
        try:
            status = validate_pdf_signature(embedded, ValidationContext(trust_roots=roots))
        except Exception:  # noqa: BLE001 — any failure to validate is "not valid", with a reason
            report.reasons.append(_("A signature could not be checked."))
            continue
        if not _container_untouched(embedded, roots):
            report.reasons.append(_("The signature's data inside the PDF was altered."))
        last = position == len(signatures) - 1
        whole = status.coverage == SignatureCoverageLevel.ENTIRE_FILE
        signed_at = getattr(status, "signer_reported_dt", None)
        certificate = status.signing_cert
        item = SignatureReport(
            field=embedded.field_name,
            signer=certificate.subject.human_friendly,
            issuer=certificate.issuer.human_friendly,
            serial=format(certificate.serial_number, "X"),
            not_before=certificate.not_valid_before.isoformat(),
            not_after=certificate.not_valid_after.isoformat(),
            signed_at=signed_at.isoformat() if signed_at else None,
            intact=bool(status.intact),
            trusted=bool(status.trusted),
            covers_whole_file=whole,
            valid=bool(status.bottom_line) and (whole or not last),
        )
        report.signatures.append(item)
        if not status.intact:
            report.reasons.append(_("The document was changed after it was signed."))
        elif not status.trusted:
            report.reasons.append(_("A signature's certificate is not issued by a trusted authority."))
        elif not status.bottom_line:
            report.reasons.append(_("A signature is not valid."))
        if last and not whole:
            report.reasons.append(_("The document was changed after the last signature."))
    report.reasons = list(dict.fromkeys(report.reasons))
    report.valid = not report.reasons and all(item.valid for item in report.signatures)
    return report
