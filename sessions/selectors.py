"""Reads for pages, always through the policy module."""

from dataclasses import dataclass

from allauth.account.models import EmailAddress
from django.utils.translation import gettext_lazy as _

from odr import policy
from odr.models import AuditAction, AuditEvent, User
from sessions.models import (
    Case,
    CaseStatus,
    ExtensionStatus,
    Invitation,
    InvitationStatus,
    Participant,
    ParticipantStatus,
    Role,
)
from sessions.policies import participant_of

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
    """Pending invitations sent to one of the user's verified addresses."""
    emails = EmailAddress.objects.filter(user=user, verified=True).values_list("email", flat=True)
    return (
        Invitation.objects.filter(
            email__in=[e.lower() for e in emails], status=InvitationStatus.PENDING, sent_at__isnull=False
        )
        .select_related("case", "invited_by")
        .order_by("-sent_at")
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
    """The case's audit rows, each with `state_label` when it changed the state."""
    policy.require(user, "case.view", case, hide=True)
    events = list(
        AuditEvent.objects.filter(object_type=Case._meta.label_lower, object_id=str(case.public_id))
        .select_related("actor")
        .order_by("id")
    )
    for event in events:
        to = event.details.get("to") if event.action == AuditAction.CASE_TRANSITIONED else None
        event.state_label = CaseStatus(to).label if to in CaseStatus.values else ""
    return events


def pending_extension(*, case: Case):
    return case.term_extensions.filter(status=ExtensionStatus.PENDING).prefetch_related("answers").first()

