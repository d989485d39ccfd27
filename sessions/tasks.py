"""Jobs on the durable queue (django-tasks, database backend)."""

from django_tasks import task

from sessions.services.invitations import invitation_lapse
from sessions.services.mediators import mediator_proposal_lapse


@task()
def lapse_invitation(*, invitation_id: int) -> bool:
    return invitation_lapse(invitation_id=invitation_id)


@task()
def lapse_mediator_proposal(*, participant_id: int) -> bool:
    return mediator_proposal_lapse(participant_id=participant_id)


@task()
def destroy_case_content(*, case_id: int) -> bool:
    """Crypto-shred a closed case's content once its retention date passes
    (does nothing if it is under legal hold or not yet due)."""
    from sessions.services.retention import case_content_destroy

    return case_content_destroy(case_id=case_id)
