"""Reads for pages, always through the policy module."""

from dataclasses import dataclass

from allauth.account.models import EmailAddress
from django.db.models import Count, Q
from django.utils.translation import gettext_lazy as _

from odr import policy
from odr.models import AuditAction, AuditEvent, MediatorProfile, User
from sessions.models import (
    OPEN_STATUSES,
    Case,
    CaseStatus,
    ExtensionStatus,
    Invitation,
    InvitationStatus,
    Participant,
    ParticipantStatus,
    Role,
    Room,
    RoomKind,
)

_VISIBLE = (ParticipantStatus.PROPOSED, ParticipantStatus.ACTIVE, ParticipantStatus.WITHDRAWN)


@dataclass(frozen=True)
class CaseRow:
    case: Case
    participant: Participant
    next_action: str | None


def next_action(*, user: User, case: Case) -> str | None:
    """What the case expects of this user now, or None if nothing."""
    checks = [
        ("case.edit_draft", _("Finish and file your application")),
        ("case.answer_as_mediator", _("Accept or decline the case")),
        ("case.choose_mediator", _("Choose another mediator")),
        ("case.accept_agreement_to_mediate", _("Read and accept the agreement to mediate")),
        ("case.answer_term_extension", _("Answer the proposed extension of the term")),
    ]
    for action, label in checks:
        if policy.can(user, action, case):
            return str(label)
    return None


def cases_for_user(*, user: User) -> list[CaseRow]:
    participants = (
        Participant.objects.filter(user=user, status__in=_VISIBLE)
        .select_related("case", "case__court")
        .order_by("-case__updated_at")
    )
    rows = []
    for participant in participants:
        case = participant.case
        rows.append(CaseRow(case=case, participant=participant, next_action=next_action(user=user, case=case)))
    return rows


def mediator_caseload(*, user: User) -> dict[str, list[CaseRow]]:
    rows = [r for r in cases_for_user(user=user) if r.participant.role == Role.MEDIATOR]
    return {
        "proposed": [r for r in rows if r.participant.status == ParticipantStatus.PROPOSED],
        "open": [r for r in rows if r.participant.status == ParticipantStatus.ACTIVE and r.case.is_open],
        "closed": [r for r in rows if not r.case.is_open],
    }


def invitations_for_user(*, user: User):
    """Pending invitations this user may answer (the policy decides: sent to
    one of their addresses, and that address verified)."""
    emails = [e.lower() for e in EmailAddress.objects.filter(user=user).values_list("email", flat=True)]
    candidates = (
        Invitation.objects.filter(email__in=emails, status=InvitationStatus.PENDING)
        .select_related("case", "invited_by")
        .order_by("-sent_at")
    )
    return [invitation for invitation in candidates if policy.can(user, "invitation.answer", invitation)]


def case_open_invitations(*, user: User, case: Case):
    """Invitations not (yet) turned into participants, for the case page."""
    policy.require(user, "case.view", case, hide=True)
    return case.invitations.exclude(status=InvitationStatus.ACCEPTED)


def case_mediator(*, case: Case) -> Participant | None:
    """The mediator proposed for or taking the case, if any."""
    return (
        case.participants.filter(
            role=Role.MEDIATOR, status__in=[ParticipantStatus.PROPOSED, ParticipantStatus.ACTIVE]
        )
        .select_related("user")
        .first()
    )


def case_participants(*, user: User, case: Case) -> list[dict]:
    """Participants as the viewer may see them: contact details only for the
    mediator and the participant themself."""
    policy.require(user, "case.view", case, hide=True)
    rows = []
    for participant in case.participants.select_related("user", "represents__user").exclude(
        status=ParticipantStatus.DECLINED
    ):
        show_contacts = policy.can(user, "case.view_contacts", participant)
        rows.append(
            {
                "participant": participant,
                "email": participant.user.email if show_contacts else None,
                "phone": participant.user.phone if show_contacts else None,
            }
        )
    return rows


def case_history(*, user: User, case: Case) -> list[AuditEvent]:
    """The case's audit rows, each with `state_label` when it changed the
    state. What happened in a room is shown only to that room's members: a
    caucus's activity never reaches the other party."""
    policy.require(user, "case.view", case, hide=True)
    rows = (
        AuditEvent.objects.filter(object_type=Case._meta.label_lower, object_id=str(case.public_id))
        .select_related("actor")
        .order_by("id")
    )
    visible = {str(room.public_id): policy.can(user, "room.see_activity", room) for room in case.rooms.all()}
    events = [e for e in rows if "room" not in e.details or visible.get(str(e.details["room"]), False)]
    for event in events:
        to = event.details.get("to") if event.action == AuditAction.CASE_TRANSITIONED else None
        event.state_label = CaseStatus(to).label if to in CaseStatus.values else ""
    return events


def pending_extension(*, case: Case):
    return case.term_extensions.filter(status=ExtensionStatus.PENDING).prefetch_related("answers").first()


def mediator_candidates(*, case: Case | None = None, exclude_emails=()):
    """Active mediators who may take the case, least loaded first."""
    profiles = (
        MediatorProfile.objects.filter(is_active=True, user__is_active=True)
        .select_related("user")
        .annotate(
            open_cases=Count(
                "user__participations",
                filter=Q(
                    user__participations__role=Role.MEDIATOR,
                    user__participations__status__in=[ParticipantStatus.PROPOSED, ParticipantStatus.ACTIVE],
                    user__participations__case__status__in=OPEN_STATUSES,
                ),
            )
        )
        .order_by("open_cases", "user__display_name", "pk")
    )
    if exclude_emails:
        profiles = profiles.exclude(user__email__in=[e.lower() for e in exclude_emails])
    if case is not None and case.pk:
        profiles = profiles.exclude(user__participations__case=case)
    return profiles


def mediator_users(*, case: Case | None = None):
    """The mediators a claimant may choose, as users (for choice fields)."""
    return User.objects.filter(mediator_profile__in=mediator_candidates(case=case)).select_related(
        "mediator_profile"
    ).order_by("display_name")


@dataclass(frozen=True)
class RoomLink:
    label: str
    room: Room | None
    party: Participant | None
    is_open: bool


def rooms_for(*, user: User, case: Case) -> list[RoomLink]:
    """The rooms of the case this user may enter, for the case page and the
    room switcher: the joint room, and the caucuses the user belongs to (the
    mediator sees one per party, open or not)."""
    from sessions.policies import room_member

    if case.status != CaseStatus.ACTIVE:
        return []
    rooms = list(Room.objects.filter(case=case).select_related("party__user"))
    links = []
    joint = next((r for r in rooms if r.kind == RoomKind.JOINT), None)
    if joint is not None and room_member(user, joint) is not None:
        links.append(RoomLink(str(_("Joint room")), joint, None, True))
    participant = participant_of_case(user=user, case=case)
    if participant is None:
        return links
    caucuses = {r.party_id: r for r in rooms if r.kind == RoomKind.CAUCUS}
    if participant.role == Role.MEDIATOR and policy.can(user, "mediator.work"):
        parties = case.participants.filter(
            role__in=[Role.CLAIMANT, Role.RESPONDENT], status=ParticipantStatus.ACTIVE
        ).select_related("user")
        for party in parties:
            caucus = caucuses.get(party.pk)
            label = _("Caucus with %(name)s") % {"name": party.user.display_name}
            links.append(RoomLink(str(label), caucus, party, bool(caucus and caucus.is_open)))
        return links
    for caucus in caucuses.values():
        if caucus.is_open and room_member(user, caucus) is not None:
            links.append(RoomLink(str(_("Private caucus with the mediator")), caucus, caucus.party, True))
    return links


def participant_of_case(*, user: User, case: Case) -> Participant | None:
    return case.participants.filter(user=user, status=ParticipantStatus.ACTIVE).first()
