"""Privacy between parties: a participant's email and phone reach the other
participants only if that participant shares them (audited, revocable); the
mediator always sees them; nothing else carries them to the other side —
not the room page, not the socket, not the emails of the procedure."""

import json
import uuid

import pytest
from django.test import Client
from django.urls import reverse

from odr import policy
from odr.models import AuditAction, AuditEvent
from sessions.models import Participant, Role
from sessions.services import confidentiality, invitations, procedure, rooms
from sessions.services.errors import ProcedureError
from tests.case_fixtures import accept_undertaking
from tests.sessions.room_fixtures import db, enter, fresh_channel_layer  # noqa: F401 (autouse fixture)

ROLES = ["claimant", "respondent", "representative", "observer", "mediator"]
PHONES = {
    "claimant": "+7 701 555 01 01",
    "respondent": "+7 702 555 02 02",
    "representative": "+7 703 555 03 03",
    "observer": "+7 704 555 04 04",
    "mediator": "+7 705 555 05 05",
}


@pytest.fixture
def people(active_case, party_a, party_b, mediator, user_factory, origin):
    """An active case with a representative (for the respondent) and an
    observer; everyone has a phone and has accepted the undertaking."""
    representative = user_factory("rep@example.kz", display_name="Rustem Representative")
    observer = user_factory("obs@example.kz", display_name="Olga Observer")
    invitation = invitations.invitation_create(
        case=active_case, actor=party_b, role=Role.REPRESENTATIVE, name="Rustem", email=representative.email,
        origin=origin,
    )
    invitations.invitation_accept(invitation=invitation, user=representative, origin=origin)
    invitation = invitations.invitation_create(
        case=active_case, actor=mediator, role=Role.OBSERVER, name="Olga", email=observer.email, origin=origin
    )
    invitations.invitation_accept(invitation=invitation, user=observer, origin=origin)
    for user in (representative, observer):
        accept_undertaking(active_case, user, origin)
    users = {
        "claimant": party_a, "respondent": party_b, "representative": representative,
        "observer": observer, "mediator": mediator,
    }
    for role, user in users.items():
        user.phone = PHONES[role]
        user.save(update_fields=["phone"])
    active_case.refresh_from_db()
    of = {role: Participant.objects.get(case=active_case, user=user) for role, user in users.items()}
    return {"case": active_case, "users": users, "of": of}


def client_of(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def case_page(people, role) -> str:
    response = client_of(people["users"][role]).get(reverse("mediation:case_detail", args=[people["case"].public_id]))
    assert response.status_code == 200
    return response.content.decode()


def share(people, role, shared=True):
    """`role` shares (or hides) their contacts, through the service."""
    return confidentiality.contacts_sharing_set(
        participant=people["of"][role], user=people["users"][role], share=shared
    )


def contacts_url(case) -> str:
    return reverse("mediation:contacts_sharing", args=[case.public_id])


def shows(html: str, people, role) -> tuple[bool, bool]:
    """Whether `html` carries `role`'s email, and their phone."""
    return people["users"][role].email in html, PHONES[role] in html


def sharing_rows(case) -> list[dict]:
    return list(
        AuditEvent.objects.filter(action=AuditAction.CONTACTS_SHARING_CHANGED, object_id=str(case.public_id))
        .order_by("id")
        .values_list("actor_id", "details", named=True)
    )


# --- The case page as a table ---------------------------------------------------------------------------------

# Who sees the claimant's email and phone on the case page.
SEES_CLAIMANT = {
    False: {"claimant", "mediator"},
    True: {"claimant", "mediator", "respondent", "representative", "observer"},
}


@pytest.mark.parametrize("shared", [False, True])
@pytest.mark.parametrize("viewer", ROLES)
def test_case_page_shows_the_claimants_contacts_as_the_table_says(people, viewer, shared):
    if shared:
        share(people, "claimant")

    html = case_page(people, viewer)

    expected = viewer in SEES_CLAIMANT[shared]
    assert shows(html, people, "claimant") == (expected, expected)
    claimant = Participant.objects.get(pk=people["of"]["claimant"].pk)
    assert policy.can(people["users"][viewer], "case.view_contacts", claimant) is expected


@pytest.mark.parametrize("subject", ["claimant", "respondent", "representative", "observer"])
def test_when_nobody_shares_then_only_the_mediator_and_the_person_see_their_contacts(people, subject):
    for viewer in ROLES:
        expected = viewer in {subject, "mediator"}
        assert shows(case_page(people, viewer), people, subject) == (expected, expected), viewer


def test_when_a_party_shares_then_hides_again_then_the_other_side_sees_then_does_not_and_both_are_audited(people):
    case, claimant = people["case"], client_of(people["users"]["claimant"])

    shared = claimant.post(contacts_url(case), {"share": "1"})

    assert shared.status_code == 302 and shared.url == reverse("mediation:case_detail", args=[case.public_id])
    assert shows(case_page(people, "respondent"), people, "claimant") == (True, True)
    assert 'name="share" value="0"' in case_page(people, "claimant")  # the claimant's own button now hides

    claimant.post(contacts_url(case), {"share": "0"})

    assert shows(case_page(people, "respondent"), people, "claimant") == (False, False)
    assert shows(case_page(people, "mediator"), people, "claimant") == (True, True)
    rows = sharing_rows(case)
    assert [(r.actor_id, r.details["shared"], r.details["participant"]) for r in rows] == [
        (people["users"]["claimant"].pk, True, str(people["of"]["claimant"].public_id)),
        (people["users"]["claimant"].pk, False, str(people["of"]["claimant"].public_id)),
    ]


def test_when_the_same_choice_is_sent_again_then_nothing_more_is_audited(people):
    client = client_of(people["users"]["respondent"])
    client.post(contacts_url(people["case"]), {"share": "0"})  # already hidden
    client.post(contacts_url(people["case"]), {"share": "1"})
    client.post(contacts_url(people["case"]), {"share": "1"})
    assert [r.details["shared"] for r in sharing_rows(people["case"])] == [True]


def test_when_sharing_is_asked_with_get_then_nothing_changes(people):
    response = client_of(people["users"]["claimant"]).get(contacts_url(people["case"]), {"share": "1"})
    assert response.status_code == 405
    people["of"]["claimant"].refresh_from_db()
    assert people["of"]["claimant"].shares_contacts is False


def test_when_one_party_shares_then_the_other_partys_contacts_stay_hidden(people):
    share(people, "claimant")
    html = case_page(people, "claimant")
    assert shows(html, people, "respondent") == (False, False)
    assert shows(html, people, "representative") == (False, False)


# --- Only you decide ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("actor", ["respondent", "representative", "mediator"])
def test_when_someone_else_tries_to_share_a_partys_contacts_then_it_is_refused(people, actor):
    with pytest.raises(ProcedureError):
        confidentiality.contacts_sharing_set(
            participant=people["of"]["claimant"], user=people["users"][actor], share=True
        )
    people["of"]["claimant"].refresh_from_db()
    assert people["of"]["claimant"].shares_contacts is False
    assert sharing_rows(people["case"]) == []


def test_when_the_form_names_another_participant_then_only_the_senders_own_choice_changes(people):
    client = client_of(people["users"]["respondent"])

    client.post(
        contacts_url(people["case"]),
        {"share": "1", "participant": str(people["of"]["claimant"].public_id),
         "participant_id": str(people["of"]["claimant"].public_id)},
    )

    for participant in people["of"].values():
        participant.refresh_from_db()
    assert people["of"]["claimant"].shares_contacts is False
    assert people["of"]["respondent"].shares_contacts is True
    assert shows(case_page(people, "observer"), people, "claimant") == (False, False)


def test_when_a_stranger_posts_to_a_cases_contacts_then_not_found_like_a_random_case(people, user_factory):
    stranger = client_of(user_factory("stranger@example.kz"))
    assert stranger.post(contacts_url(people["case"]), {"share": "1"}).status_code == 404
    assert stranger.post(reverse("mediation:contacts_sharing", args=[uuid.uuid4()]), {"share": "1"}).status_code == 404
    anonymous = Client().post(contacts_url(people["case"]), {"share": "1"})
    assert anonymous.status_code == 302 and "/accounts/login/" in anonymous.url
    assert sharing_rows(people["case"]) == []


# --- Other ways contact details could cross over -------------------------------------------------------------------


@pytest.fixture
def sitting(people):
    """A session with everyone admitted to the joint room."""
    joint = rooms.room_joint(people["case"])
    rooms.session_start(room=joint, user=people["users"]["mediator"])
    for role in ("claimant", "respondent", "representative", "observer"):
        rooms.lobby_admit(room=joint, user=people["users"]["mediator"], participant_id=people["of"][role].public_id)
    rooms.message_post(room=joint, user=people["users"]["claimant"], client_id=uuid.uuid4(), body="Good morning.")
    joint.refresh_from_db()
    return joint


@pytest.mark.parametrize("viewer", ["respondent", "representative", "observer", "mediator"])
def test_when_the_room_page_is_shown_then_its_config_and_html_carry_no_other_persons_contacts(people, sitting, viewer):
    response = client_of(people["users"][viewer]).get(reverse("mediation:room", args=[sitting.public_id]))

    assert response.status_code == 200
    config = response.context["client"]
    assert {m["id"] for m in config["members"]} == {str(p.public_id) for p in people["of"].values()}
    assert all(set(member) == {"id", "display_name", "role"} for member in config["members"])
    html = response.content.decode()
    assert json.dumps(config["members"][0]["display_name"])[1:-1] in html  # positive control: members are there
    for other in ROLES:
        if other != viewer:
            assert shows(html, people, other) == (False, False), other


@pytest.mark.parametrize(
    "page",
    ["mediation:dashboard", "mediation:agreement_to_mediate", "mediation:undertaking", "agreements:draft"],
)
@pytest.mark.parametrize("viewer", ["respondent", "representative"])
def test_when_the_other_side_opens_other_pages_of_the_case_then_the_claimants_contacts_are_not_there(
    people, viewer, page
):
    from agreements.services.drafts import draft_save

    draft_save(case=people["case"], user=people["users"]["mediator"], terms="Both parties agree.")
    url = reverse(page) if page == "mediation:dashboard" else reverse(page, args=[people["case"].public_id])

    response = client_of(people["users"][viewer]).get(url)

    assert response.status_code == 200
    html = response.content.decode()
    assert people["case"].reference in html  # positive control: the case is on the page
    assert shows(html, people, "claimant") == (False, False)


@pytest.mark.django_db(transaction=True)
async def test_when_frames_reach_the_other_side_then_none_carries_an_email_or_phone(people, sitting):
    users = people["users"]
    async with enter(users["respondent"], sitting) as respondent, enter(users["observer"], sitting) as observer:
        for socket in (respondent, observer):
            await socket.settle(sitting)
        await db(rooms.message_post)(
            room=sitting, user=users["claimant"], client_id=uuid.uuid4(), body="Shall we begin?"
        )
        for socket in (respondent, observer):
            frame = await socket.expect("message", body="Shall we begin?")
            assert frame["author"]["id"] == str(people["of"]["claimant"].public_id)
            await socket.listen()  # and whatever ambient frames follow
    for socket in (respondent, observer):
        everything = json.dumps(socket.received, ensure_ascii=False)
        assert "Good morning." in everything  # positive control: the backlog is in there
        for role in ("claimant", "mediator", "respondent", "representative"):
            if role != socket.welcome["you"]["role"]:
                assert users[role].email not in everything and PHONES[role] not in everything, role


def test_when_the_procedure_emails_the_other_side_then_the_claimants_contacts_are_not_in_them(
    people, run_jobs, outbox, origin
):
    users = people["users"]
    procedure.case_close(case=people["case"], user=users["mediator"], outcome="settled", origin=origin)

    run_jobs()

    to_others = [m for m in outbox if users["claimant"].email not in m.to]
    assert to_others, [m.to for m in outbox]  # positive control: the other side was written to
    for message in to_others:
        text = json.dumps(
            [message.subject, message.body, message.to, message.cc, message.bcc, message.reply_to,
             dict(message.extra_headers)],
            ensure_ascii=False,
        )
        assert users["claimant"].email not in text and PHONES["claimant"] not in text, message.to
