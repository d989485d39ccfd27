"""The policy module as a table: roles × actions × objects → allow or deny."""

import pytest
from django.contrib.auth.models import AnonymousUser

from odr import policy
from odr.audit import SYSTEM
from sessions.models import Role
from sessions.services import invitations, mediators, rooms
from tests.case_fixtures import accept_all_invitations, accept_atm, accept_undertaking

ROLES = [
    "claimant", "respondent", "representative", "mediator", "other_mediator",
    "observer", "court_user", "admin", "stranger", "anonymous",
]


@pytest.fixture
def cast(party_a, party_b, mediator, mediator_factory, court_user, admin_user, user_factory):
    return {
        "claimant": party_a,
        "respondent": party_b,
        "representative": user_factory("representative@example.kz"),
        "mediator": mediator,
        "other_mediator": mediator_factory("other.mediator@example.kz"),
        "observer": user_factory("observer@example.kz"),
        "court_user": court_user,
        "admin": admin_user,
        "stranger": user_factory("stranger@example.kz"),
        "anonymous": AnonymousUser(),
    }


@pytest.fixture
def full_case(active_case, cast, origin):
    """An active case with a representative (for the respondent) and an observer."""
    rep = invitations.invitation_create(case=active_case, actor=cast["respondent"], role=Role.REPRESENTATIVE,
                                        name="Rep", email=cast["representative"].email, origin=origin)
    invitations.invitation_accept(invitation=rep, user=cast["representative"], origin=origin)
    obs = invitations.invitation_create(case=active_case, actor=cast["mediator"], role=Role.OBSERVER,
                                        name="Obs", email=cast["observer"].email, origin=origin)
    invitations.invitation_accept(invitation=obs, user=cast["observer"], origin=origin)
    for role in ("representative", "observer"):
        accept_undertaking(active_case, cast[role], origin)
    active_case.refresh_from_db()
    return active_case


PARTICIPANTS = {"claimant", "respondent", "representative", "mediator", "observer"}
ACTIVE_CASE_TABLE = {
    "case.view": PARTICIPANTS,
    "case.withdraw": {"claimant", "respondent"},
    "case.close": {"mediator"},
    "case.propose_term_extension": {"claimant", "respondent", "mediator"},
    "case.invite_representative": {"claimant", "respondent"},
    "case.invite_observer": {"mediator"},
    "case.edit_draft": set(),
    "case.answer_as_mediator": set(),
    "case.choose_mediator": set(),
    "case.accept_agreement_to_mediate": set(),  # already accepted by all
    "case.answer_term_extension": set(),  # nothing pending
}


@pytest.mark.parametrize("action", sorted(ACTIVE_CASE_TABLE))
def test_active_case_policy_table(full_case, cast, action):
    allowed = {role for role in ROLES if policy.can(cast[role], action, full_case)}
    assert allowed == ACTIVE_CASE_TABLE[action]


@pytest.mark.parametrize("role", ROLES)
def test_case_page_answers_as_the_table_says(full_case, cast, client, role):
    if role != "anonymous":
        client.force_login(cast[role])
    response = client.get(f"/cases/{full_case.public_id}/")
    if role in PARTICIPANTS:
        assert response.status_code == 200
    elif role == "anonymous":
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    else:
        assert response.status_code == 404  # same as a case that does not exist


def test_when_a_case_id_is_guessed_then_the_answer_is_the_same_as_not_found(full_case, cast, client):
    import uuid

    import re

    def page_without_own_url_and_csrf(response, case_id):
        body = response.content.decode().replace(str(case_id), "ID")
        return re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", body)

    client.force_login(cast["stranger"])
    fake_id = uuid.uuid4()
    real = client.get(f"/cases/{full_case.public_id}/")
    fake = client.get(f"/cases/{fake_id}/")
    assert real.status_code == fake.status_code == 404
    assert page_without_own_url_and_csrf(real, full_case.public_id) == page_without_own_url_and_csrf(fake, fake_id)


@pytest.mark.parametrize(
    ("action", "expected"),
    [
        ("mediator.work", {"mediator", "other_mediator"}),
        ("court.work", {"court_user"}),
        ("admin.work", {"admin"}),
        ("case.file", set(ROLES) - {"anonymous"}),
    ],
)
def test_global_roles_policy_table(cast, action, expected):
    assert {role for role in ROLES if policy.can(cast[role], action)} == expected


def test_contacts_are_shown_to_the_mediator_and_the_person_only(full_case, cast):
    respondent = full_case.participants.get(user=cast["respondent"])
    allowed = {role for role in ROLES if policy.can(cast[role], "case.view_contacts", respondent)}
    assert allowed == {"mediator", "respondent"}


def test_invited_case_policy_table(invited_case, cast, origin):
    table = {
        "case.view": {"claimant", "mediator"},  # the respondent has not accepted yet
        "case.answer_as_mediator": {"mediator"},
        "case.withdraw": {"claimant"},
        "case.choose_mediator": set(),
        "case.accept_agreement_to_mediate": set(),
    }
    for action, expected in table.items():
        assert {r for r in ROLES if policy.can(cast[r], action, invited_case)} == expected, action
    mediators.mediator_answer(case=invited_case, user=cast["mediator"], accept=False, reason="", origin=origin)
    assert {r for r in ROLES if policy.can(cast[r], "case.choose_mediator", invited_case)} == {"claimant"}
    assert not policy.can(cast["mediator"], "case.view", invited_case)


def test_accepted_case_policy_table(invited_case, cast, origin):
    accept_all_invitations(invited_case, cast["respondent"], origin=origin)
    mediators.mediator_answer(case=invited_case, user=cast["mediator"], accept=True, reason="", origin=origin)
    invited_case.refresh_from_db()
    signers = {"claimant", "respondent", "mediator"}
    assert {r for r in ROLES if policy.can(cast[r], "case.accept_agreement_to_mediate", invited_case)} == signers
    accept_atm(invited_case, cast["claimant"], origin)
    assert {r for r in ROLES if policy.can(cast[r], "case.accept_agreement_to_mediate", invited_case)} == signers - {"claimant"}


def test_every_registered_action_is_covered_by_a_table():
    from tests.agreements.test_agreement_access import AGREEMENT_ACTIONS, FILING_ACTIONS
    from tests.sessions.test_access_matrix import CONFIDENTIALITY_ACTIONS

    confidentiality = {
        "case.legal_hold", "case.break_glass", "room.see_closed", "room.consent", "room.withdraw_consent",
        "room.export",
        "agreement.view_draft", "agreement.edit_draft",
    }
    # Tabled (policy.can per role) in tests/sessions/test_access_matrix.py.
    assert confidentiality <= CONFIDENTIALITY_ACTIONS
    # Tabled per state of the agreement in tests/agreements/test_agreement_access.py.
    covered = set(ACTIVE_CASE_TABLE) | set(ROOM_TABLES["joint"]) | CONFIDENTIALITY_ACTIONS | AGREEMENT_ACTIONS | FILING_ACTIONS | {
        "mediator.work", "court.work", "admin.work", "case.file", "case.view_contacts", "invitation.answer",
        "case.share_contacts",
    }
    assert set(policy.registered_actions()) == covered


@pytest.mark.parametrize("owner", sorted(PARTICIPANTS))
def test_only_the_participant_decides_whether_their_contacts_are_shared(full_case, cast, owner):
    participant = full_case.participants.get(user=cast[owner])
    assert {r for r in ROLES if policy.can(cast[r], "case.share_contacts", participant)} == {owner}


def test_an_action_without_a_rule_is_denied(cast):
    assert not policy.can(cast["admin"], "no.such.action")


SPEAKERS = {"claimant", "respondent", "representative", "mediator"}
ROOM_TABLES = {
    # The joint room: everyone in the case; observers do not speak; content
    # outside the socket only for the mediator and those admitted (the claimant).
    "joint": {
        "room.view": PARTICIPANTS,
        "room.enter": PARTICIPANTS,
        "room.post": SPEAKERS,
        "room.moderate": {"mediator"},
        "room.read": {"mediator", "claimant"},
    },
    # The claimant's caucus: the claimant and the mediator only.
    "claimant_caucus": {
        "room.view": {"claimant", "mediator"},
        "room.enter": {"claimant", "mediator"},
        "room.post": {"claimant", "mediator"},
        "room.moderate": {"mediator"},
        "room.read": {"claimant", "mediator"},
    },
    # The respondent's caucus includes the respondent's representative.
    "respondent_caucus": {
        "room.view": {"respondent", "representative", "mediator"},
        "room.enter": {"respondent", "representative", "mediator"},
        "room.post": {"respondent", "representative", "mediator"},
        "room.moderate": {"mediator"},
        "room.read": {"respondent", "representative", "mediator"},
    },
}


@pytest.fixture
def case_rooms(full_case, cast):
    joint = rooms.room_joint(full_case)
    rooms.session_start(room=joint, user=cast["mediator"])
    participant = {p.user_id: p for p in full_case.participants.all()}
    rooms.lobby_admit(room=joint, user=cast["mediator"], participant_id=participant[cast["claimant"].pk].public_id)
    return {
        "joint": joint,
        "claimant_caucus": rooms.caucus_open(
            room=joint, user=cast["mediator"], party_id=participant[cast["claimant"].pk].public_id
        ),
        "respondent_caucus": rooms.caucus_open(
            room=joint, user=cast["mediator"], party_id=participant[cast["respondent"].pk].public_id
        ),
    }


@pytest.mark.parametrize("room_name", sorted(ROOM_TABLES))
def test_room_policy_table(case_rooms, cast, room_name):
    room = case_rooms[room_name]
    for action, expected in ROOM_TABLES[room_name].items():
        assert {r for r in ROLES if policy.can(cast[r], action, room)} == expected, action


def test_when_case_closes_then_nobody_may_view_its_rooms(case_rooms, cast, full_case):
    from sessions.models import CaseStatus
    from sessions.services import procedure

    procedure.case_close(case=full_case, user=cast["mediator"], outcome=CaseStatus.NOT_SETTLED, origin=SYSTEM)
    for room in case_rooms.values():
        room.refresh_from_db()
        for action in ROOM_TABLES["joint"]:
            assert {r for r in ROLES if policy.can(cast[r], action, room)} == set(), (action, room.kind)
