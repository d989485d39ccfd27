"""Case states, the agreement to mediate, the term, withdrawal and closing."""

import datetime

from django.conf import settings
from django.db import transaction
from django.dispatch import Signal
from django.utils import timezone
from django.utils.translation import gettext as _

from odr import policy
from odr.audit import SYSTEM, Origin, audit_record
from odr.mail import email_enqueue
from odr.models import AuditAction, User
from sessions import agreement_to_mediate
from sessions.models import (
    CLOSED_STATUSES,
    PARTY_ROLES,
    TRANSITIONS,
    AgreementToMediateAcceptance,
    Case,
    CaseStatus,
    ExtensionStatus,
    InvitationStatus,
    Participant,
    ParticipantStatus,
    Role,
    TermExtension,
    TermExtensionAnswer,
)
from sessions.policies import participant_of
from sessions.services import retention, rooms
from sessions.services.errors import ProcedureError, TransitionRefused


# Sent inside the transaction that ends a case (any closed state), after the
# state changed; packages with work in progress on the case end it
# (agreements: a version being signed is withdrawn). Arguments: case, actor, origin.
case_closing = Signal()


def case_transition(
    *, case: Case, to: CaseStatus, actor: User | None, origin: Origin = SYSTEM, reason: str = ""
) -> Case:
    """Move a locked case to `to`, or raise TransitionRefused. Audited.

    Called only by the services of this package, inside their transaction."""
    if to not in TRANSITIONS[case.status]:
        raise TransitionRefused(
            _("A case in state “%(from)s” cannot become “%(to)s”.")
            % {"from": CaseStatus(case.status).label, "to": CaseStatus(to).label},
            code="transition_refused",
        )
    now = timezone.now()
    previous = case.status
    case.status = to
    fields = ["status", "updated_at"]
    if to == CaseStatus.INVITED:
        case.submitted_at = now
        fields.append("submitted_at")
    if to == CaseStatus.ACTIVE:
        case.activated_at = now
        case.term_started_on = timezone.localdate(now)
        case.term_ends_on = case.term_started_on + datetime.timedelta(days=case.term_days)
        fields += ["activated_at", "term_started_on", "term_ends_on"]
    if to in CLOSED_STATUSES:
        case.closed_at = now
        fields.append("closed_at")
        # Nobody may join a case that has ended: its open invitations die with it.
        case.invitations.filter(status=InvitationStatus.PENDING).update(status=InvitationStatus.REVOKED)
    case.save(update_fields=fields)
    if to == CaseStatus.ACTIVE:
        rooms.room_joint(case)
    if to in CLOSED_STATUSES:
        rooms.rooms_close_for_case(case=case, actor=actor, origin=origin)
        retention.destruction_schedule(case)
        case_closing.send(sender=Case, case=case, actor=actor, origin=origin)
    audit_record(
        action=AuditAction.CASE_TRANSITIONED,
        actor=actor,
        origin=origin,
        obj=case,
        details={"from": previous, "to": to, **({"reason": reason} if reason else {})},
    )
    if to in CLOSED_STATUSES:
        _notify_participants(case, "mediation/email/case_closed", exclude=actor)
    return case


def _notify_participants(case: Case, template: str, *, exclude: User | None = None, **extra) -> None:
    for participant in case.participants.filter(status=ParticipantStatus.ACTIVE).select_related("user"):
        if exclude is not None and participant.user_id == exclude.pk:
            continue
        email_enqueue(
            to=participant.user.email,
            template=template,
            context={"case": case, "participant": participant, "site_url": settings.SITE_URL, **extra},
            language=participant.user.preferred_language,
        )


def lock_case(case: Case) -> Case:
    """Re-read the case under a row lock; concurrent services queue here."""
    return Case.objects.select_for_update().get(pk=case.pk)


def case_advance_if_accepted(*, case: Case, actor: User | None, origin: Origin = SYSTEM) -> Case:
    """INVITED → ACCEPTED once every invited party and the mediator said yes."""
    if case.status != CaseStatus.INVITED:
        return case
    party_invitations = case.invitations.filter(role__in=PARTY_ROLES)
    all_parties_in = not party_invitations.exclude(status=InvitationStatus.ACCEPTED).exists()
    mediator_in = case.participants.filter(
        role=Role.MEDIATOR, status=ParticipantStatus.ACTIVE
    ).exists()
    if all_parties_in and mediator_in and party_invitations.exists():
        case_transition(case=case, to=CaseStatus.ACCEPTED, actor=actor, origin=origin)
        _notify_participants(case, "mediation/email/agreement_to_mediate_due")
    return case


def atm_signatories(case: Case):
    """Who must accept the agreement to mediate: every party and the mediator."""
    return case.participants.filter(
        role__in=[*PARTY_ROLES, Role.MEDIATOR], status=ParticipantStatus.ACTIVE
    ).select_related("user")


def atm_accept(
    *, case: Case, user: User, text_sha256: str, origin: Origin
) -> AgreementToMediateAcceptance:
    """Record acceptance of exactly the text the user was shown; start the
    procedure when the last signatory accepts."""
    with transaction.atomic():
        case = lock_case(case)
        policy.require(user, "case.accept_agreement_to_mediate", case)
        participant = participant_of(user, case)
        language = case.language
        text = agreement_to_mediate.render(case=case, language=language)
        if agreement_to_mediate.digest(text) != text_sha256:
            raise ProcedureError(
                _("The agreement to mediate changed while you were reading it. Read it again and accept."),
                code="stale_text",
            )
        acceptance = AgreementToMediateAcceptance.objects.create(
            case=case,
            participant=participant,
            user=user,
            text_version=agreement_to_mediate.VERSION,
            text_language=language,
            text_sha256=text_sha256,
            ip=origin.ip,
            user_agent=origin.user_agent,
        )
        audit_record(
            action=AuditAction.AGREEMENT_TO_MEDIATE_ACCEPTED,
            actor=user,
            origin=origin,
            obj=case,
            details={"version": agreement_to_mediate.VERSION, "sha256": text_sha256, "role": participant.role},
        )
        accepted = set(case.atm_acceptances.values_list("participant_id", flat=True))
        if all(p.pk in accepted for p in atm_signatories(case)):
            case_transition(case=case, to=CaseStatus.ACTIVE, actor=user, origin=origin)
            _notify_participants(case, "mediation/email/case_active")
    return acceptance


def case_withdraw(*, case: Case, user: User, reason: str, origin: Origin) -> Case:
    """A party leaves the mediation (voluntariness): the procedure ends."""
    with transaction.atomic():
        case = lock_case(case)
        policy.require(user, "case.withdraw", case)
        participant = participant_of(user, case)
        participant.status = ParticipantStatus.WITHDRAWN
        participant.answered_at = timezone.now()
        participant.save(update_fields=["status", "answered_at"])
        audit_record(
            action=AuditAction.PARTICIPANT_WITHDREW,
            actor=user,
            origin=origin,
            obj=case,
            details={"role": participant.role, "reason": reason[:500]},
        )
        case_transition(case=case, to=CaseStatus.WITHDRAWN, actor=user, origin=origin, reason=reason[:500])
    return case


def case_close(*, case: Case, user: User, outcome: CaseStatus, origin: Origin) -> Case:
    """The mediator ends an active procedure as settled or not settled."""
    if outcome not in (CaseStatus.SETTLED, CaseStatus.NOT_SETTLED):
        raise ProcedureError(_("Choose whether the dispute was settled."), code="bad_outcome")
    with transaction.atomic():
        case = lock_case(case)
        policy.require(user, "case.close", case)
        case_transition(case=case, to=outcome, actor=user, origin=origin)
    return case


def case_settle(*, case: Case, origin: Origin = SYSTEM) -> Case:
    """The mediation agreement is signed by all and sealed: the procedure
    ends as settled (Law "On Mediation", art. 27). Called by the agreements
    package inside its transaction; a case no longer active stays as it is."""
    case = lock_case(case)
    if case.status == CaseStatus.ACTIVE:
        case_transition(case=case, to=CaseStatus.SETTLED, actor=None, origin=origin,
                        reason="mediation agreement signed and sealed")
    return case


def term_extension_propose(
    *, case: Case, user: User, new_ends_on: datetime.date, reason: str, origin: Origin
) -> TermExtension:
    with transaction.atomic():
        case = lock_case(case)
        policy.require(user, "case.propose_term_extension", case)
        if case.term_ends_on is None or new_ends_on <= case.term_ends_on:
            raise ProcedureError(
                _("The new end of the term must be after the current one (%(date)s).")
                % {"date": case.term_ends_on},
                code="bad_date",
            )
        if not reason.strip():
            raise ProcedureError(_("Give a reason for the extension."), code="reason_required")
        proposer = participant_of(user, case)
        extension = TermExtension.objects.create(
            case=case, proposed_by=proposer, new_ends_on=new_ends_on, reason=reason.strip()[:500]
        )
        audit_record(
            action=AuditAction.CASE_TERM_EXTENSION_PROPOSED,
            actor=user,
            origin=origin,
            obj=case,
            details={"new_ends_on": new_ends_on.isoformat(), "extension": extension.pk},
        )
        if proposer.is_party:
            _record_extension_answer(extension=extension, participant=proposer, consents=True, origin=origin)
        _notify_participants(case, "mediation/email/term_extension_proposed", exclude=user, extension=extension)
        _settle_extension(extension=extension, actor=user, origin=origin)
    return extension


def term_extension_answer(*, case: Case, user: User, consents: bool, origin: Origin) -> TermExtension:
    with transaction.atomic():
        case = lock_case(case)
        policy.require(user, "case.answer_term_extension", case)
        extension = case.term_extensions.select_for_update().get(status=ExtensionStatus.PENDING)
        participant = participant_of(user, case)
        _record_extension_answer(extension=extension, participant=participant, consents=consents, origin=origin)
        _settle_extension(extension=extension, actor=user, origin=origin)
    return extension


def _record_extension_answer(*, extension, participant: Participant, consents: bool, origin: Origin):
    TermExtensionAnswer.objects.create(
        extension=extension,
        participant=participant,
        consents=consents,
        ip=origin.ip,
        user_agent=origin.user_agent,
    )
    audit_record(
        action=(
            AuditAction.CASE_TERM_EXTENSION_CONSENTED if consents else AuditAction.CASE_TERM_EXTENSION_REFUSED
        ),
        actor=participant.user,
        origin=origin,
        obj=extension.case,
        details={"extension": extension.pk},
    )


def _settle_extension(*, extension: TermExtension, actor: User, origin: Origin) -> None:
    """Approve when every party consented; refuse as soon as one refuses."""
    case = extension.case
    answers = {a.participant_id: a.consents for a in extension.answers.all()}
    parties = case.participants.filter(role__in=PARTY_ROLES, status=ParticipantStatus.ACTIVE)
    if any(consents is False for consents in answers.values()):
        extension.status = ExtensionStatus.REFUSED
    elif all(answers.get(p.pk) is True for p in parties):
        extension.status = ExtensionStatus.APPROVED
        previous = case.term_ends_on
        case.term_ends_on = extension.new_ends_on
        case.save(update_fields=["term_ends_on", "updated_at"])
        audit_record(
            action=AuditAction.CASE_TERM_EXTENDED,
            actor=actor,
            origin=origin,
            obj=case,
            details={"from": previous.isoformat(), "to": extension.new_ends_on.isoformat()},
        )
    else:
        return
    extension.decided_at = timezone.now()
    extension.save(update_fields=["status", "decided_at"])
    _notify_participants(case, "mediation/email/term_extension_decided", extension=extension)
