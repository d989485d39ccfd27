"""Filing a sealed agreement with the court of the case, and the court's
answers.

A filing is written with its outbox row (`Delivery`) in one transaction; the
worker delivers it through the adapter of its channel (`agreements.channels`)
with retries, exponential backoff with jitter, and a dead letter after
ODR_DELIVERY_MAX_ATTEMPTS (administrators are emailed). Every delivery of a
filing carries the same idempotency key, so a retry after a crash files
nothing twice. Each status change is an event (the court API's cursor),
audited, and emailed to the case's signatories."""

import datetime
import logging
import random

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from agreements.models import (
    FILING_TRANSITIONS,
    Agreement,
    AgreementStatus,
    Delivery,
    DeliveryState,
    Filing,
    FilingEvent,
    FilingStatus,
)
from agreements.models.filing import OPEN_FILING_STATUSES
from agreements.services.documents import notify_signatories
from odr import policy
from odr.audit import SYSTEM, Origin, audit_record
from odr.mail import email_enqueue
from odr.models import AuditAction, User
from sessions.services.errors import ProcedureError

logger = logging.getLogger(__name__)

REASON_MAX_CHARS = 2_000


def filing_submit(
    *, agreement: Agreement, user: User, court_case_number: str | None = None, origin: Origin = SYSTEM
) -> Filing:
    """File the sealed agreement with the case's court (one action; the view
    asks for recent re-authentication). After the court returned a filing,
    filing again may correct the court case number."""
    with transaction.atomic():
        agreement = Agreement.objects.select_for_update(of=("self",)).select_related("case__court").get(pk=agreement.pk)
        policy.require(user, "agreement.file", agreement)
        case = agreement.case
        if agreement.status != AgreementStatus.SEALED:
            raise ProcedureError(_("Only a signed and sealed agreement can be filed."), code="not_sealed")
        number = (court_case_number if court_case_number is not None else case.court_case_number).strip()
        if case.court is None or not number:
            raise ProcedureError(
                _("This case is not linked to a court case, so there is nothing to file it with."), code="no_court"
            )
        if len(number) > 64:
            raise ProcedureError(_("The court case number can be at most 64 characters long."), code="too_long")
        if agreement.filings.filter(status__in=OPEN_FILING_STATUSES).exists():
            raise ProcedureError(_("This agreement is already filed."), code="already_filed")
        previous = agreement.filings.exclude(status__in=OPEN_FILING_STATUSES).filter(replaced_by__isnull=True).first()
        filing = Filing.objects.create(
            case=case, agreement=agreement, court=case.court, court_case_number=number,
            channel=settings.ODR_FILING_CHANNEL, filed_by=user, replaces=previous,
        )
        FilingEvent.objects.create(filing=filing, status=FilingStatus.QUEUED, source=FilingEvent.Source.PARTICIPANT,
                                   actor=user)
        delivery = Delivery.objects.create(filing=filing)
        audit_record(
            action=AuditAction.FILING_SUBMITTED, actor=user, origin=origin, obj=case,
            details={"filing": str(filing.public_id), "court": case.court.code, "channel": filing.channel},
        )
        _queue_delivery(delivery)
    return filing


def filing_status_set(
    *, filing: Filing, status: str, reason: str = "", source: str, actor: User | None = None,
    origin: Origin = SYSTEM, external_id: str = "",
) -> Filing:
    """The court's answer (or the delivery's outcome). A status that does not
    follow from the current one is refused; the same status again is a no-op
    (idempotent callbacks and double clicks)."""
    reason = (reason or "").strip()
    if status == FilingStatus.RETURNED and not reason:
        raise ProcedureError(_("Say why the agreement is returned, so that the parties can correct it."),
                             code="no_reason")
    if len(reason) > REASON_MAX_CHARS:
        raise ProcedureError(_("The reason can be at most %(limit)d characters long.") % {"limit": REASON_MAX_CHARS},
                             code="too_long")
    with transaction.atomic():
        filing = Filing.objects.select_for_update(of=("self",)).select_related("case", "court").get(pk=filing.pk)
        if status == filing.status:
            return filing
        if status not in FILING_TRANSITIONS[filing.status]:
            raise ProcedureError(
                _("A filing that is “%(from)s” cannot become “%(to)s”.")
                % {"from": FilingStatus(filing.status).label, "to": FilingStatus(status).label},
                code="bad_transition",
            )
        filing.status = status
        filing.status_changed_at = timezone.now()
        if status == FilingStatus.RETURNED:
            filing.return_reason = reason
        if external_id:
            filing.external_id = external_id[:128]
        filing.save(update_fields=["status", "status_changed_at", "return_reason", "external_id"])
        FilingEvent.objects.create(filing=filing, status=status, source=source, actor=actor, reason=reason)
        audit_record(
            action=AuditAction.FILING_STATUS_CHANGED, actor=actor, origin=origin, obj=filing.case,
            details={"filing": str(filing.public_id), "status": status, "source": source},
        )
        notify_signatories(filing.case, "agreements/email/filing_status", filing=filing,
                           status_label=FilingStatus(status).label, reason=reason)
    return filing


# --- Delivery (the outbox) ---------------------------------------------------------------------


def _queue_delivery(delivery: Delivery, *, at: datetime.datetime | None = None) -> None:
    from agreements.tasks import deliver_filing

    task = deliver_filing.using(run_after=at) if at else deliver_filing
    task.enqueue(delivery_id=delivery.pk)


def backoff(attempt: int) -> datetime.timedelta:
    """Exponential backoff with full jitter: up to base·2^(attempt−1), capped."""
    ceiling = min(settings.ODR_DELIVERY_BACKOFF_SECONDS * 2 ** (attempt - 1), settings.ODR_DELIVERY_BACKOFF_MAX_SECONDS)
    return datetime.timedelta(seconds=random.uniform(ceiling / 2, ceiling))  # noqa: S311 — jitter, not secrecy


def delivery_attempt(*, delivery_id: int) -> bool:
    """One attempt to deliver a filing; True when delivered by this call.

    The attempt is counted, and the next one queued, before the adapter is
    called (committed), so a worker killed mid-delivery leaves a retry on the
    queue; the idempotency key makes the retry harmless."""
    from agreements.channels import DeliveryRefused, channel_for

    now = timezone.now()
    with transaction.atomic():
        delivery = (
            Delivery.objects.select_for_update(of=("self",)).select_related("filing__case", "filing__court", "filing__agreement")
            .filter(pk=delivery_id).first()
        )
        if delivery is None or delivery.state != DeliveryState.PENDING or delivery.next_attempt_at > now:
            return False
        last_unfinished = delivery.attempts >= settings.ODR_DELIVERY_MAX_ATTEMPTS
        if not last_unfinished:
            delivery.attempts += 1
            delivery.next_attempt_at = now + backoff(delivery.attempts)
            delivery.save(update_fields=["attempts", "next_attempt_at"])
            # Queued even after the last attempt: if that one never reports
            # (a killed worker), this follow-up declares the delivery dead.
            _queue_delivery(delivery, at=delivery.next_attempt_at)
    if last_unfinished:
        _delivery_failed(delivery, "The last attempt did not finish (the worker stopped).", dead=True)
        return False
    filing = delivery.filing
    try:
        receipt = channel_for(filing.channel).deliver(filing)
    except DeliveryRefused as error:  # the other side will never take it as it is
        _delivery_failed(delivery, str(error), dead=True)
        return False
    except Exception as error:  # noqa: BLE001 — down, slow, 5xx, garbage: all retried
        _delivery_failed(delivery, f"{type(error).__name__}: {error}",
                         dead=delivery.attempts >= settings.ODR_DELIVERY_MAX_ATTEMPTS)
        return False
    with transaction.atomic():
        delivery = Delivery.objects.select_for_update().get(pk=delivery.pk)
        if delivery.state != DeliveryState.PENDING:
            return False
        delivery.state = DeliveryState.DELIVERED
        delivery.delivered_at = timezone.now()
        delivery.last_error = ""
        delivery.save(update_fields=["state", "delivered_at", "last_error"])
        filing = Filing.objects.select_for_update(of=("self",)).get(pk=filing.pk)
        if filing.status == FilingStatus.QUEUED:
            filing_status_set(filing=filing, status=FilingStatus.DELIVERED, source=FilingEvent.Source.SYSTEM,
                              external_id=receipt.external_id)
        elif receipt.external_id and not filing.external_id:
            # The court answered (a callback) before this attempt learnt it
            # was filed: its status stands; keep the court's id.
            filing.external_id = receipt.external_id[:128]
            filing.save(update_fields=["external_id"])
    return True


def _delivery_failed(delivery: Delivery, error: str, *, dead: bool) -> None:
    logger.warning("Delivery of filing %s failed (attempt %d): %s", delivery.filing_id, delivery.attempts, error)
    with transaction.atomic():
        delivery = Delivery.objects.select_for_update(of=("self",)).select_related("filing__case").get(pk=delivery.pk)
        if delivery.state != DeliveryState.PENDING:
            return
        delivery.last_error = error[:500]
        fields = ["last_error"]
        if dead:
            delivery.state = DeliveryState.DEAD
            fields.append("state")
        delivery.save(update_fields=fields)
        if dead and Filing.objects.filter(pk=delivery.filing_id, status=FilingStatus.QUEUED).exists():
            # (A filing the court already answered keeps that answer.)
            filing_status_set(filing=delivery.filing, status=FilingStatus.FAILED, source=FilingEvent.Source.SYSTEM,
                              reason=error[:500])
        if dead:
            for admin in User.objects.filter(is_staff=True, is_active=True):
                email_enqueue(
                    to=admin.email, template="agreements/email/delivery_dead", language=admin.preferred_language,
                    context={"filing": delivery.filing, "delivery": delivery, "site_url": settings.SITE_URL},
                )


def deliveries_recover() -> list[int]:
    """Queue every pending delivery now (after an outage)."""
    pending = list(Delivery.objects.filter(state=DeliveryState.PENDING).values_list("pk", flat=True))
    Delivery.objects.filter(pk__in=pending).update(next_attempt_at=timezone.now())
    for pk in pending:
        _queue_delivery(Delivery(pk=pk))
    return pending
