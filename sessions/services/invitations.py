"""Emailed invitations: single-use, expiring, signed links; silence lapses."""

import datetime

from django.conf import settings
from django.core import signing
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from odr import policy
from odr.audit import SYSTEM, Origin, audit_record
from odr.mail import email_enqueue
from odr.models import AuditAction, User
from sessions.models import (
    PARTY_ROLES,
    Case,
    CaseStatus,
    Invitation,
    InvitationStatus,
    Participant,
    Role,
)
from sessions.policies import participant_of
from sessions.services.errors import ProcedureError
from sessions.services.procedure import case_advance_if_accepted, case_transition, lock_case

_SALT = "odr.invitation"


class InvitationLinkError(ProcedureError):
    """A link that cannot be used; the message says why and what to do."""


def invitation_token(invitation: Invitation) -> str:
    return signing.dumps({"i": str(invitation.public_id)}, salt=_SALT, compress=True)


def invitation_url(invitation: Invitation) -> str:
    return settings.SITE_URL + reverse("mediation:invitation", args=[invitation_token(invitation)])


def invitation_from_token(token: str) -> Invitation:
    """Resolve a link, explaining exactly what is wrong with a bad one."""
    max_age = datetime.timedelta(days=settings.ODR_INVITATION_DAYS)
    try:
        data = signing.loads(token, salt=_SALT, max_age=max_age)
    except signing.SignatureExpired:
        raise InvitationLinkError(
            _("This invitation link has expired. Ask the person who invited you to send a new one."),
            code="expired",
        ) from None
    except signing.BadSignature:
        raise InvitationLinkError(
            _("This invitation link is not valid. Check that you copied the whole link from the email."),
            code="invalid",
        ) from None
    invitation = (
        Invitation.objects.select_related("case", "case__created_by", "invited_by")
        .filter(public_id=data.get("i"))
        .first()
    )
    if invitation is None:
        raise InvitationLinkError(_("This invitation no longer exists."), code="invalid")
    explain = {
        InvitationStatus.ACCEPTED: _("This invitation has already been accepted. Sign in to see the case."),
        InvitationStatus.DECLINED: _("This invitation was declined. The link cannot be used again."),
        InvitationStatus.LAPSED: _(
            "This invitation lapsed: it was not answered within %(days)d days, which counts as a refusal."
        )
        % {"days": settings.ODR_INVITATION_DAYS},
        InvitationStatus.REVOKED: _("This invitation was withdrawn because the case ended."),
    }
    if invitation.status in explain:
        raise InvitationLinkError(explain[invitation.status], code=f"used_{invitation.status}")
    if invitation.sent_at is None:
        raise InvitationLinkError(_("This invitation link is not valid."), code="invalid")
    if invitation.expires_at and invitation.expires_at <= timezone.now():
        raise InvitationLinkError(
            _("This invitation link has expired. Ask the person who invited you to send a new one."),
            code="expired",
        )
    return invitation


def invitation_send(*, invitation: Invitation, actor: User, origin: Origin) -> Invitation:
    """Email the link and schedule the lapse, in the caller's transaction."""
    from sessions.tasks import lapse_invitation

    now = timezone.now()
    invitation.sent_at = now
    invitation.expires_at = now + datetime.timedelta(days=settings.ODR_INVITATION_DAYS)
    invitation.save(update_fields=["sent_at", "expires_at"])
    audit_record(
        action=AuditAction.INVITATION_SENT,
        actor=actor,
        origin=origin,
        obj=invitation.case,
        details={"invitation": str(invitation.public_id), "role": invitation.role, "email": invitation.email},
    )
    email_enqueue(
        to=invitation.email,
        template="mediation/email/invitation",
        context={
            "invitation": invitation,
            "case": invitation.case,
            "url": invitation_url(invitation),
            "days": settings.ODR_INVITATION_DAYS,
        },
        language=invitation.case.language,
    )
    lapse_invitation.using(run_after=invitation.expires_at).enqueue(invitation_id=invitation.pk)
    return invitation


def invitation_create(
    *,
    case: Case,
    actor: User,
    role: Role,
    name: str,
    email: str,
    origin: Origin,
) -> Invitation:
    """A party invites their representative; the mediator invites an observer."""
    action = {Role.REPRESENTATIVE: "case.invite_representative", Role.OBSERVER: "case.invite_observer"}.get(role)
    if action is None:
        raise ProcedureError(_("That role cannot be invited this way."), code="bad_role")
    email = email.strip().lower()
    with transaction.atomic():
        case = lock_case(case)
        policy.require(actor, action, case)
        if case.participants.filter(user__email__iexact=email).exists():
            raise ProcedureError(_("This person already takes part in the case."), code="already_in_case")
        represents = participant_of(actor, case) if role == Role.REPRESENTATIVE else None
        try:
            with transaction.atomic():
                invitation = Invitation.objects.create(
                    case=case, role=role, name=name.strip(), email=email, represents=represents, invited_by=actor
                )
        except IntegrityError:
            raise ProcedureError(
                _("This person has already been invited to the case."), code="already_invited"
            ) from None
        return invitation_send(invitation=invitation, actor=actor, origin=origin)


def invitation_accept(*, invitation: Invitation, user: User, origin: Origin) -> Participant:
    with transaction.atomic():
        case = lock_case(invitation.case)
        invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
        if invitation.expires_at and invitation.expires_at <= timezone.now():
            raise InvitationLinkError(_("This invitation link has expired."), code="expired")
        if not policy.can(user, "invitation.answer", invitation):
            if invitation.status != InvitationStatus.PENDING:
                raise InvitationLinkError(_("This invitation has already been answered."), code="used")
            raise ProcedureError(
                _(
                    "This invitation was sent to %(email)s. Sign in with that address "
                    "(and confirm it) to accept it."
                )
                % {"email": invitation.email},
                code="wrong_account",
            )
        if case.status not in (CaseStatus.INVITED, CaseStatus.ACCEPTED, CaseStatus.ACTIVE):
            raise ProcedureError(_("This case is no longer open."), code="case_closed")
        if case.participants.filter(user=user).exists():
            raise ProcedureError(_("You already take part in this case."), code="already_in_case")
        participant = Participant.objects.create(
            case=case, user=user, role=invitation.role, represents=invitation.represents
        )
        invitation.status = InvitationStatus.ACCEPTED
        invitation.answered_at = timezone.now()
        invitation.participant = participant
        invitation.save(update_fields=["status", "answered_at", "participant"])
        audit_record(
            action=AuditAction.INVITATION_ACCEPTED,
            actor=user,
            origin=origin,
            obj=case,
            details={"invitation": str(invitation.public_id), "role": invitation.role},
        )
        if invitation.role in PARTY_ROLES:
            case_advance_if_accepted(case=case, actor=user, origin=origin)
    return participant


def invitation_decline(
    *, invitation: Invitation, user: User | None, reason: str, origin: Origin
) -> Invitation:
    """Anyone holding a valid link may decline, without an account
    (voluntariness). A party's refusal ends the procedure."""
    with transaction.atomic():
        case = lock_case(invitation.case)
        invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
        if invitation.status != InvitationStatus.PENDING:
            raise InvitationLinkError(_("This invitation has already been answered."), code="used")
        invitation.status = InvitationStatus.DECLINED
        invitation.answered_at = timezone.now()
        invitation.decline_reason = reason.strip()[:500]
        invitation.save(update_fields=["status", "answered_at", "decline_reason"])
        actor = user if user is not None and user.is_authenticated else None
        audit_record(
            action=AuditAction.INVITATION_DECLINED,
            actor=actor,
            origin=origin,
            obj=case,
            details={"invitation": str(invitation.public_id), "role": invitation.role},
        )
        if invitation.role in PARTY_ROLES and case.status == CaseStatus.INVITED:
            case_transition(case=case, to=CaseStatus.DECLINED, actor=actor, origin=origin, reason=invitation.decline_reason)
    return invitation


def invitation_lapse(*, invitation_id: int) -> bool:
    """Run by the job queue at the deadline: silence is refusal (the Law)."""
    with transaction.atomic():
        invitation = Invitation.objects.select_related("case").filter(pk=invitation_id).first()
        if invitation is None:
            return False
        case = lock_case(invitation.case)
        invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
        if invitation.status != InvitationStatus.PENDING or invitation.expires_at > timezone.now():
            return False
        invitation.status = InvitationStatus.LAPSED
        invitation.save(update_fields=["status"])
        audit_record(
            action=AuditAction.INVITATION_LAPSED,
            actor=None,
            origin=SYSTEM,
            obj=case,
            details={"invitation": str(invitation.public_id), "role": invitation.role},
        )
        if invitation.role in PARTY_ROLES and case.status == CaseStatus.INVITED:
            case_transition(case=case, to=CaseStatus.LAPSED, actor=None, origin=SYSTEM)
    return True
