import pytest

from odr.models import AuditEvent, Language, Specialisation
from sessions.models import Case, CaseStatus, Invitation, MediatorSelection, Participant, ParticipantStatus, Role
from sessions.services import intake
from sessions.services.errors import ProcedureError


def test_when_application_is_filed_then_parties_and_mediator_are_invited(invited_case, party_a, party_b, mediator):
    assert invited_case.status == CaseStatus.INVITED
    assert invited_case.reference.startswith("ODR-")
    assert invited_case.participants.get(role=Role.CLAIMANT).user == party_a
    invitation = invited_case.invitations.get()
    assert (invitation.email, invitation.role, invitation.status) == (party_b.email, Role.RESPONDENT, "pending")
    assert invitation.expires_at is not None
    proposed = invited_case.participants.get(role=Role.MEDIATOR)
    assert proposed.user == mediator and proposed.status == ParticipantStatus.PROPOSED


def test_when_a_case_has_several_other_parties_then_each_is_invited(party_a, user_factory, mediator, application_factory, origin):
    others = [user_factory(f"worker{i}@example.kz") for i in range(3)]
    case = intake.case_file(
        claimant=party_a, application=application_factory(*others, mediator=mediator, category=Specialisation.LABOUR), origin=origin
    )
    assert sorted(case.invitations.values_list("email", flat=True)) == sorted(o.email for o in others)


def test_when_mediator_is_left_to_the_platform_then_a_matching_least_loaded_one_is_assigned(
    party_a, party_b, mediator_factory, application_factory, origin
):
    mediator_factory("english.only@example.kz", languages=["en"], specialisations=[Specialisation.CIVIL])
    kazakh_family = mediator_factory("kk.family@example.kz", languages=["kk"], specialisations=[Specialisation.FAMILY])
    mediator_factory("inactive@example.kz", languages=["kk"], specialisations=[Specialisation.FAMILY], active=False)
    case = intake.case_file(
        claimant=party_a,
        application=application_factory(party_b, language=Language.KAZAKH, category=Specialisation.FAMILY),
        origin=origin,
    )
    assert case.mediator_selection == MediatorSelection.ASSIGNED
    assert case.participants.get(role=Role.MEDIATOR).user == kazakh_family


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"other_parties": []}, "no_other_party"),
        ({"other_parties": "self"}, "self_invite"),
        ({"other_parties": "duplicate"}, "duplicate_party"),
        ({"court_case_number": "2-1/2026"}, "number_without_court"),
        ({"mediator": "party"}, "mediator_is_party"),
        ({"mediator": "inactive"}, "mediator_unavailable"),
        ({"mediator": "not_a_mediator"}, "mediator_unavailable"),
    ],
)
def test_when_application_is_wrong_then_it_is_refused_and_nothing_is_written(
    party_a, party_b, mediator_factory, user_factory, application_factory, origin, change, code
):
    application = application_factory(party_b, mediator=mediator_factory())
    other = intake.OtherParty(name=party_b.display_name, email=party_b.email)
    values = dict(change)
    if values.get("other_parties") == "self":
        values["other_parties"] = [intake.OtherParty(name="Me", email=party_a.email.upper())]
    elif values.get("other_parties") == "duplicate":
        values["other_parties"] = [other, intake.OtherParty(name="Again", email=party_b.email)]
    if values.get("mediator") == "party":
        values["mediator"] = mediator_factory(party_b.email.replace("@", "+m@"))
        values["other_parties"] = [intake.OtherParty(name="M", email=values["mediator"].email)]
    elif values.get("mediator") == "inactive":
        values["mediator"] = mediator_factory(active=False)
    elif values.get("mediator") == "not_a_mediator":
        values["mediator"] = user_factory()
    application = intake.Application(**{**application.__dict__, **values})
    audit_rows = AuditEvent.objects.count()
    with pytest.raises(ProcedureError) as err:
        intake.case_file(claimant=party_a, application=application, origin=origin)
    assert err.value.code == code
    assert Case.objects.count() == 0 and Invitation.objects.count() == 0
    assert AuditEvent.objects.count() == audit_rows


def test_when_no_mediator_is_available_then_filing_rolls_back_completely(party_a, party_b, application_factory, origin):
    with pytest.raises(ProcedureError) as err:
        intake.case_file(claimant=party_a, application=application_factory(party_b), origin=origin)
    assert err.value.code == "no_mediator"
    assert not Case.objects.exists() and not Participant.objects.exists() and not Invitation.objects.exists()
    from django_tasks_db.models import DBTaskResult

    assert not DBTaskResult.objects.exists()  # no email, no lapse job queued


def test_when_draft_is_edited_then_the_invitations_follow_the_edit(party_a, party_b, user_factory, mediator, application_factory, origin):
    case = intake.case_draft_save(claimant=party_a, application=application_factory(party_b, mediator=mediator), origin=origin)
    replacement = user_factory("someone.else@example.kz")
    intake.case_draft_save(claimant=party_a, application=application_factory(replacement, mediator=mediator), origin=origin, case=case)
    assert list(case.invitations.values_list("email", flat=True)) == [replacement.email]
