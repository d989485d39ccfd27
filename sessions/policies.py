"""Who may do what to a case. Registered with `odr.policy`; nothing else decides."""

from django.core.exceptions import ValidationError
from django.http import Http404

from odr import policy
from odr.policy import rule
from sessions.models import (
    CLOSED_STATUSES,
    PARTY_ROLES,
    Admission,
    AdmissionStatus,
    Case,
    CaseStatus,
    ExtensionStatus,
    InvitationStatus,
    Participant,
    ParticipantStatus,
    Role,
    Room,
    RoomKind,
)

# A participant who withdrew keeps read access to the case they took part in.
_CAN_SEE = (ParticipantStatus.PROPOSED, ParticipantStatus.ACTIVE, ParticipantStatus.WITHDRAWN)


def participant_of(user, case: Case) -> Participant | None:
    """The user's role in the case, or None."""
    if user is None or not user.is_authenticated:
        return None
    return case.participants.filter(user=user).first()


def _active(user, case, roles=None) -> Participant | None:
    participant = participant_of(user, case)
    if participant is None or participant.status != ParticipantStatus.ACTIVE:
        return None
    if roles is not None and participant.role not in roles:
        return None
    return participant


def access_case(user, public_id, *, action: str = "case.view", for_update: bool = False) -> Case:
    """Fetch a case by public id for `action`; 404 when the user may not see it,
    so that guessed ids reveal nothing."""
    queryset = Case.objects.select_related("court")
    if for_update:
        queryset = queryset.select_for_update()
    try:
        case = queryset.get(public_id=public_id)
    except (Case.DoesNotExist, ValueError, TypeError):
        raise Http404 from None
    policy.require(user, "case.view", case, hide=True)
    if action != "case.view":
        policy.require(user, action, case)
    return case


@rule("case.file")
def _file(user, _obj) -> bool:
    return True


@rule("case.view")
def _view(user, case) -> bool:
    participant = participant_of(user, case)
    return participant is not None and participant.status in _CAN_SEE


@rule("case.edit_draft")
def _edit_draft(user, case) -> bool:
    return case.status == CaseStatus.DRAFT and _active(user, case, [Role.CLAIMANT]) is not None


@rule("case.choose_mediator")
def _choose_mediator(user, case) -> bool:
    return (
        case.status == CaseStatus.INVITED
        and _active(user, case, [Role.CLAIMANT]) is not None
        and not case.participants.filter(
            role=Role.MEDIATOR, status__in=[ParticipantStatus.PROPOSED, ParticipantStatus.ACTIVE]
        ).exists()
    )


@rule("case.answer_as_mediator")
def _answer_as_mediator(user, case) -> bool:
    participant = participant_of(user, case)
    return (
        case.status == CaseStatus.INVITED
        and participant is not None
        and participant.role == Role.MEDIATOR
        and participant.status == ParticipantStatus.PROPOSED
        and policy.can(user, "mediator.work")
    )


@rule("case.accept_agreement_to_mediate")
def _accept_atm(user, case) -> bool:
    participant = _active(user, case, [*PARTY_ROLES, Role.MEDIATOR])
    if participant is None or case.status != CaseStatus.ACCEPTED:
        return False
    if participant.role == Role.MEDIATOR and not policy.can(user, "mediator.work"):
        return False
    return not case.atm_acceptances.filter(participant=participant).exists()


@rule("case.withdraw")
def _withdraw(user, case) -> bool:
    return case.is_open and _active(user, case, PARTY_ROLES) is not None


@rule("case.close")
def _close(user, case) -> bool:
    return (
        case.status == CaseStatus.ACTIVE
        and _active(user, case, [Role.MEDIATOR]) is not None
        and policy.can(user, "mediator.work")
    )


@rule("case.propose_term_extension")
def _propose_extension(user, case) -> bool:
    return (
        case.status == CaseStatus.ACTIVE
        and _active(user, case, [*PARTY_ROLES, Role.MEDIATOR]) is not None
        and not case.term_extensions.filter(status=ExtensionStatus.PENDING).exists()
    )


@rule("case.answer_term_extension")
def _answer_extension(user, case) -> bool:
    participant = _active(user, case, PARTY_ROLES)
    if participant is None or case.status != CaseStatus.ACTIVE:
        return False
    pending = case.term_extensions.filter(status=ExtensionStatus.PENDING).first()
    return pending is not None and not pending.answers.filter(participant=participant).exists()


@rule("case.invite_representative")
def _invite_representative(user, case) -> bool:
    return (
        case.status in (CaseStatus.INVITED, CaseStatus.ACCEPTED, CaseStatus.ACTIVE)
        and _active(user, case, PARTY_ROLES) is not None
    )


@rule("case.invite_observer")
def _invite_observer(user, case) -> bool:
    return (
        case.status in (CaseStatus.ACCEPTED, CaseStatus.ACTIVE)
        and _active(user, case, [Role.MEDIATOR]) is not None
        and policy.can(user, "mediator.work")
    )


@rule("case.view_contacts")
def _view_contacts(user, participant) -> bool:
    """A participant's email and phone: the mediator, the participant
    themselves, and the others in the case only if the participant shares them."""
    if participant.user_id == user.pk or _active(user, participant.case, [Role.MEDIATOR]) is not None:
        return True
    return participant.shares_contacts and _view(user, participant.case)


@rule("case.share_contacts")
def _share_contacts(user, participant) -> bool:
    """Only the participant decides whether the others see their contacts."""
    return participant.user_id == user.pk and _view(user, participant.case)


@rule("case.legal_hold")
def _legal_hold(user, case) -> bool:
    """Administrators place and lift legal holds."""
    return user.is_authenticated and user.is_active and user.is_staff


@rule("case.break_glass")
def _break_glass(user, case) -> bool:
    """Administrators may open audited, time-limited access to a case's
    content; never a participant of the case (they use the rooms)."""
    return (
        user.is_authenticated and user.is_active and user.is_staff
        and case.content_destroyed_at is None and participant_of(user, case) is None
    )


@rule("invitation.answer")
def _answer_invitation(user, invitation) -> bool:
    """Only the addressee, signed in with that verified email, answers."""
    from allauth.account.models import EmailAddress

    if invitation.status != InvitationStatus.PENDING or invitation.sent_at is None:
        return False
    return EmailAddress.objects.filter(
        user=user, email__iexact=invitation.email, verified=True
    ).exists()


# --- Rooms ---------------------------------------------------------------------


def undertaken(participant: Participant | None) -> bool:
    """Has accepted the current confidentiality undertaking for the case."""
    from sessions.services.confidentiality import undertaking_accepted

    return undertaking_accepted(participant)


def room_member(user, room: Room) -> Participant | None:
    """Who belongs in the room at all, whatever the lobby says: in the joint
    room every active participant; in a caucus its party, that party's
    representatives and the mediator. A mediator without 2FA is not let in."""
    participant = _active(user, room.case)
    if participant is None:
        return None
    if participant.role == Role.MEDIATOR:
        return participant if policy.can(user, "mediator.work") else None
    if room.kind == RoomKind.JOINT:
        return participant
    if participant.pk == room.party_id:
        return participant
    if participant.role == Role.REPRESENTATIVE and participant.represents_id == room.party_id:
        return participant
    return None


def access_room(user, public_id, *, action: str = "room.enter") -> tuple[Room, Participant]:
    """Fetch a room by public id with the user's participant; 404 for rooms
    the user may not know about, so guessed ids reveal nothing."""
    try:
        room = Room.objects.select_related("case", "party").get(public_id=public_id)
    except (Room.DoesNotExist, ValueError, TypeError, ValidationError):
        raise Http404 from None
    policy.require(user, "room.view", room, hide=True)
    if action != "room.view":
        policy.require(user, action, room)
    return room, room_member(user, room)


@rule("room.view")
def _room_view(user, room) -> bool:
    """See the room page and its history, while the case lasts."""
    return room_member(user, room) is not None and room.case.status == CaseStatus.ACTIVE


@rule("room.read")
def _room_read(user, room) -> bool:
    """Room content (history, documents) outside the socket: the mediator, or
    a member admitted to the room in the current session."""
    participant = room_member(user, room)
    if participant is None or room.case.status != CaseStatus.ACTIVE or not undertaken(participant):
        return False
    if participant.role == Role.MEDIATOR:
        return True
    return Admission.objects.filter(
        room=room, participant=participant, status=AdmissionStatus.ADMITTED
    ).exists() and room.is_open


@rule("room.see_closed")
def _room_see_closed(user, room) -> bool:
    """After the case ends its members see that the room closed, and when
    its content will be (or was) destroyed; not the content."""
    return room_member(user, room) is not None and room.case.status in CLOSED_STATUSES


@rule("room.see_activity")
def _room_see_activity(user, room) -> bool:
    """What happened in a room (who shared, consented, was admitted; never the
    content) appears in the case's history only for the room's members: a
    caucus's activity never reaches the other party."""
    return room_member(user, room) is not None


@rule("room.enter")
def _room_enter(user, room) -> bool:
    """Nobody enters before accepting the case's confidentiality undertaking."""
    return (
        _room_view(user, room)
        and (room.is_open or _is_mediator(user, room))
        and undertaken(room_member(user, room))
    )


@rule("room.post")
def _room_post(user, room) -> bool:
    """Observers follow the joint room; they do not speak."""
    participant = room_member(user, room)
    return (
        participant is not None
        and participant.role != Role.OBSERVER
        and room.case.status == CaseStatus.ACTIVE
        and undertaken(participant)
    )


@rule("room.moderate")
def _room_moderate(user, room) -> bool:
    return (
        _is_mediator(user, room)
        and room.case.status == CaseStatus.ACTIVE
        and undertaken(room_member(user, room))
    )


@rule("room.consent")
def _room_consent(user, room) -> bool:
    """A party in the room gives or withdraws consent to a transcript."""
    participant = room_member(user, room)
    return (
        participant is not None
        and participant.role in PARTY_ROLES
        and room.case.status == CaseStatus.ACTIVE
        and _room_read(user, room)
    )


@rule("room.withdraw_consent")
def _room_withdraw_consent(user, room) -> bool:
    """A party may withdraw consent until the export, even between sessions
    or after their caucus closed (voluntariness): no admission needed."""
    participant = room_member(user, room)
    return (
        participant is not None
        and participant.role in PARTY_ROLES
        and room.case.status == CaseStatus.ACTIVE
        and undertaken(participant)
    )


@rule("room.export")
def _room_export(user, room) -> bool:
    """The mediator exports a transcript only when every party in the room
    has consented there (and has not withdrawn), and the content still exists."""
    from sessions.services.transcripts import all_parties_consent

    return (
        _is_mediator(user, room)
        and room.case.content_destroyed_at is None
        and undertaken(room_member(user, room))
        and all_parties_consent(room)
    )


def _is_mediator(user, room) -> bool:
    participant = room_member(user, room)
    return participant is not None and participant.role == Role.MEDIATOR
