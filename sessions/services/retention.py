"""Retention by crypto-shredding, and legal holds.

ODR_RETENTION_DAYS after a case closes, its data key is destroyed and its
sealed content deleted: messages, caucus talk, shared documents, agreement
drafts, and the description of the dispute. Kept: the case's metadata (dates,
states, counts of events), the audit log, and the signed agreement. A legal
hold in force suspends destruction until an administrator lifts it.

Destruction is scheduled on the durable job queue when the case closes
(`destroy_case_content` with `run_after`), and `manage.py retention_sweep`
catches anything due (a hold lifted late, a changed setting).
"""

import datetime

from django.conf import settings
from django.db import transaction
from django.dispatch import Signal
from django.utils import timezone
from django.utils.translation import gettext as _

from odr import crypto, policy
from odr.audit import SYSTEM, Origin, audit_record
from odr.models import AuditAction, User
from sessions.models import CLOSED_STATUSES, Case, LegalHold, RoomDocument, RoomEvent
from sessions.services.errors import ProcedureError

# Sent inside the destroying transaction; packages that keep sealed content of
# a case (agreements: drafts) delete theirs. Arguments: case.
case_content_destroying = Signal()


def destruction_date(case: Case) -> datetime.datetime | None:
    """When the case's content is due for destruction (None while open)."""
    if case.closed_at is None or case.status not in CLOSED_STATUSES:
        return None
    return case.closed_at + datetime.timedelta(days=settings.ODR_RETENTION_DAYS)


def legal_hold_in_force(case: Case) -> LegalHold | None:
    return case.legal_holds.filter(lifted_at__isnull=True).first()


def is_due(case: Case, now: datetime.datetime | None = None) -> bool:
    due = destruction_date(case)
    return (
        due is not None
        and due <= (now or timezone.now())
        and case.content_destroyed_at is None
        and legal_hold_in_force(case) is None
    )


def destruction_schedule(case: Case) -> None:
    """Queue the destruction for the case's date (runs at once if past)."""
    from sessions.tasks import destroy_case_content

    due = destruction_date(case)
    if due is None or case.content_destroyed_at is not None:
        return
    destroy_case_content.using(run_after=due).enqueue(case_id=case.pk)


def case_content_destroy(*, case_id: int, now: datetime.datetime | None = None) -> bool:
    """Destroy the case's content if it is due; idempotent (False if not due
    or already done). Files are deleted after the commit."""
    now = now or timezone.now()
    files: list[str] = []
    with transaction.atomic():
        case = Case.objects.select_for_update(of=("self",)).select_related("data_key").filter(pk=case_id).first()
        if case is None or not is_due(case, now):
            return False
        messages = RoomEvent.objects.filter(room__case=case, body_sealed__isnull=False).update(body_sealed=None)
        documents = RoomDocument.objects.filter(room__case=case)
        files = [name for name in documents.values_list("file", flat=True) if name]
        document_count = documents.update(name_sealed=None, file="")
        case_content_destroying.send(sender=Case, case=case)
        if case.data_key is not None:
            crypto.data_key_destroy(case.data_key)
        case.description = ""
        case.content_destroyed_at = now
        case.save(update_fields=["description", "content_destroyed_at"])
        audit_record(
            action=AuditAction.CONTENT_DESTROYED, actor=None, obj=case,
            details={"messages": messages, "documents": document_count,
                     "retention_days": settings.ODR_RETENTION_DAYS},
        )
        storage = RoomDocument._meta.get_field("file").storage
        transaction.on_commit(lambda: [storage.delete(name) for name in files])
    return True


def retention_sweep(*, now: datetime.datetime | None = None) -> list[int]:
    """Destroy every case that is due; the ids destroyed."""
    now = now or timezone.now()
    cutoff = now - datetime.timedelta(days=settings.ODR_RETENTION_DAYS)
    candidates = Case.objects.filter(
        status__in=CLOSED_STATUSES, closed_at__lte=cutoff, content_destroyed_at__isnull=True
    )
    return [pk for pk in candidates.values_list("pk", flat=True) if case_content_destroy(case_id=pk, now=now)]


def legal_hold_place(*, case: Case, user: User, reason: str, origin: Origin = SYSTEM) -> LegalHold:
    policy.require(user, "case.legal_hold", case)
    reason = " ".join((reason or "").split())
    if len(reason) < 10:
        raise ProcedureError(_("Give the reason for the legal hold (at least 10 characters)."))
    with transaction.atomic():
        case = Case.objects.select_for_update().get(pk=case.pk)
        if case.content_destroyed_at is not None:
            raise ProcedureError(_("This case's content was already destroyed; there is nothing to hold."))
        if legal_hold_in_force(case) is not None:
            raise ProcedureError(_("This case is already under legal hold."))
        hold = LegalHold.objects.create(case=case, reason=reason[:1000], placed_by=user)
        audit_record(
            action=AuditAction.LEGAL_HOLD_PLACED, actor=user, origin=origin, obj=case,
            details={"hold": hold.pk, "reason": hold.reason},
        )
    return hold


def legal_hold_lift(*, case: Case, user: User, reason: str, origin: Origin = SYSTEM) -> LegalHold:
    """Lift the hold; a case already past its date is destroyed next."""
    policy.require(user, "case.legal_hold", case)
    reason = " ".join((reason or "").split())
    if len(reason) < 10:
        raise ProcedureError(_("Give the reason for lifting the legal hold (at least 10 characters)."))
    with transaction.atomic():
        case = Case.objects.select_for_update().get(pk=case.pk)
        hold = legal_hold_in_force(case)
        if hold is None:
            raise ProcedureError(_("This case is not under legal hold."))
        hold.lifted_at = timezone.now()
        hold.lifted_by = user
        hold.lift_reason = reason[:1000]
        hold.save(update_fields=["lifted_at", "lifted_by", "lift_reason"])
        audit_record(
            action=AuditAction.LEGAL_HOLD_LIFTED, actor=user, origin=origin, obj=case,
            details={"hold": hold.pk, "reason": hold.lift_reason},
        )
        destruction_schedule(case)
    return hold
