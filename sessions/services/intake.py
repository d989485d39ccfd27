"""Filing an application: draft, submit, invite, propose a mediator."""

from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction
from django.utils.translation import gettext as _

from odr import policy
from odr.audit import Origin, audit_record
from odr.models import AuditAction, Court, User
from sessions.models import (
    Case,
    CaseStatus,
    Invitation,
    MediatorSelection,
    Participant,
    Role,
)
from sessions.services.errors import ProcedureError
from sessions.services.invitations import invitation_send
from sessions.services.mediators import mediator_choose_for, mediator_propose
from sessions.services.procedure import case_transition, lock_case

MAX_OTHER_PARTIES = 20


@dataclass(frozen=True)
class OtherParty:
    name: str
    email: str


@dataclass(frozen=True)
class Application:
    category: str
    description: str
    language: str
    other_parties: list[OtherParty] = field(default_factory=list)
    court: Court | None = None
    court_case_number: str = ""
    mediator: User | None = None  # None: "assign one for me"


def _check_application(*, claimant: User, application: Application) -> None:
    if not application.other_parties:
        raise ProcedureError(_("Name at least one other party."), code="no_other_party")
    if len(application.other_parties) > MAX_OTHER_PARTIES:
        raise ProcedureError(
            _("A case can have at most %(n)d other parties.") % {"n": MAX_OTHER_PARTIES},
            code="too_many_parties",
        )
    emails = [p.email.strip().lower() for p in application.other_parties]
    if claimant.email.lower() in emails:
        raise ProcedureError(_("You cannot name yourself as the other party."), code="self_invite")
    if len(set(emails)) != len(emails):
        raise ProcedureError(_("Each other party needs a different email address."), code="duplicate_party")
    if application.court_case_number and application.court is None:
        raise ProcedureError(_("Choose the court the case number belongs to."), code="number_without_court")
    mediator = application.mediator
    if mediator is not None:
        if not policy.is_active_mediator(mediator):
            raise ProcedureError(_("That mediator is not available. Choose another."), code="mediator_unavailable")
        if mediator.pk == claimant.pk or mediator.email.lower() in emails:
            raise ProcedureError(
                _("A party to the dispute cannot be its mediator (impartiality)."), code="mediator_is_party"
            )


def case_draft_save(
    *, claimant: User, application: Application, origin: Origin, case: Case | None = None
) -> Case:
    """Create or update a draft application. Nothing is sent yet."""
    policy.require(claimant, "case.file")
    _check_application(claimant=claimant, application=application)
    with transaction.atomic():
        if case is None:
            case = Case.objects.create(
                category=application.category,
                description=application.description,
                language=application.language,
                created_by=claimant,
                term_days=settings.ODR_TERM_DAYS,
            )
            case.reference = f"ODR-{case.created_at:%Y}-{case.pk:06d}"
            case.save(update_fields=["reference"])
            Participant.objects.create(case=case, user=claimant, role=Role.CLAIMANT)
            action = AuditAction.CASE_CREATED
        else:
            case = lock_case(case)
            policy.require(claimant, "case.edit_draft", case)
            case.category = application.category
            case.description = application.description
            case.language = application.language
            case.invitations.all().delete()  # drafts' invitations were never sent
            action = AuditAction.CASE_UPDATED
        case.court = application.court
        case.court_case_number = application.court_case_number
        case.requested_mediator = application.mediator
        case.mediator_selection = (
            MediatorSelection.CHOSEN if application.mediator else MediatorSelection.ASSIGNED
        )
        case.full_clean(exclude=["created_by", "requested_mediator", "court"])
        case.save()
        for other in application.other_parties:
            Invitation.objects.create(
                case=case,
                role=Role.RESPONDENT,
                name=other.name.strip(),
                email=other.email.strip().lower(),
                invited_by=claimant,
            )
        audit_record(
            action=action,
            actor=claimant,
            origin=origin,
            obj=case,
            details={"other_parties": len(application.other_parties)},
        )
    return case


def case_submit(*, case: Case, claimant: User, origin: Origin) -> Case:
    """DRAFT → INVITED: invite the other parties and propose the mediator."""
    with transaction.atomic():
        case = lock_case(case)
        policy.require(claimant, "case.edit_draft", case)
        mediator = case.requested_mediator
        if mediator is not None and not policy.is_active_mediator(mediator):
            raise ProcedureError(
                _("The mediator you chose is no longer available. Choose another."),
                code="mediator_unavailable",
            )
        if mediator is None:
            mediator = mediator_choose_for(case=case)
        case_transition(case=case, to=CaseStatus.INVITED, actor=claimant, origin=origin)
        audit_record(action=AuditAction.CASE_SUBMITTED, actor=claimant, origin=origin, obj=case)
        for invitation in case.invitations.filter(sent_at__isnull=True):
            invitation_send(invitation=invitation, actor=claimant, origin=origin)
        mediator_propose(case=case, mediator=mediator, actor=claimant, origin=origin)
    return case


def case_file(*, claimant: User, application: Application, origin: Origin) -> Case:
    """Draft and submit in one step: either all of it happens or none."""
    with transaction.atomic():
        case = case_draft_save(claimant=claimant, application=application, origin=origin)
        return case_submit(case=case, claimant=claimant, origin=origin)
