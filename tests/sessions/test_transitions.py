"""Every case state transition, allowed and refused."""

import itertools

import pytest
from django.core.exceptions import PermissionDenied

from odr.models import AuditAction, AuditEvent
from sessions.models import TRANSITIONS, CaseStatus, ParticipantStatus, Role
from sessions.services import intake, mediators, procedure
from sessions.services.errors import ProcedureError, TransitionRefused
from sessions.services.procedure import case_transition
from tests.case_fixtures import accept_atm


def _transitions_logged(case):
    return list(
        AuditEvent.objects.filter(action=AuditAction.CASE_TRANSITIONED, object_id=str(case.public_id))
        .order_by("id")
        .values_list("details__from", "details__to")
    )


ALL_PAIRS = list(itertools.product(CaseStatus.values, CaseStatus.values))


@pytest.mark.parametrize(("source", "target"), ALL_PAIRS)
def test_when_transition_is_requested_then_only_the_closed_set_is_allowed(invited_case, source, target):
    invited_case.status = source
    allowed = target in TRANSITIONS[source]
    if allowed:
        case_transition(case=invited_case, to=target, actor=None)
        assert invited_case.status == target
        assert _transitions_logged(invited_case)[-1] == (source, target)
    else:
        with pytest.raises(TransitionRefused):
            case_transition(case=invited_case, to=target, actor=None)
        assert invited_case.status == source


def test_when_draft_is_saved_and_submitted_then_draft_becomes_invited(party_a, party_b, mediator, application_factory, origin, run_jobs, outbox):
    case = intake.case_draft_save(claimant=party_a, application=application_factory(party_b, mediator=mediator), origin=origin)
    assert case.status == CaseStatus.DRAFT
    run_jobs()
    assert outbox == []  # a draft sends nothing
    intake.case_submit(case=case, claimant=party_a, origin=origin)
    case.refresh_from_db()
    assert case.status == CaseStatus.INVITED and case.submitted_at is not None
    run_jobs()
    assert sorted(m.to[0] for m in outbox) == sorted([party_b.email, mediator.email])


def test_when_everyone_accepts_then_case_goes_invited_accepted_active(accepted_case, party_a, party_b, mediator, origin):
    assert accepted_case.status == CaseStatus.ACCEPTED
    accept_atm(accepted_case, party_a, origin)
    accept_atm(accepted_case, party_b, origin)
    accepted_case.refresh_from_db()
    assert accepted_case.status == CaseStatus.ACCEPTED  # the mediator has not accepted yet
    accept_atm(accepted_case, mediator, origin)
    accepted_case.refresh_from_db()
    assert accepted_case.status == CaseStatus.ACTIVE
    assert (accepted_case.term_ends_on - accepted_case.term_started_on).days == 30
    assert _transitions_logged(accepted_case) == [
        ("draft", "invited"), ("invited", "accepted"), ("accepted", "active")
    ]


def test_when_atm_acceptance_is_recorded_then_who_when_ip_agent_version_are_kept(accepted_case, party_a, origin):
    acceptance = accept_atm(accepted_case, party_a, origin)
    assert acceptance.user == party_a
    assert acceptance.ip == origin.ip and acceptance.user_agent == origin.user_agent
    assert acceptance.text_version and len(acceptance.text_sha256) == 64
    with pytest.raises(PermissionDenied):
        accept_atm(accepted_case, party_a, origin)  # once only


def test_when_atm_text_changed_since_it_was_shown_then_acceptance_is_refused(accepted_case, party_a, origin):
    with pytest.raises(ProcedureError) as err:
        procedure.atm_accept(case=accepted_case, user=party_a, text_sha256="0" * 64, origin=origin)
    assert err.value.code == "stale_text"
    assert not accepted_case.atm_acceptances.exists()


def test_when_party_accepts_atm_before_everyone_joined_then_it_is_refused(invited_case, party_a, origin):
    with pytest.raises(PermissionDenied):
        accept_atm(invited_case, party_a, origin)


def test_when_mediator_declines_then_claimant_chooses_another(invited_case, party_a, party_b, mediator, mediator_factory, origin):
    mediators.mediator_answer(case=invited_case, user=mediator, accept=False, reason="Conflict of interest", origin=origin)
    invited_case.refresh_from_db()
    assert invited_case.status == CaseStatus.INVITED
    other = mediator_factory("other.mediator@example.kz")
    with pytest.raises(PermissionDenied):
        mediators.mediator_choose_another(case=invited_case, claimant=party_b, mediator=other, origin=origin)
    with pytest.raises(ProcedureError):  # the one who declined cannot be proposed again
        mediators.mediator_choose_another(case=invited_case, claimant=party_a, mediator=mediator, origin=origin)
    proposed = mediators.mediator_choose_another(case=invited_case, claimant=party_a, mediator=other, origin=origin)
    assert proposed.status == ParticipantStatus.PROPOSED and proposed.user == other


def test_when_a_party_withdraws_then_case_is_withdrawn(active_case, party_b, origin):
    procedure.case_withdraw(case=active_case, user=party_b, reason="Changed my mind", origin=origin)
    active_case.refresh_from_db()
    assert active_case.status == CaseStatus.WITHDRAWN and active_case.closed_at
    with pytest.raises(PermissionDenied):
        procedure.case_withdraw(case=active_case, user=party_b, reason="", origin=origin)


def test_when_mediator_closes_active_case_then_it_is_settled_or_not(active_case, party_a, mediator, origin):
    with pytest.raises(PermissionDenied):
        procedure.case_close(case=active_case, user=party_a, outcome=CaseStatus.SETTLED, origin=origin)
    with pytest.raises(ProcedureError):
        procedure.case_close(case=active_case, user=mediator, outcome=CaseStatus.WITHDRAWN, origin=origin)
    procedure.case_close(case=active_case, user=mediator, outcome=CaseStatus.NOT_SETTLED, origin=origin)
    active_case.refresh_from_db()
    assert active_case.status == CaseStatus.NOT_SETTLED
    with pytest.raises(PermissionDenied):  # closed is final
        procedure.case_close(case=active_case, user=mediator, outcome=CaseStatus.SETTLED, origin=origin)


def test_when_mediator_has_not_set_up_2fa_then_they_cannot_accept_a_case(party_a, party_b, mediator_factory, application_factory, origin):
    mediator = mediator_factory("no2fa@example.kz", mfa=False)
    case = intake.case_file(claimant=party_a, application=application_factory(party_b, mediator=mediator), origin=origin)
    with pytest.raises(PermissionDenied):
        mediators.mediator_answer(case=case, user=mediator, accept=True, reason="", origin=origin)


def test_when_a_declined_mediator_is_the_only_role_then_case_is_hidden_from_them(invited_case, mediator, client, origin):
    mediators.mediator_answer(case=invited_case, user=mediator, accept=False, reason="", origin=origin)
    client.force_login(mediator)
    assert client.get(f"/cases/{invited_case.public_id}/").status_code == 404
    assert invited_case.participants.get(user=mediator).role == Role.MEDIATOR
