"""Confidentiality: sealing a case's content with its data key, the
undertaking, sharing of contact details, and administrators' break-glass
access. Sealed items carry their identity as associated data:
`<kind>:<public id>:<field>`."""

import datetime

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from odr import crypto, policy
from odr.audit import SYSTEM, Origin, audit_record
from odr.crypto import Cipher, ContentDestroyed
from odr.mail import email_enqueue
from odr.models import AuditAction, DataKey, User
from sessions.agreement_to_mediate import digest, render_text
from sessions.models import (
    BreakGlassAccess,
    Case,
    ConfidentialityUndertaking,
    EventKind,
    Participant,
    ParticipantStatus,
    Role,
    RoomDocument,
    RoomEvent,
)
from sessions.services.errors import ProcedureError

UNDERTAKING_VERSION = "2026.2"  # 2026.2: the Kazakh and Russian wording
UNDERTAKING_TEMPLATE = "mediation/texts/undertaking.txt"


# --- The case's data key -----------------------------------------------------------------


def case_cipher(case: Case) -> Cipher:
    """The cipher of the case's content, its data key created on first use.
    ContentDestroyed once the retention job has shredded it."""
    if case.content_destroyed_at is not None:
        raise ContentDestroyed
    data_key_id = case.data_key_id
    if data_key_id is None:
        with transaction.atomic():
            locked = Case.objects.select_for_update().only("pk", "data_key").get(pk=case.pk)
            if locked.data_key_id is None:
                locked.data_key = crypto.data_key_create()
                Case.objects.filter(pk=case.pk).update(data_key=locked.data_key)
            data_key_id = case.data_key_id = locked.data_key_id
    return crypto.cipher(DataKey.objects.get(pk=data_key_id))


def message_aad(event: RoomEvent) -> str:
    return f"room-event:{event.public_id}:body"


def document_aad(document: RoomDocument, field: str) -> str:
    return f"room-document:{document.public_id}:{field}"


def reveal_events(events: list[RoomEvent], case: Case) -> list[RoomEvent]:
    """Open the message bodies and document names of `events` (one case's)
    into `event.text` and `document.name`; empty once destroyed."""
    try:
        cipher = case_cipher(case)
    except ContentDestroyed:
        cipher = None
    for event in events:
        event.text = ""
        if cipher is not None and event.body_sealed is not None:
            event.text = cipher.open_text(event.body_sealed, aad=message_aad(event))
        if event.document is not None:
            reveal_document(event.document, cipher)
    return events


def reveal_document(document: RoomDocument, cipher: Cipher | None) -> RoomDocument:
    document.name = ""
    if cipher is not None and document.name_sealed is not None:
        document.name = cipher.open_text(document.name_sealed, aad=document_aad(document, "name"))
    return document


def document_content(document: RoomDocument, cipher: Cipher) -> bytes:
    """The plaintext of a shared file."""
    with document.file.open("rb") as handle:
        return cipher.open(handle.read(), aad=document_aad(document, "file"))


def message_text(event: RoomEvent) -> str:
    """A single event's body, for frames built outside a batch."""
    if not hasattr(event, "text"):
        reveal_events([event], event.room.case)
    return event.text


# --- The undertaking -------------------------------------------------------------------------


def undertaking_render(*, case: Case, language: str) -> str:
    return render_text(UNDERTAKING_TEMPLATE, language, {"case": case, "version": UNDERTAKING_VERSION})


undertaking_digest = digest


def undertaking_accepted(participant: Participant | None) -> bool:
    return participant is not None and participant.undertakings.filter(text_version=UNDERTAKING_VERSION).exists()


def undertaking_accept(
    *, case: Case, user: User, text_sha256: str, language: str, origin: Origin = SYSTEM
) -> ConfidentialityUndertaking:
    """Record that `user` accepted the current undertaking for `case`, as the
    exact text (by digest) they were shown. Idempotent per version."""
    from sessions.policies import participant_of

    with transaction.atomic():
        case = Case.objects.select_for_update().get(pk=case.pk)
        participant = participant_of(user, case)
        if participant is None or participant.status not in (ParticipantStatus.ACTIVE, ParticipantStatus.PROPOSED):
            raise ProcedureError(_("You do not take part in this case."))
        existing = participant.undertakings.filter(text_version=UNDERTAKING_VERSION).first()
        if existing is not None:
            return existing
        if text_sha256 != undertaking_digest(undertaking_render(case=case, language=language)):
            raise ProcedureError(_("The text of the undertaking has changed since you opened it. Read it again."))
        undertaking = ConfidentialityUndertaking.objects.create(
            case=case,
            participant=participant,
            user=user,
            text_version=UNDERTAKING_VERSION,
            text_language=language,
            text_sha256=text_sha256,
            ip=origin.ip,
            user_agent=origin.user_agent,
        )
        audit_record(
            action=AuditAction.UNDERTAKING_ACCEPTED, actor=user, origin=origin, obj=case,
            details={"version": UNDERTAKING_VERSION, "language": language, "sha256": text_sha256},
        )
    return undertaking


# --- Contact details between parties ----------------------------------------------------------


def contacts_sharing_set(*, participant: Participant, user: User, share: bool, origin: Origin = SYSTEM) -> Participant:
    """A participant shows (or hides again) their email and phone to the
    other participants of the case. The mediator always sees them."""
    if not policy.can(user, "case.share_contacts", participant):
        raise ProcedureError(_("Only you decide whether to share your contact details."))
    with transaction.atomic():
        participant = Participant.objects.select_for_update().get(pk=participant.pk)
        if participant.shares_contacts != share:
            participant.shares_contacts = share
            participant.save(update_fields=["shares_contacts"])
            audit_record(
                action=AuditAction.CONTACTS_SHARING_CHANGED, actor=user, origin=origin, obj=participant.case,
                details={"participant": str(participant.public_id), "shared": share},
            )
    return participant


# --- Break-glass ---------------------------------------------------------------------------------


def break_glass_open(*, case: Case, user: User, reason: str, origin: Origin = SYSTEM) -> BreakGlassAccess:
    """An administrator opens time-limited access to a case's content for a
    written reason. The case's mediator is told by email; the access and
    every reading under it are audited."""
    policy.require(user, "case.break_glass", case)
    reason = " ".join((reason or "").split())
    if len(reason) < 20:
        raise ProcedureError(_("Explain in at least 20 characters why you need to read this case's content."))
    if case.content_destroyed_at is not None:
        raise ProcedureError(_("This case's content was destroyed; there is nothing to read."))
    with transaction.atomic():
        access = BreakGlassAccess.objects.create(
            case=case, user=user, reason=reason[:1000],
            expires_at=timezone.now() + datetime.timedelta(minutes=settings.ODR_BREAK_GLASS_MINUTES),
        )
        audit_record(
            action=AuditAction.BREAK_GLASS_OPENED, actor=user, origin=origin, obj=case,
            details={"access": access.pk, "reason": access.reason, "expires_at": access.expires_at.isoformat()},
        )
        mediator = case.participants.filter(role=Role.MEDIATOR, status=ParticipantStatus.ACTIVE).select_related("user").first()
        if mediator is not None:
            email_enqueue(
                to=mediator.user.email,
                template="mediation/email/break_glass",
                context={"case": case, "access": access, "admin": user, "site_url": settings.SITE_URL},
                language=mediator.user.preferred_language,
            )
    return access


def break_glass_in_force(*, case: Case, user: User) -> BreakGlassAccess | None:
    """The user's access to the case still in force (the caller has asked
    the policy, `case.break_glass`, whether the user may hold one)."""
    return case.break_glass.filter(user=user, expires_at__gt=timezone.now()).first()


def break_glass_read(*, access: BreakGlassAccess, origin: Origin = SYSTEM) -> list[tuple]:
    """The case's rooms with their events, opened, for an administrator
    under break-glass access (audited). Empty once the content is destroyed."""
    case = access.case
    if not access.in_force or case.content_destroyed_at is not None:
        return []
    audit_record(
        action=AuditAction.BREAK_GLASS_VIEWED, actor=access.user, origin=origin, obj=case,
        details={"access": access.pk},
    )
    result = []
    for room in case.rooms.all():
        rows = list(
            room.events.filter(kind__in=[EventKind.MESSAGE, EventKind.DOCUMENT])
            .select_related("actor__user", "document")
            .order_by("seq")
        )
        result.append((room, reveal_events(rows, case)))
    return result
