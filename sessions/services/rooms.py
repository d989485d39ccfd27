"""Rooms: sessions, the lobby, caucuses, moderation, messages, presence.

Every function here is one atomic change: lock the room row, check, write
the sequenced event (`append_event`), audit, and queue the frames on commit
(`sessions.events`). The room row lock is what makes `seq` gapless and
`message.send` idempotent under concurrency, across processes.
"""

import datetime
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.translation import gettext as _

from odr import policy
from odr.audit import SYSTEM, Origin, audit_record
from odr.models import AuditAction, User
from sessions import events
from sessions.models import (
    PARTY_ROLES,
    Admission,
    AdmissionStatus,
    Case,
    CaseStatus,
    EventKind,
    MediationSession,
    Participant,
    ParticipantStatus,
    Role,
    Room,
    RoomConnection,
    RoomEvent,
    RoomKind,
)
from sessions.policies import room_member, undertaken
from sessions.services import confidentiality
from sessions.services.errors import ProcedureError

# Close codes of the contract (../shared/contracts/realtime.md).
CLOSE_NOT_LOGGED_IN = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_NO_SUCH_ROOM = 4404
CLOSE_CLOSED = 4409
CLOSE_RATE_LIMITED = 4429

# The largest `seq` a client may name: the largest whole number a JavaScript
# client holds exactly (a room never gets near it).
MAX_SEQ = 2**53 - 1


class RoomRefused(ProcedureError):
    """A frame the room answers with `error`; `code` is the contract's code
    (forbidden, muted, locked, bad_request, too_large, rate_limited)."""


class RoomGone(Exception):
    """The socket may no longer stay in the room: close it with `close_code`."""

    def __init__(self, close_code: int):
        super().__init__(close_code)
        self.close_code = close_code


def _forbidden() -> RoomRefused:
    return RoomRefused(_("Only the mediator can do that."), code="forbidden")


# --- Reading the room's state ------------------------------------------------------


def open_session(case: Case) -> MediationSession | None:
    return case.sittings.filter(ended_at__isnull=True).first()


def _admission(room: Room, participant: Participant) -> Admission | None:
    return room.admissions.filter(participant=participant).first()


@dataclass(frozen=True)
class Standing:
    """Where a participant stands in a room right now."""

    participant: Participant
    is_mediator: bool
    admitted: bool
    muted: bool


def standing(*, room: Room, user: User) -> Standing:
    """Re-check, from the database, that the user may stay in the room; raise
    RoomGone with the contract's close code otherwise. Called for every frame."""
    room.refresh_from_db(fields=["is_open", "locked", "last_seq"])
    room.case.refresh_from_db(fields=["status"])
    participant = room_member(user, room)
    if participant is None or not undertaken(participant):
        raise RoomGone(CLOSE_FORBIDDEN)
    if not policy.can(user, "room.view", room):
        raise RoomGone(CLOSE_CLOSED)
    is_mediator = participant.role == Role.MEDIATOR
    if is_mediator:
        return Standing(participant, True, True, False)
    if not room.is_open:
        raise RoomGone(CLOSE_CLOSED)
    admission = _admission(room, participant)
    if admission is not None and admission.status in (AdmissionStatus.REMOVED, AdmissionStatus.DECLINED):
        raise RoomGone(CLOSE_FORBIDDEN)
    admitted = admission is not None and admission.status == AdmissionStatus.ADMITTED
    return Standing(participant, False, admitted, admitted and admission.muted)


def online_participants(room: Room) -> list[str]:
    """Public ids of admitted participants (and the mediator) with a live socket."""
    horizon = timezone.now() - datetime.timedelta(seconds=settings.ODR_PRESENCE_TIMEOUT_SECONDS)
    connected = set(
        room.connections.filter(seen_at__gte=horizon).values_list("participant_id", flat=True)
    )
    if not connected:
        return []
    admitted = set(
        room.admissions.filter(status=AdmissionStatus.ADMITTED).values_list("participant_id", flat=True)
    )
    participants = Participant.objects.filter(pk__in=connected)
    return sorted(
        str(p.public_id) for p in participants if p.pk in admitted or p.role == Role.MEDIATOR
    )


def _is_online(room: Room, participant: Participant, *, excluding: str = "") -> bool:
    horizon = timezone.now() - datetime.timedelta(seconds=settings.ODR_PRESENCE_TIMEOUT_SECONDS)
    return (
        room.connections.filter(participant=participant, seen_at__gte=horizon)
        .exclude(channel_name=excluding)
        .exists()
    )


def room_members(room: Room) -> list[Participant]:
    """Everyone who belongs in the room, mediator first."""
    active = room.case.participants.filter(status=ParticipantStatus.ACTIVE).select_related("user")
    if room.kind == RoomKind.CAUCUS:
        active = [
            p
            for p in active
            if p.role == Role.MEDIATOR or p.pk == room.party_id or p.represents_id == room.party_id
        ]
    return sorted(active, key=lambda p: (p.role != Role.MEDIATOR, p.created_at, p.pk))


def members_state(room: Room) -> list[dict]:
    """The mediator's view of the room: every member, their lobby state,
    mute and whether they are connected."""
    admissions = {a.participant_id: a for a in room.admissions.all()}
    horizon = timezone.now() - datetime.timedelta(seconds=settings.ODR_PRESENCE_TIMEOUT_SECONDS)
    connected = set(room.connections.filter(seen_at__gte=horizon).values_list("participant_id", flat=True))
    rows = []
    for participant in room_members(room):
        admission = admissions.get(participant.pk)
        if participant.role == Role.MEDIATOR:
            state = AdmissionStatus.ADMITTED
        elif admission is None:
            state = "absent"
        else:
            state = admission.status
        rows.append(
            {
                **events.participant_ref(participant),
                "state": state,
                "muted": bool(admission and admission.muted),
                "online": participant.pk in connected,
            }
        )
    return rows


def events_after(*, room: Room, after_seq: int, limit: int = 500) -> list[RoomEvent]:
    rows = list(
        room.events.filter(seq__gt=after_seq)
        .select_related("actor__user", "subject__user", "redacted_by__user", "document", "room")
        .order_by("seq")[:limit]
    )
    return confidentiality.reveal_events(rows, room.case)


def events_before(*, room: Room, before_seq: int, limit: int) -> list[RoomEvent]:
    rows = list(
        room.events.filter(seq__lt=before_seq)
        .select_related("actor__user", "subject__user", "redacted_by__user", "document", "room")
        .order_by("-seq")[:limit]
    )
    rows.reverse()
    return confidentiality.reveal_events(rows, room.case)


# --- Writing -----------------------------------------------------------------------------


def lock_room(room: Room) -> Room:
    return Room.objects.select_for_update(of=("self",)).select_related("case", "party").get(pk=room.pk)


def append_event(
    room: Room, kind: EventKind, *, actor=None, subject=None, text: str | None = None, **fields
) -> RoomEvent:
    """The room's next event, on the locked room row; broadcast on commit.
    A message's `text` is stored sealed with the case's data key."""
    room.last_seq += 1
    Room.objects.filter(pk=room.pk).update(last_seq=room.last_seq)
    event = RoomEvent(room=room, seq=room.last_seq, kind=kind, actor=actor, subject=subject, **fields)
    if text is not None:
        event.body_sealed = confidentiality.case_cipher(room.case).seal_text(
            text, aad=confidentiality.message_aad(event)
        )
        event.text = text
    event.save(force_insert=True)
    event.room = room
    events.send_room_event(event)
    return event


def audit_room(action: AuditAction, *, user: User | None, origin: Origin, room: Room, **details) -> None:
    audit_record(
        action=action,
        actor=user,
        origin=origin,
        obj=room.case,
        details={"room": str(room.public_id), "kind": room.kind, **details},
    )


def _moderator(room: Room, user: User) -> Participant:
    if not policy.can(user, "room.moderate", room):
        raise _forbidden()
    return room_member(user, room)


def _target(room: Room, participant_id) -> Participant:
    """A member of the room other than the mediator, by public id."""
    try:
        participant_uuid = uuid.UUID(str(participant_id))
    except ValueError:
        raise RoomRefused(_("No such participant in this room."), code="bad_request") from None
    for member in room_members(room):
        if member.public_id == participant_uuid and member.role != Role.MEDIATOR:
            return member
    raise RoomRefused(_("No such participant in this room."), code="bad_request")


def _require_session(case: Case) -> MediationSession:
    session = open_session(case)
    if session is None:
        raise RoomRefused(_("The session has not started yet."), code="locked")
    return session


def room_joint(case: Case) -> Room:
    """The case's joint room, created with the first session's case activation."""
    room, _created = Room.objects.get_or_create(case=case, kind=RoomKind.JOINT)
    return room


@dataclass(frozen=True)
class Entry:
    standing: Standing
    session_open: bool


def room_enter(*, room: Room, user: User, channel_name: str) -> Entry:
    """A socket arrives: refuse it (RoomGone), or put it in the lobby, or in
    the room. The first socket of an admitted participant is a `joined` event."""
    with transaction.atomic():
        room = lock_room(room)
        current = standing(room=room, user=user)
        participant = current.participant
        if room.locked and not current.is_mediator:
            raise RoomGone(CLOSE_CLOSED)
        if not current.is_mediator and not current.admitted:
            Admission.objects.get_or_create(room=room, participant=participant)
        was_online = _is_online(room, participant)
        RoomConnection.objects.update_or_create(
            channel_name=channel_name,
            defaults={"room": room, "participant": participant, "seen_at": timezone.now()},
        )
        session_open = open_session(room.case) is not None
        if current.admitted and not was_online and session_open:
            append_event(room, EventKind.JOINED, actor=participant)
        _presence_changed(room)
    return Entry(current, session_open)


def room_leave(*, channel_name: str) -> None:
    """A socket went away; the participant's last one is a `left` event."""
    connection = RoomConnection.objects.filter(channel_name=channel_name).select_related("room").first()
    if connection is None:
        return
    with transaction.atomic():
        room = lock_room(connection.room)
        RoomConnection.objects.filter(channel_name=channel_name).delete()
        participant = connection.participant
        admitted = participant.role == Role.MEDIATOR or room.admissions.filter(
            participant=participant, status=AdmissionStatus.ADMITTED
        ).exists()
        if (
            admitted
            and room.is_open
            and room.case.status == CaseStatus.ACTIVE
            and open_session(room.case) is not None
            and not _is_online(room, participant)
        ):
            append_event(room, EventKind.LEFT, actor=participant)
        _presence_changed(room)


def connection_seen(*, channel_name: str) -> None:
    RoomConnection.objects.filter(channel_name=channel_name).update(seen_at=timezone.now())


def _presence_changed(room: Room) -> None:
    events.send_presence(room, lambda: online_participants(room))
    events.send_members_changed(room)


def session_start(*, room: Room, user: User, origin: Origin = SYSTEM) -> MediationSession:
    """The mediator opens a sitting; participants may then be admitted."""
    with transaction.atomic():
        room = lock_room(room)
        mediator = _moderator(room, user)
        case = room.case
        if open_session(case) is not None:
            raise RoomRefused(_("The session is already in progress."), code="bad_request")
        number = (case.sittings.aggregate(n=Max("number"))["n"] or 0) + 1
        session = MediationSession.objects.create(case=case, number=number, started_by=user)
        joint = lock_room(room_joint(case))
        append_event(joint, EventKind.SESSION_STARTED, actor=mediator)
        audit_room(AuditAction.SESSION_STARTED, user=user, origin=origin, room=joint, number=number)
        events.send_members_changed(joint)
    return session


def session_end(*, room: Room, user: User, origin: Origin = SYSTEM) -> MediationSession:
    """The mediator ends the sitting: every caucus closes, every admission
    lapses, every socket in the case's rooms is closed (4409)."""
    with transaction.atomic():
        room = lock_room(room)
        mediator = _moderator(room, user)
        case = room.case
        session = _require_session(case)
        session.ended_at = timezone.now()
        session.ended_by = user
        session.save(update_fields=["ended_at", "ended_by"])
        for each in case.rooms.select_for_update().order_by("pk"):
            each.case = case
            append_event(each, EventKind.SESSION_ENDED, actor=mediator)
            if each.kind == RoomKind.CAUCUS and each.is_open:
                each.is_open = False
                each.save(update_fields=["is_open"])
            each.admissions.all().delete()
        audit_room(AuditAction.SESSION_ENDED, user=user, origin=origin, room=room, number=session.number)
        events.send_case_closed(case, CLOSE_CLOSED)
    return session


def rooms_close_for_case(*, case: Case, actor: User | None, origin: Origin = SYSTEM) -> None:
    """The case ended: its rooms close for good, inside the caller's transaction."""
    mediator = case.participants.filter(role=Role.MEDIATOR, user=actor).first() if actor else None
    session = open_session(case)
    if session is not None:
        session.ended_at = timezone.now()
        session.ended_by = actor
        session.save(update_fields=["ended_at", "ended_by"])
    for room in case.rooms.select_for_update().order_by("pk"):
        room.case = case
        append_event(room, EventKind.CLOSED, actor=mediator)
        room.is_open = False
        room.save(update_fields=["is_open"])
        room.admissions.all().delete()
    events.send_case_closed(case, CLOSE_CLOSED)


def _decide(admission: Admission, status: AdmissionStatus, user: User) -> None:
    """The mediator's decision on a member; any mute ends with it."""
    admission.status = status
    admission.muted = False
    admission.decided_at = timezone.now()
    admission.decided_by = user
    admission.save(update_fields=["status", "muted", "decided_at", "decided_by"])


def lobby_admit(*, room: Room, user: User, participant_id, origin: Origin = SYSTEM) -> Admission:
    """Admit a waiting (or removed, or declined) member for this session."""
    with transaction.atomic():
        room = lock_room(room)
        mediator = _moderator(room, user)
        _require_session(room.case)
        target = _target(room, participant_id)
        admission, _created = Admission.objects.get_or_create(room=room, participant=target)
        if admission.status == AdmissionStatus.ADMITTED:
            return admission
        _decide(admission, AdmissionStatus.ADMITTED, user)
        append_event(room, EventKind.ADMITTED, actor=mediator, subject=target)
        audit_room(AuditAction.LOBBY_ADMITTED, user=user, origin=origin, room=room, participant=str(target.public_id))
        events.send_admission(room, target, AdmissionStatus.ADMITTED)
        _presence_changed(room)
    return admission


def lobby_decline(*, room: Room, user: User, participant_id, origin: Origin = SYSTEM) -> Admission:
    """Turn a waiting member away for this session (the mediator may admit them later)."""
    with transaction.atomic():
        room = lock_room(room)
        _moderator(room, user)
        target = _target(room, participant_id)
        admission, _created = Admission.objects.get_or_create(room=room, participant=target)
        if admission.status != AdmissionStatus.WAITING:
            raise RoomRefused(_("That participant is not waiting in the lobby."), code="bad_request")
        _decide(admission, AdmissionStatus.DECLINED, user)
        audit_room(AuditAction.LOBBY_DECLINED, user=user, origin=origin, room=room, participant=str(target.public_id))
        events.send_admission(room, target, AdmissionStatus.DECLINED)
        events.send_members_changed(room)
    return admission


def _admitted_target(room: Room, participant_id) -> tuple[Participant, Admission]:
    target = _target(room, participant_id)
    admission = _admission(room, target)
    if admission is None or admission.status != AdmissionStatus.ADMITTED:
        raise RoomRefused(_("That participant is not in the room."), code="bad_request")
    return target, admission


def participant_mute(
    *, room: Room, user: User, participant_id, muted: bool = True, origin: Origin = SYSTEM
) -> Admission:
    with transaction.atomic():
        room = lock_room(room)
        mediator = _moderator(room, user)
        target, admission = _admitted_target(room, participant_id)
        if admission.muted == muted:
            return admission
        admission.muted = muted
        admission.save(update_fields=["muted"])
        append_event(room, EventKind.MUTED if muted else EventKind.UNMUTED, actor=mediator, subject=target)
        audit_room(
            AuditAction.PARTICIPANT_MUTED if muted else AuditAction.PARTICIPANT_UNMUTED,
            user=user, origin=origin, room=room, participant=str(target.public_id),
        )
        events.send_members_changed(room)
    return admission


def participant_remove(*, room: Room, user: User, participant_id, origin: Origin = SYSTEM) -> Admission:
    """Out of the room at once (sockets closed 4403) until readmitted."""
    with transaction.atomic():
        room = lock_room(room)
        mediator = _moderator(room, user)
        target = _target(room, participant_id)
        admission, _created = Admission.objects.get_or_create(room=room, participant=target)
        if admission.status == AdmissionStatus.REMOVED:
            return admission
        _decide(admission, AdmissionStatus.REMOVED, user)
        append_event(room, EventKind.REMOVED, actor=mediator, subject=target)
        audit_room(AuditAction.PARTICIPANT_REMOVED, user=user, origin=origin, room=room, participant=str(target.public_id))
        events.send_kick(room, target, CLOSE_FORBIDDEN)
        _presence_changed(room)
    return admission


def room_lock(*, room: Room, user: User, locked: bool = True, origin: Origin = SYSTEM) -> Room:
    """A locked room takes no messages and no new arrivals but the mediator's."""
    with transaction.atomic():
        room = lock_room(room)
        mediator = _moderator(room, user)
        if room.locked == locked:
            return room
        room.locked = locked
        room.save(update_fields=["locked"])
        append_event(room, EventKind.LOCKED if locked else EventKind.UNLOCKED, actor=mediator)
        audit_room(AuditAction.ROOM_LOCKED if locked else AuditAction.ROOM_UNLOCKED, user=user, origin=origin, room=room)
    return room


def message_redact(*, room: Room, user: User, seq, origin: Origin = SYSTEM) -> RoomEvent:
    """Replace a message's body for everyone by a notice; who and when are kept."""
    if isinstance(seq, bool) or not isinstance(seq, int) or not 1 <= seq <= MAX_SEQ:
        raise RoomRefused(_("“seq” must be a whole number."), code="bad_request")
    with transaction.atomic():
        room = lock_room(room)
        mediator = _moderator(room, user)
        message = room.events.select_for_update().filter(seq=seq, kind=EventKind.MESSAGE).first()
        if message is None:
            raise RoomRefused(_("No such message in this room."), code="bad_request")
        if message.redacted_at is not None:
            return message
        message.body_sealed = None
        message.redacted_at = timezone.now()
        message.redacted_by = mediator
        message.save(update_fields=["body_sealed", "redacted_at", "redacted_by"])
        append_event(room, EventKind.REDACTED, actor=mediator, subject=message.actor, target_seq=seq)
        audit_room(AuditAction.MESSAGE_REDACTED, user=user, origin=origin, room=room, seq=seq)
    return message


def caucus_open(*, room: Room, user: User, party_id, origin: Origin = SYSTEM) -> Room:
    """Open (or reopen) the caucus with one party, from any room of the case.
    The party and their representatives are admitted to it at once."""
    with transaction.atomic():
        room = lock_room(room)
        _moderator(room, user)
        case = room.case
        _require_session(case)
        party = _party(case, party_id)
        caucus, created = Room.objects.get_or_create(case=case, kind=RoomKind.CAUCUS, party=party)
        if caucus.is_open and not created:
            return caucus
        caucus = lock_room(caucus)
        mediator = room_member(user, caucus)
        caucus.is_open = True
        caucus.save(update_fields=["is_open"])
        members = [m for m in room_members(caucus) if m.role != Role.MEDIATOR]
        for member in members:
            Admission.objects.update_or_create(
                room=caucus,
                participant=member,
                defaults={"status": AdmissionStatus.ADMITTED, "muted": False,
                          "decided_at": timezone.now(), "decided_by": user},
            )
        append_event(caucus, EventKind.CAUCUS_OPENED, actor=mediator, subject=party)
        audit_room(AuditAction.CAUCUS_OPENED, user=user, origin=origin, room=caucus, party=str(party.public_id))
        # The mediator who opened it is answered on their socket (and switches to it).
        events.send_caucus(caucus, [m.user_id for m in members])
    return caucus


def _party(case: Case, party_id) -> Participant:
    try:
        party_uuid = uuid.UUID(str(party_id))
    except ValueError:
        raise RoomRefused(_("No such party in this case."), code="bad_request") from None
    party = case.participants.filter(
        public_id=party_uuid, role__in=PARTY_ROLES, status=ParticipantStatus.ACTIVE
    ).first()
    if party is None:
        raise RoomRefused(_("No such party in this case."), code="bad_request")
    return party


def caucus_close(*, room: Room, user: User, origin: Origin = SYSTEM) -> Room:
    """Close a caucus: its sockets are closed (4409); it can be reopened."""
    with transaction.atomic():
        room = lock_room(room)
        mediator = _moderator(room, user)
        if room.kind != RoomKind.CAUCUS:
            raise RoomRefused(_("Only a caucus can be closed; end the session instead."), code="bad_request")
        if not room.is_open:
            return room
        room.is_open = False
        room.save(update_fields=["is_open"])
        append_event(room, EventKind.CAUCUS_CLOSED, actor=mediator, subject=room.party)
        members = [m for m in room_members(room) if m.role != Role.MEDIATOR]
        room.admissions.all().delete()
        audit_room(AuditAction.CAUCUS_CLOSED, user=user, origin=origin, room=room, party=str(room.party.public_id))
        events.send_caucus(room, [m.user_id for m in members] + [user.pk])
        events.send_room_closed(room, CLOSE_CLOSED)
    return room


def message_post(*, room: Room, user: User, client_id, body) -> tuple[RoomEvent, bool]:
    """Store a message (durable before visible) and return (event, created).
    Idempotent on (room, client_id): a retry returns the stored message."""
    try:
        client_uuid = uuid.UUID(str(client_id))
    except ValueError:
        raise RoomRefused(_("“client_id” must be a UUID."), code="bad_request") from None
    if not isinstance(body, str):
        raise RoomRefused(_("“body” must be text."), code="bad_request")
    if len(body) > settings.ODR_MESSAGE_MAX_CHARS:
        raise RoomRefused(
            _("A message can be at most %(limit)d characters long.") % {"limit": settings.ODR_MESSAGE_MAX_CHARS},
            code="too_large",
        )
    if not body.strip():
        raise RoomRefused(_("The message is empty."), code="bad_request")
    try:
        body.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: valid JSON, not text
        raise RoomRefused(_("The message is not valid text."), code="bad_request") from None
    with transaction.atomic():
        room = lock_room(room)
        current = standing(room=room, user=user)
        existing = room.events.filter(client_id=client_uuid).select_related("actor__user", "room").first()
        if existing is not None:
            if existing.actor_id != current.participant.pk:
                raise RoomRefused(_("That “client_id” is already taken."), code="bad_request")
            return existing, False
        _check_may_speak(room, user, current)
        try:
            with transaction.atomic():
                event = append_event(room, EventKind.MESSAGE, actor=current.participant, client_id=client_uuid, text=body)
        except IntegrityError:
            raise RoomRefused(_("The message could not be stored; send it again."), code="server_error") from None
    return event, True


def _check_may_speak(room: Room, user: User, current: Standing) -> None:
    if not current.admitted:
        raise RoomRefused(_("Wait until the mediator admits you."), code="forbidden")
    if not policy.can(user, "room.post", room):
        raise RoomRefused(_("Observers follow the conversation but do not post."), code="forbidden")
    if open_session(room.case) is None:
        raise RoomRefused(_("The session has not started yet."), code="locked")
    if room.locked and not current.is_mediator:
        raise RoomRefused(_("The mediator has locked the room."), code="locked")
    if current.muted:
        raise RoomRefused(_("The mediator has muted you."), code="muted")


def check_may_speak(*, room: Room, user: User) -> Standing:
    """For typing and document shares: the same rules as a message."""
    current = standing(room=room, user=user)
    _check_may_speak(room, user, current)
    return current
