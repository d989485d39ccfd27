"""Who may read and write a case's draft agreement."""

from odr.policy import rule
from sessions.models import CaseStatus, ParticipantStatus, Role
from sessions.policies import participant_of, undertaken


@rule("agreement.view_draft")
def _view_draft(user, case) -> bool:
    """The parties, their representatives and the mediator (not observers),
    bound by the undertaking, while the content exists."""
    participant = participant_of(user, case)
    return (
        participant is not None
        and participant.status == ParticipantStatus.ACTIVE
        and participant.role != Role.OBSERVER
        and case.status in (CaseStatus.ACTIVE, CaseStatus.SETTLED)
        and case.content_destroyed_at is None
        and undertaken(participant)
    )


@rule("agreement.edit_draft")
def _edit_draft(user, case) -> bool:
    participant = participant_of(user, case)
    return (
        _view_draft(user, case)
        and participant.role == Role.MEDIATOR
        and case.status == CaseStatus.ACTIVE
    )
