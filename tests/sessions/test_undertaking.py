"""The confidentiality undertaking: nobody — the mediator included — enters a
case's rooms (page, socket, documents) before accepting it for that case;
acceptance records who, when, from where, which version, language and text."""

import datetime
import re
import uuid

import pytest
from django.contrib import messages as django_messages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from odr.models import AuditAction, AuditEvent, Language
from sessions.models import ConfidentialityUndertaking, Participant, Role
from sessions.services import confidentiality, documents, intake, invitations, mediators, rooms
from sessions.services.errors import ProcedureError
from sessions.services.rooms import RoomRefused
from tests.case_fixtures import accept_all_invitations, accept_atm, accept_undertaking
from tests.sessions.room_fixtures import connect, db, enter, fresh_channel_layer  # noqa: F401 (autouse fixture)

ROLES = ["claimant", "respondent", "representative", "observer", "mediator"]
BROWSER = {"REMOTE_ADDR": "198.51.100.40", "HTTP_USER_AGENT": "Mozilla/5.0 (undertaking test)"}


# --- A case whose people have not accepted the undertaking yet ---------------------------------------


@pytest.fixture
def people(accepted_case, party_a, party_b, mediator, user_factory, origin):
    """An active case (agreement to mediate accepted by all) with a
    representative and an observer; nobody has accepted the undertaking."""
    for user in (party_a, party_b, mediator):
        accept_atm(accepted_case, user, origin)
    case = accepted_case
    case.refresh_from_db()
    representative = user_factory("rep@example.kz", display_name="Rustem Representative")
    observer = user_factory("obs@example.kz", display_name="Olga Observer")
    invitation = invitations.invitation_create(
        case=case, actor=party_b, role=Role.REPRESENTATIVE, name="Rustem", email=representative.email, origin=origin
    )
    invitations.invitation_accept(invitation=invitation, user=representative, origin=origin)
    invitation = invitations.invitation_create(
        case=case, actor=mediator, role=Role.OBSERVER, name="Olga", email=observer.email, origin=origin
    )
    invitations.invitation_accept(invitation=invitation, user=observer, origin=origin)
    case.refresh_from_db()
    assert case.status == "active" and not ConfidentialityUndertaking.objects.filter(case=case).exists()
    users = {
        "claimant": party_a, "respondent": party_b, "representative": representative,
        "observer": observer, "mediator": mediator,
    }
    return {"case": case, "users": users, "joint": rooms.room_joint(case)}


def client_of(user, **extra) -> Client:
    client = Client(**extra)
    client.force_login(user)
    return client


def undertaking_url(case) -> str:
    return reverse("mediation:undertaking", args=[case.public_id])


def room_url(room) -> str:
    return reverse("mediation:room", args=[room.public_id])


def accept_through_the_page(client, case, *, next_url=None, **extra):
    """Open the undertaking page, tick the box and send the fingerprint shown."""
    page = client.get(undertaking_url(case) + (f"?next={next_url}" if next_url else ""), **extra)
    assert page.status_code == 200
    data = {"consent": "1", "text_sha256": page.context["text_sha256"], "next": page.context["next"]}
    return client.post(undertaking_url(case), data, **extra)


def undertakings_of(user, case) -> list[ConfidentialityUndertaking]:
    return list(ConfidentialityUndertaking.objects.filter(case=case, user=user))


def accepted_audit_rows(case) -> list[AuditEvent]:
    return list(
        AuditEvent.objects.filter(action=AuditAction.UNDERTAKING_ACCEPTED, object_id=str(case.public_id)).order_by("id")
    )


def next_fields(page) -> list[str]:
    """The values of the undertaking form's hidden `next` field."""
    return re.findall(
        r'name="text_sha256" value="[0-9a-f]{64}">\s*<input type="hidden" name="next" value="([^"]*)"',
        page.content.decode(),
    )


def errors(response) -> list[str]:
    return [m.message for m in django_messages.get_messages(response.wsgi_request) if m.level == django_messages.ERROR]


# --- Nobody enters first ---------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_when_someone_has_not_accepted_the_undertaking_then_the_room_page_sends_them_to_it(people, role):
    joint = people["joint"]

    response = client_of(people["users"][role]).get(room_url(joint))

    assert response.status_code == 302
    assert response.url == f"{undertaking_url(people['case'])}?next={room_url(joint).replace('/', '%2F')}"


@pytest.mark.parametrize("role", ROLES)
def test_when_someone_accepts_then_the_room_page_opens_for_them(people, role):
    user = people["users"][role]
    accept_undertaking(people["case"], user)

    response = client_of(user).get(room_url(people["joint"]))

    assert response.status_code == 200
    assert response.context["me"].user == user


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("role", ["mediator", "claimant"])
async def test_when_someone_has_not_accepted_then_their_socket_is_closed_4403_and_after_accepting_it_opens(
    people, role
):
    user, joint = people["users"][role], people["joint"]

    async with connect(user, joint) as socket:
        assert await socket.closed() == rooms.CLOSE_FORBIDDEN
        assert not [frame for frame in socket.received if frame["type"] == "welcome"]

    await db(accept_undertaking)(people["case"], user)
    async with enter(user, joint, resume=False) as socket:
        assert socket.welcome["you"]["role"] == role


def test_when_the_mediator_has_not_accepted_then_they_cannot_start_or_moderate_a_session(people):
    with pytest.raises(RoomRefused):
        rooms.session_start(room=people["joint"], user=people["users"]["mediator"])
    assert not people["case"].sittings.exists()


@pytest.fixture
def shared_document(people, origin):
    """The claimant and the mediator accepted; the respondent did not, yet
    was admitted to the session (admission does not check the undertaking)."""
    case, users, joint = people["case"], people["users"], people["joint"]
    for role in ("claimant", "mediator"):
        accept_undertaking(case, users[role], origin)
    rooms.session_start(room=joint, user=users["mediator"])
    for role in ("claimant", "respondent"):
        participant = Participant.objects.get(case=case, user=users[role])
        rooms.lobby_admit(room=joint, user=users["mediator"], participant_id=participant.public_id)
    upload = SimpleUploadedFile("statement.txt", b"The claimant's private statement.\n")
    return documents.document_share(room=joint, user=users["claimant"], upload=upload, origin=origin)


def test_when_an_admitted_party_has_not_accepted_then_documents_neither_download_nor_upload(people, shared_document):
    joint = people["joint"]
    download = reverse("mediation:room_document", args=[joint.public_id, shared_document.public_id])
    upload = reverse("mediation:room_documents", args=[joint.public_id])
    claimant, respondent = client_of(people["users"]["claimant"]), client_of(people["users"]["respondent"])
    assert claimant.get(download).status_code == 200  # positive control

    refused_download = respondent.get(download)
    refused_upload = respondent.post(upload, {"file": SimpleUploadedFile("mine.txt", b"my own words\n")})

    assert refused_download.status_code == 404
    assert b"private statement" not in refused_download.content
    assert refused_upload.status_code == 403 and refused_upload.json()["error"]["code"] == "forbidden"
    assert joint.documents.count() == 1
    with pytest.raises(rooms.RoomGone):
        rooms.message_post(room=joint, user=people["users"]["respondent"], client_id=uuid.uuid4(), body="hello")


def test_when_a_new_version_of_the_text_is_published_then_everyone_the_mediator_included_accepts_again(
    people, shared_document, monkeypatch
):
    joint = people["joint"]
    download = reverse("mediation:room_document", args=[joint.public_id, shared_document.public_id])
    mediator = client_of(people["users"]["mediator"])
    assert mediator.get(download).status_code == 200
    first_version = confidentiality.UNDERTAKING_VERSION

    monkeypatch.setattr(confidentiality, "UNDERTAKING_VERSION", "2099.1")

    assert mediator.get(download).status_code == 404
    assert mediator.get(room_url(joint)).url.startswith(undertaking_url(people["case"]))
    assert accept_through_the_page(mediator, people["case"]).status_code == 302
    versions = [u.text_version for u in undertakings_of(people["users"]["mediator"], people["case"])]
    assert versions == [first_version, "2099.1"]
    assert mediator.get(download).status_code == 200


# --- Accepting ------------------------------------------------------------------------------------------------


def test_when_a_party_accepts_on_the_page_then_who_when_where_version_language_and_text_are_recorded(people):
    case, user = people["case"], people["users"]["respondent"]  # a Kazakh speaker
    client = client_of(user)
    before = timezone.now()

    response = accept_through_the_page(client, case, next_url=room_url(people["joint"]), **BROWSER)

    assert response.status_code == 302 and response.url == room_url(people["joint"])
    [undertaking] = undertakings_of(user, case)
    assert undertaking.participant == Participant.objects.get(case=case, user=user)
    assert undertaking.text_version == confidentiality.UNDERTAKING_VERSION
    assert undertaking.text_language == Language.KAZAKH == user.preferred_language
    text = confidentiality.undertaking_render(case=case, language=Language.KAZAKH)
    assert undertaking.text_sha256 == confidentiality.undertaking_digest(text)
    assert undertaking.ip == BROWSER["REMOTE_ADDR"] and undertaking.user_agent == BROWSER["HTTP_USER_AGENT"]
    assert before <= undertaking.accepted_at <= timezone.now()
    [row] = accepted_audit_rows(case)
    assert row.actor_id == user.pk and row.ip == BROWSER["REMOTE_ADDR"]
    assert row.details == {"version": undertaking.text_version, "language": "kk", "sha256": undertaking.text_sha256}
    page = client.get(undertaking_url(case))
    assert page.context["accepted"] == undertaking
    assert client.get(room_url(people["joint"])).status_code == 200


def test_when_the_page_is_shown_then_the_fingerprint_is_that_of_the_text_shown(people):
    page = client_of(people["users"]["claimant"]).get(undertaking_url(people["case"]))
    text = page.context["text"]
    assert page.context["text_sha256"] == confidentiality.undertaking_digest(text)
    assert people["case"].reference in text and confidentiality.UNDERTAKING_VERSION in text
    html = page.content.decode()
    assert f'name="text_sha256" value="{page.context["text_sha256"]}"' in html


def test_when_the_box_is_not_ticked_then_nothing_is_recorded(people):
    client = client_of(people["users"]["claimant"])
    page = client.get(undertaking_url(people["case"]))

    response = client.post(undertaking_url(people["case"]), {"text_sha256": page.context["text_sha256"]})

    assert response.status_code == 200
    assert errors(response)
    assert undertakings_of(people["users"]["claimant"], people["case"]) == []
    assert accepted_audit_rows(people["case"]) == []


def test_when_the_text_changed_since_it_was_shown_then_acceptance_is_refused_with_a_message(people, monkeypatch):
    """A new version of the text was deployed while the user was reading the old one."""
    user, case = people["users"]["claimant"], people["case"]
    client = client_of(user)
    shown = client.get(undertaking_url(case)).context["text_sha256"]
    monkeypatch.setattr(confidentiality, "UNDERTAKING_VERSION", "2099.1")

    response = client.post(undertaking_url(case), {"consent": "1", "text_sha256": shown})

    assert response.status_code == 200
    assert errors(response) == ["The text of the undertaking has changed since you opened it. Read it again."]
    assert "2099.1" in response.context["text"]  # the page now shows the text as it is
    assert response.context["text_sha256"] != shown
    assert undertakings_of(user, case) == []
    assert accepted_audit_rows(case) == []
    assert accept_through_the_page(client, case).status_code == 302  # read again, then accepted
    assert [u.text_version for u in undertakings_of(user, case)] == ["2099.1"]


@pytest.mark.parametrize("digest", ["", "0" * 64, "not-a-digest"])
def test_when_the_fingerprint_is_not_of_the_current_text_then_the_service_refuses(people, digest):
    with pytest.raises(ProcedureError):
        confidentiality.undertaking_accept(
            case=people["case"], user=people["users"]["claimant"], text_sha256=digest, language="ru"
        )
    assert undertakings_of(people["users"]["claimant"], people["case"]) == []


def test_when_someone_accepts_twice_then_one_acceptance_and_one_audit_row_remain(people):
    user, case = people["users"]["mediator"], people["case"]
    client = client_of(user)
    first = accept_through_the_page(client, case)
    page = client.get(undertaking_url(case))
    second = client.post(undertaking_url(case), {"consent": "1", "text_sha256": page.context["text_sha256"]})
    again = accept_undertaking(case, user)

    assert first.status_code == second.status_code == 302
    assert undertakings_of(user, case) == [again]
    assert len(accepted_audit_rows(case)) == 1


def test_when_a_stranger_opens_or_posts_the_undertaking_then_not_found_like_a_random_case(people, user_factory):
    stranger = client_of(user_factory("stranger@example.kz"))
    for url in (undertaking_url(people["case"]), reverse("mediation:undertaking", args=[uuid.uuid4()])):
        assert stranger.get(url).status_code == 404
        assert stranger.post(url, {"consent": "1", "text_sha256": "0" * 64}).status_code == 404
    assert not ConfidentialityUndertaking.objects.exists()


# --- Per case --------------------------------------------------------------------------------------------------


@pytest.fixture
def second_case(people, party_a, party_b, mediator, application_factory, origin):
    """The same three people in a second active case."""
    application = application_factory(party_b, mediator=mediator)
    case = intake.case_file(claimant=party_a, application=application, origin=origin)
    accept_all_invitations(case, party_b, origin=origin)
    mediators.mediator_answer(case=case, user=mediator, accept=True, reason="", origin=origin)
    for user in (party_a, party_b, mediator):
        accept_atm(case, user, origin)
    case.refresh_from_db()
    assert case.status == "active"
    return case


@pytest.mark.parametrize("role", ["claimant", "mediator"])
def test_when_the_undertaking_is_accepted_for_one_case_then_another_cases_rooms_stay_shut(people, second_case, role):
    user = people["users"][role]
    client = client_of(user)
    assert accept_through_the_page(client, people["case"]).status_code == 302
    assert client.get(room_url(people["joint"])).status_code == 200

    response = client.get(room_url(rooms.room_joint(second_case)))

    assert response.status_code == 302 and response.url.startswith(undertaking_url(second_case))
    assert undertakings_of(user, second_case) == []


def test_when_one_cases_fingerprint_is_sent_for_another_case_then_it_is_refused(people, second_case):
    client = client_of(people["users"]["claimant"])
    first = client.get(undertaking_url(people["case"])).context["text_sha256"]
    assert client.get(undertaking_url(second_case)).context["text_sha256"] != first

    response = client.post(undertaking_url(second_case), {"consent": "1", "text_sha256": first})

    assert response.status_code == 200 and errors(response)
    assert undertakings_of(people["users"]["claimant"], second_case) == []


# --- Where it sends you next ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/phish",
        "//evil.example/phish",
        "http://evil.example",
        "https:evil.example",
        "/\\evil.example",
        "javascript:alert(1)",
    ],
)
def test_when_next_points_to_another_host_then_acceptance_lands_on_the_case_page(people, target):
    client = client_of(people["users"]["claimant"])
    case_page = reverse("mediation:case_detail", args=[people["case"].public_id])

    page = client.get(undertaking_url(people["case"]), {"next": target})
    response = client.post(
        undertaking_url(people["case"]),
        {"consent": "1", "text_sha256": page.context["text_sha256"], "next": target},
    )

    assert page.context["next"] == case_page
    assert next_fields(page) == [case_page]
    assert response.status_code == 302 and response.url == case_page
    assert len(undertakings_of(people["users"]["claimant"], people["case"])) == 1


def test_when_the_undertaking_was_accepted_then_the_continue_link_is_never_off_site(people):
    client = client_of(people["users"]["claimant"])
    accept_undertaking(people["case"], people["users"]["claimant"])
    page = client.get(undertaking_url(people["case"]), {"next": "https://evil.example/"})
    case_page = reverse("mediation:case_detail", args=[people["case"].public_id])
    assert page.context["next"] == case_page
    assert re.findall(r'<a class="button primary" href="([^"]*)"', page.content.decode()) == [case_page]


def test_when_the_room_sends_someone_to_the_undertaking_then_they_come_back_to_that_room(people):
    client = client_of(people["users"]["observer"])
    joint = people["joint"]
    redirect = client.get(room_url(joint))

    page = client.get(redirect.url)
    response = client.post(
        undertaking_url(people["case"]),
        {"consent": "1", "text_sha256": page.context["text_sha256"], "next": page.context["next"]},
    )

    assert page.context["next"] == room_url(joint)
    assert response.status_code == 302 and response.url == room_url(joint)
    assert client.get(room_url(joint)).status_code == 200


def test_when_the_case_page_is_shown_before_acceptance_then_it_links_to_the_undertaking(people):
    response = client_of(people["users"]["respondent"]).get(
        reverse("mediation:case_detail", args=[people["case"].public_id])
    )
    assert response.status_code == 200 and response.context["undertaking"] is None
    assert f'href="{undertaking_url(people["case"])}"' in response.content.decode()
    accept_undertaking(people["case"], people["users"]["respondent"])
    response = client_of(people["users"]["respondent"]).get(
        reverse("mediation:case_detail", args=[people["case"].public_id])
    )
    assert response.context["undertaking"] is not None
    assert response.context["undertaking"].accepted_at <= timezone.now() + datetime.timedelta(seconds=1)
