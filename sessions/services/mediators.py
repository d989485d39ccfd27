"""Proposing a mediator, their answer, and the lapse of an unanswered proposal."""

import datetime

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from odr import policy
from odr.audit import SYSTEM, Origin, audit_record
from odr.mail import email_enqueue
from odr.models import AuditAction, User
from sessions.models import (
    Case,
    CaseStatus,
    MediatorSelection,
    Participant,
    ParticipantStatus,
    Role,
)
from sessions.policies import participant_of
from sessions.selectors import mediator_candidates
from sessions.services.errors import ProcedureError
from sessions.services.procedure import case_advance_if_accepted, lock_case


def mediator_choose_for(*, case: Case) -> User:
    """"Assign one for me": the least-loaded active mediator who speaks the
    case's language and handles its category; relax the match if nobody does."""
    exclude = list(case.invitations.values_list("email", flat=True))
    candidates = list(mediator_candidates(case=case, exclude_emails=exclude))
    for matches in (
        lambda p: case.language in p.languages and case.category in p.specialisations,
        lambda p: case.language in p.languages,
        lambda p: True,
    ):
        for profile in candidates:
            if matches(profile):
                return profile.user
    raise ProcedureError(
        _("No mediator is available right now. Save your application as a draft and try again later."),
        code="no_mediator",
    )


def mediator_propose(*, case: Case, mediator: User, actor: User, origin: Origin) -> Participant:
    """Ask a mediator to take the case; silence lapses like a refusal."""
    from sessions.tasks import lapse_mediator_proposal

    if not policy.is_active_mediator(mediator):
        raise ProcedureError(_("That mediator is not available. Choose another."), code="mediator_unavailable")
    if case.participants.filter(user=mediator).exists() or case.invitations.filter(
        email__iexact=mediator.email
    ).exists():
        raise ProcedureError(
            _("This person already has a role in the case and cannot mediate it."), code="mediator_conflict"
        )
    respond_by = timezone.now() + datetime.timedelta(days=settings.ODR_INVITATION_DAYS)
    participant = Participant.objects.create(
        case=case, user=mediator, role=Role.MEDIATOR, status=ParticipantStatus.PROPOSED, respond_by=respond_by
    )
    case.requested_mediator = None
    case.save(update_fields=["requested_mediator", "updated_at"])
    audit_record(
        action=AuditAction.MEDIATOR_PROPOSED,
        actor=actor,
        origin=origin,
        obj=case,
        details={"mediator": mediator.email, "selection": case.mediator_selection},
    )
    email_enqueue(
        to=mediator.email,
        template="mediation/email/mediator_proposed",
        context={"case": case, "mediator": mediator, "respond_by": respond_by, "site_url": settings.SITE_URL},
        language=mediator.preferred_language,
    )
    lapse_mediator_proposal.using(run_after=respond_by).enqueue(participant_id=participant.pk)
    return participant


def mediator_choose_another(*, case: Case, claimant: User, mediator: User | None, origin: Origin) -> Participant:
    """After a mediator declined or lapsed, the claimant picks another (or asks
    the platform to assign one)."""
    with transaction.atomic():
        case = lock_case(case)
        policy.require(claimant, "case.choose_mediator", case)
        if mediator is None:
            case.mediator_selection = MediatorSelection.ASSIGNED
            mediator = mediator_choose_for(case=case)
        return mediator_propose(case=case, mediator=mediator, actor=claimant, origin=origin)


def mediator_answer(*, case: Case, user: User, accept: bool, reason: str, origin: Origin) -> Participant:
    with transaction.atomic():
        case = lock_case(case)
        policy.require(user, "case.answer_as_mediator", case)
        participant = participant_of(user, case)
        participant.status = ParticipantStatus.ACTIVE if accept else ParticipantStatus.DECLINED
        participant.answered_at = timezone.now()
        participant.decline_reason = "" if accept else reason.strip()[:500]
        participant.save(update_fields=["status", "answered_at", "decline_reason"])
        audit_record(
            action=AuditAction.MEDIATOR_ACCEPTED if accept else AuditAction.MEDIATOR_DECLINED,
            actor=user,
            origin=origin,
            obj=case,
            details={} if accept else {"reason": participant.decline_reason},
        )
        if accept:
            case_advance_if_accepted(case=case, actor=user, origin=origin)
        else:
            _tell_claimant_to_choose(case)
    return participant


def _tell_claimant_to_choose(case: Case) -> None:
    claimant = case.created_by
    email_enqueue(
        to=claimant.email,
        template="mediation/email/mediator_declined",
        context={"case": case, "site_url": settings.SITE_URL},
        language=claimant.preferred_language,
    )


def mediator_proposal_lapse(*, participant_id: int) -> bool:
    """Run by the job queue at the deadline; a no-op if the mediator answered."""
    with transaction.atomic():
        participant = (
            Participant.objects.select_for_update().select_related("case").filter(pk=participant_id).first()
        )
        if participant is None or participant.status != ParticipantStatus.PROPOSED:
            return False
        if participant.respond_by and participant.respond_by > timezone.now():
            return False
        case = lock_case(participant.case)
        participant.status = ParticipantStatus.LAPSED
        participant.answered_at = timezone.now()
        participant.save(update_fields=["status", "answered_at"])
        audit_record(
            action=AuditAction.MEDIATOR_LAPSED,
            actor=None,
            origin=SYSTEM,
            obj=case,
            details={"mediator": participant.user.email},
        )
        if case.status == CaseStatus.INVITED:
            _tell_claimant_to_choose(case)
    return True
