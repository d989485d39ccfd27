import datetime
import re

import pytest
import time_machine
from django.core import signing
from django.urls import reverse
from django.utils import timezone, translation

from odr.models import AuditAction, AuditEvent
from sessions.models import CaseStatus, Invitation, InvitationStatus, ParticipantStatus, Role
from sessions.services import invitations
from sessions.services.errors import ProcedureError
from sessions.services.invitations import (
    InvitationLinkError,
    invitation_from_token,
    invitation_token,
)


def _link(outbox, email):
    message = next(m for m in outbox if email in m.to and "/invitations/" in m.body)
    return re.search(r"https?://\S+/invitations/(\S+)/", message.body).group(1)


def test_when_case_is_filed_then_invitation_email_carries_a_working_link(invited_case, party_b, run_jobs, outbox):
    assert outbox == []  # nothing leaves before the queue runs
    run_jobs()
    token = _link(outbox, party_b.email)
    assert invitation_from_token(token) == invited_case.invitations.get(email=party_b.email)


def test_when_invitation_is_emailed_then_it_does_not_carry_the_description_of_the_dispute(
    invited_case, party_b, run_jobs, outbox
):
    run_jobs()
    message = next(m for m in outbox if party_b.email in m.to)
    assert invited_case.description and invited_case.description not in message.body
    with translation.override(invited_case.language):  # an invitation is written in the case's language
        assert invited_case.get_category_display() in message.body


def test_when_invitation_is_answered_then_link_cannot_be_used_again(invited_case, party_b, origin):
    invitation = invited_case.invitations.get()
    token = invitation_token(invitation)
    invitations.invitation_accept(invitation=invitation, user=party_b, origin=origin)
    with pytest.raises(InvitationLinkError) as err:
        invitation_from_token(token)
    assert err.value.code == "used_accepted"
    with pytest.raises(ProcedureError):
        invitations.invitation_accept(invitation=invitation, user=party_b, origin=origin)


def test_when_link_is_older_than_ten_days_then_it_has_expired(invited_case):
    token = invitation_token(invited_case.invitations.get())
    with time_machine.travel(timezone.now() + datetime.timedelta(days=10, minutes=1)):
        with pytest.raises(InvitationLinkError) as err:
            invitation_from_token(token)
    assert err.value.code == "expired"


def test_when_link_is_tampered_then_it_is_invalid(invited_case):
    token = invitation_token(invited_case.invitations.get())
    with pytest.raises(InvitationLinkError) as err:
        invitation_from_token(token[:-2] + ("AA" if not token.endswith("AA") else "BB"))
    assert err.value.code == "invalid"
    forged = signing.dumps({"i": str(invited_case.public_id)}, salt="odr.invitation", compress=True)
    with pytest.raises(InvitationLinkError):
        invitation_from_token(forged)


def test_when_someone_else_accepts_then_it_is_refused(invited_case, user_factory, origin):
    intruder = user_factory("intruder@example.kz")
    invitation = invited_case.invitations.get()
    with pytest.raises(ProcedureError) as err:
        invitations.invitation_accept(invitation=invitation, user=intruder, origin=origin)
    assert err.value.code == "wrong_account"
    assert not invited_case.participants.filter(user=intruder).exists()


def test_when_addressee_email_is_unverified_then_accept_is_refused(invited_case, party_b, origin):
    party_b.emailaddress_set.update(verified=False)
    with pytest.raises(ProcedureError):
        invitations.invitation_accept(invitation=invited_case.invitations.get(), user=party_b, origin=origin)


def test_when_invitation_page_is_opened_with_bad_link_then_it_explains(client, invited_case, party_b, origin):
    response = client.get(reverse("mediation:invitation", args=["garbage"]))
    assert response.status_code == 410
    assert "not valid" in response.content.decode()
    invitation = invited_case.invitations.get()
    token = invitation_token(invitation)
    invitations.invitation_decline(invitation=invitation, user=None, reason="", origin=origin)
    response = client.get(reverse("mediation:invitation", args=[token]))
    assert response.status_code == 410
    assert "declined" in response.content.decode()


def test_when_invitee_declines_without_an_account_then_case_is_declined(client, invited_case, run_jobs, outbox):
    token = invitation_token(invited_case.invitations.get())
    response = client.post(
        reverse("mediation:invitation", args=[token]), {"answer": "decline", "reason": "Not interested"}
    )
    assert response.status_code == 200
    invited_case.refresh_from_db()
    assert invited_case.status == CaseStatus.DECLINED
    assert invited_case.invitations.get().decline_reason == "Not interested"
    assert AuditEvent.objects.filter(action=AuditAction.INVITATION_DECLINED, actor=None).exists()


def test_when_nobody_answers_for_ten_days_then_the_job_lapses_the_case(invited_case, run_jobs):
    run_jobs()  # deliver the emails; the lapse job is not due yet
    invited_case.refresh_from_db()
    assert invited_case.status == CaseStatus.INVITED
    with time_machine.travel(timezone.now() + datetime.timedelta(days=10, seconds=5)):
        run_jobs()
    invited_case.refresh_from_db()
    assert invited_case.status == CaseStatus.LAPSED
    assert invited_case.closed_at is not None
    assert invited_case.invitations.get().status == InvitationStatus.LAPSED
    assert AuditEvent.objects.filter(action=AuditAction.INVITATION_LAPSED).count() == 1


def test_when_invitation_was_accepted_then_the_lapse_job_does_nothing(invited_case, party_b, run_jobs, origin):
    invitations.invitation_accept(invitation=invited_case.invitations.get(), user=party_b, origin=origin)
    with time_machine.travel(timezone.now() + datetime.timedelta(days=11)):
        run_jobs()
    invited_case.refresh_from_db()
    assert invited_case.status == CaseStatus.INVITED  # still waiting for the mediator
    assert invited_case.invitations.get().status == InvitationStatus.ACCEPTED
    # ... but the mediator's silence lapsed their proposal: the claimant chooses again
    assert invited_case.participants.get(role=Role.MEDIATOR).status == ParticipantStatus.LAPSED


def test_when_lapse_job_runs_twice_then_second_run_changes_nothing(invited_case):
    invitation = invited_case.invitations.get()
    with time_machine.travel(timezone.now() + datetime.timedelta(days=11)):
        assert invitations.invitation_lapse(invitation_id=invitation.pk) is True
        assert invitations.invitation_lapse(invitation_id=invitation.pk) is False
    assert AuditEvent.objects.filter(action=AuditAction.INVITATION_LAPSED).count() == 1


def test_when_party_invites_representative_then_representative_joins_for_that_party(
    active_case, party_b, user_factory, origin
):
    lawyer = user_factory("lawyer@example.kz")
    invitation = invitations.invitation_create(
        case=active_case, actor=party_b, role=Role.REPRESENTATIVE, name="Lawyer", email=lawyer.email, origin=origin
    )
    participant = invitations.invitation_accept(invitation=invitation, user=lawyer, origin=origin)
    assert participant.role == Role.REPRESENTATIVE
    assert participant.represents.user == party_b
    active_case.refresh_from_db()
    assert active_case.status == CaseStatus.ACTIVE


def test_when_party_invites_observer_then_it_is_forbidden(active_case, party_b, origin):
    from django.core.exceptions import PermissionDenied

    with pytest.raises(PermissionDenied):
        invitations.invitation_create(
            case=active_case, actor=party_b, role=Role.OBSERVER, name="X", email="x@example.kz", origin=origin
        )
    assert not Invitation.objects.filter(email="x@example.kz").exists()


def test_when_one_of_several_parties_declines_then_the_others_links_stop_working(
    party_a, user_factory, mediator, application_factory, origin
):
    from sessions.services import intake

    first, second = user_factory("first@example.kz"), user_factory("second@example.kz")
    case = intake.case_file(claimant=party_a, application=application_factory(first, second, mediator=mediator), origin=origin)
    second_token = invitation_token(case.invitations.get(email=second.email))
    invitations.invitation_decline(invitation=case.invitations.get(email=first.email), user=first, reason="", origin=origin)
    case.refresh_from_db()
    assert case.status == CaseStatus.DECLINED
    with pytest.raises(InvitationLinkError) as err:
        invitation_from_token(second_token)
    assert err.value.code == "used_revoked"
