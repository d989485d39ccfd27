"""Sealing a fully signed agreement, and handing out the sealed PDF.

Sealing runs on the durable job queue, never in a request: the platform
signs the box of each signer who used a one-time code (attesting their
signature with its time and method), then seals the whole file. The job is
idempotent: it works on a locked agreement in SEALING, writes the result and
the SEALED state in one transaction, and does nothing for any other state.
Each attempt first queues its own follow-up
(ODR_SEAL_RETRY_SECONDS later), so a crash or an error before that commit
leaves the agreement in SEALING with the next attempt already on the queue;
`manage.py agreements_recover` queues every unfinished one at once. The sealed PDF is sealed at rest with the
platform's "agreements" key, so it survives the case's retention purge."""

import datetime
import hashlib
import logging

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone

from agreements import rendering
from agreements.models import Agreement, AgreementStatus, SignatureMethod, SignerStatus
from agreements.sealing import get_sealer
from agreements.services.documents import agreement_key, notify_signatories, working_pdf
from odr import crypto, policy
from odr.audit import SYSTEM, Origin, audit_record
from odr.models import AuditAction, User
from sessions.services.procedure import case_settle

logger = logging.getLogger(__name__)

PLATFORM_KEY = "agreements"
MAX_SEAL_ATTEMPTS = 10


def agreement_sealing_start(agreement: Agreement) -> None:
    """Called under the agreement's lock when the last signature is recorded."""
    agreement.status = AgreementStatus.SEALING
    agreement.save(update_fields=["status"])
    _queue_seal(agreement)


def _queue_seal(agreement: Agreement, *, delay: int = 0) -> None:
    from agreements.tasks import seal_agreement

    task = seal_agreement.using(run_after=timezone.now() + datetime.timedelta(seconds=delay)) if delay else seal_agreement
    task.enqueue(agreement_id=agreement.pk)


def _seal_reason(agreement: Agreement) -> str:
    return f"Mediation agreement {agreement.case.reference}; verification code {agreement.verification_code}"


def agreement_seal(*, agreement_id: int) -> bool:
    """Produce and store the sealed PDF. True if this call sealed it."""
    with transaction.atomic():
        agreement = (
            Agreement.objects.select_for_update().select_related("case", "draft").filter(pk=agreement_id).first()
        )
        if agreement is None or agreement.status != AgreementStatus.SEALING:
            return False
        agreement.seal_attempts += 1
        agreement.save(update_fields=["seal_attempts"])
        if agreement.seal_attempts < MAX_SEAL_ATTEMPTS:
            _queue_seal(agreement, delay=settings.ODR_SEAL_RETRY_SECONDS)
        else:
            logger.error("Agreement %s: last sealing attempt; run agreements_recover once fixed.", agreement.pk)
    try:
        sealed = _seal_pdf(agreement)
    except Exception as error:
        Agreement.objects.filter(pk=agreement.pk).update(seal_error=f"{type(error).__name__}: {error}"[:500])
        raise
    with transaction.atomic():
        agreement = Agreement.objects.select_for_update().select_related("case").get(pk=agreement_id)
        if agreement.status != AgreementStatus.SEALING:
            return False  # another worker finished first
        agreement.sealed_pdf_sealed = crypto.platform_cipher(PLATFORM_KEY).seal(
            sealed, aad=agreement_key(agreement, "sealed")
        )
        agreement.sealed_sha256 = hashlib.sha256(sealed).hexdigest()
        agreement.sealed_at = timezone.now()
        agreement.status = AgreementStatus.SEALED
        agreement.seal_error = ""
        agreement.save(update_fields=["sealed_pdf_sealed", "sealed_sha256", "sealed_at", "status", "seal_error"])
        audit_record(
            action=AuditAction.AGREEMENT_SEALED, actor=None, origin=SYSTEM, obj=agreement.case,
            details={"agreement": str(agreement.public_id), "sha256": agreement.sealed_sha256,
                     "frozen_sha256": agreement.frozen_sha256},
        )
        notify_signatories(agreement.case, "agreements/email/sealed", agreement=agreement)
        case_settle(case=agreement.case, origin=SYSTEM)
    return True


def _seal_pdf(agreement: Agreement) -> bytes:
    sealer = get_sealer()
    pdf = working_pdf(agreement)
    for signer in agreement.signers.select_related("user").filter(status=SignerStatus.SIGNED):
        if signer.method == SignatureMethod.CERTIFICATE:
            continue  # signed in its own box with the signer's key already
        pdf = sealer.sign(
            pdf, field=signer.field_name,
            reason=f"Signature of {signer.user.display_name} ({signer.role}) by {signer.method}, "
                   f"recorded at {signer.signed_at.isoformat()}, attested by the platform",
            stamp=rendering.stamp_text(name=signer.user.display_name, role=signer.role, method=signer.method,
                                       signed_at=signer.signed_at, layout=agreement.layout),
        )
    return sealer.seal(pdf, reason=_seal_reason(agreement))


def agreements_recover() -> list[int]:
    """Queue sealing now for every agreement still in SEALING (after an
    outage, or once the cause of repeated failures is fixed); the attempts
    count starts again."""
    pending = list(Agreement.objects.filter(status=AgreementStatus.SEALING))
    for agreement in pending:
        Agreement.objects.filter(pk=agreement.pk).update(seal_attempts=0)
        _queue_seal(agreement)
    return [agreement.pk for agreement in pending]


def sealed_pdf(agreement: Agreement) -> bytes:
    return crypto.platform_cipher(PLATFORM_KEY).open(agreement.sealed_pdf_sealed, aad=agreement_key(agreement, "sealed"))


def agreement_download(*, agreement: Agreement, user: User, origin: Origin = SYSTEM) -> bytes:
    """The sealed PDF for a party or the mediator; every download audited."""
    policy.require(user, "agreement.download", agreement)
    with transaction.atomic():
        audit_record(
            action=AuditAction.AGREEMENT_DOWNLOADED, actor=user, origin=origin, obj=agreement.case,
            details={"agreement": str(agreement.public_id), "sha256": agreement.sealed_sha256},
        )
    return sealed_pdf(agreement)


def agreement_download_for_court(*, filing, user: User | None = None, token=None, origin: Origin = SYSTEM) -> bytes:
    """The sealed PDF of a filing, for a user of the court it was filed with
    (portal) or that court's API token; audited."""
    if user is not None:
        policy.require(user, "filing.court", filing)
    elif token is None or token.court_id != filing.court_id:
        raise PermissionDenied("filing.court")
    with transaction.atomic():
        audit_record(
            action=AuditAction.AGREEMENT_DOWNLOADED, actor=user, origin=origin, obj=filing.case,
            details={"agreement": str(filing.agreement.public_id), "sha256": filing.agreement.sealed_sha256,
                     "filing": str(filing.public_id), "court": filing.court.code,
                     **({"token": str(token.public_id)} if token is not None else {})},
        )
    return sealed_pdf(filing.agreement)
