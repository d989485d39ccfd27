"""Transcripts: off unless every party in the room consents there (a
sequenced room event and an audit row each time); the mediator's export
needs a recent re-authentication, is a PDF watermarked on every page with who exported
it and when, carries the conversation, and is audited."""

import datetime
import io
import re
import uuid

import pytest
import time_machine
import tinycss2
from django.contrib import messages as django_messages
from django.test import Client
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext
from pypdf import PdfReader

from odr import policy
from odr.models import AuditAction, AuditEvent
from sessions.models import EventKind, Role, RoomEvent
from sessions.services import invitations, rooms, transcripts
from sessions.services.rooms import RoomRefused
from tests.case_fixtures import accept_undertaking
from tests.conftest import PASSWORD
from tests.sessions.room_fixtures import db, enter, fresh_channel_layer  # noqa: F401 (autouse fixture)

# --- Helpers ------------------------------------------------------------------------------------


def reauthenticated(user) -> Client:
    """A client that has just given its password again through allauth's
    re-authentication form: what the export asks for. (A fresh login does
    not count as a re-authentication in allauth.)"""
    client = Client()
    client.force_login(user)
    response = client.post(reverse("account_reauthenticate"), {"password": PASSWORD})
    assert response.status_code == 302, response.content
    return client


def forced(user) -> Client:
    """A client whose session exists but was not signed into just now."""
    client = Client()
    client.force_login(user)
    return client


def consent_url(room) -> str:
    return reverse("mediation:transcript_consent", args=[room.public_id])


def export_url(room) -> str:
    return reverse("mediation:transcript_export", args=[room.public_id])


def room_url(room) -> str:
    return reverse("mediation:room", args=[room.public_id])


def post_consent(user, room, consent: bool):
    return forced(user).post(consent_url(room), {"consent": "1" if consent else "0"})


def consent_events(room) -> list[tuple[int, str, int]]:
    return list(
        RoomEvent.objects.filter(room=room, kind__in=[EventKind.CONSENT_GIVEN, EventKind.CONSENT_WITHDRAWN])
        .order_by("seq")
        .values_list("seq", "kind", "actor_id")
    )


def audit_rows(action) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("id"))


def case_audit_count(case) -> int:
    return AuditEvent.objects.filter(object_id=str(case.public_id)).count()


def flashed(response) -> list[tuple[int, str]]:
    return [(m.level, m.message) for m in django_messages.get_messages(response.wsgi_request)]


def is_pdf(response) -> bool:
    return response.status_code == 200 and response["Content-Type"] == "application/pdf"


def pages_text(pdf: bytes) -> list[str]:
    """Each page's text, whitespace collapsed (margin boxes wrap long lines)."""
    reader = PdfReader(io.BytesIO(pdf))
    return [" ".join((page.extract_text() or "").split()) for page in reader.pages]


# --- The cast -------------------------------------------------------------------------------------


@pytest.fixture
def people(active_case, mediator, party_a, party_b, user_factory, origin):
    """An active case with a representative (for the respondent) and an
    observer, everyone past the undertaking and admitted to the joint room."""
    representative = user_factory("rep@example.kz", display_name="Rustem Representative")
    observer = user_factory("obs@example.kz", display_name="Olga Observer")
    rep_invitation = invitations.invitation_create(
        case=active_case, actor=party_b, role=Role.REPRESENTATIVE, name="Rustem", email=representative.email,
        origin=origin,
    )
    invitations.invitation_accept(invitation=rep_invitation, user=representative, origin=origin)
    obs_invitation = invitations.invitation_create(
        case=active_case, actor=mediator, role=Role.OBSERVER, name="Olga", email=observer.email, origin=origin
    )
    invitations.invitation_accept(invitation=obs_invitation, user=observer, origin=origin)
    for user in (representative, observer):
        accept_undertaking(active_case, user, origin)
    joint = rooms.room_joint(active_case)
    rooms.session_start(room=joint, user=mediator)
    of = {p.user_id: p for p in active_case.participants.select_related("user")}
    for user in (party_a, party_b, representative, observer):
        rooms.lobby_admit(room=joint, user=mediator, participant_id=of[user.pk].public_id)
    joint.refresh_from_db()
    users = {
        "claimant": party_a, "respondent": party_b, "representative": representative,
        "observer": observer, "mediator": mediator,
    }
    return {"case": active_case, "joint": joint, "users": users, "of": {r: of[u.pk] for r, u in users.items()}}


@pytest.fixture
def joint(people):
    return people["joint"]


@pytest.fixture
def caucus(people):
    """The claimant's caucus (the claimant is admitted to it on opening)."""
    return rooms.caucus_open(
        room=people["joint"], user=people["users"]["mediator"], party_id=people["of"]["claimant"].public_id
    )


def say(room, user, body):
    event, _created = rooms.message_post(room=room, user=user, client_id=uuid.uuid4(), body=body)
    return event


# --- Off by default; who consents; when export opens -----------------------------------------------------


def test_when_nobody_has_consented_then_the_export_is_refused_and_nothing_is_rendered(people, joint):
    mediator = reauthenticated(people["users"]["mediator"])
    say(joint, people["users"]["claimant"], "Nothing of this may leave the room.")

    response = mediator.post(export_url(joint))

    assert response.status_code == 302 and response.url == room_url(joint)
    assert [level for level, _text in flashed(response)] == [django_messages.ERROR]
    assert audit_rows(AuditAction.TRANSCRIPT_EXPORTED) == []
    page = mediator.get(room_url(joint))
    assert page.context["transcript"]["can_export"] is False
    assert 'id="transcript-export" disabled' in page.content.decode()


JOINT_CONSENTS = [
    ((), False),
    (("claimant",), False),
    (("respondent",), False),
    # Those who are not parties cannot stand in for one.
    (("claimant", "representative", "observer"), False),
    (("claimant", "respondent"), True),
]


@pytest.mark.parametrize(("consenting", "exported"), JOINT_CONSENTS)
def test_when_parties_consent_in_the_joint_room_then_only_all_of_them_open_the_export(
    people, joint, consenting, exported
):
    say(joint, people["users"]["respondent"], "A line of the conversation.")
    for role in consenting:
        post_consent(people["users"][role], joint, True)

    response = reauthenticated(people["users"]["mediator"]).post(export_url(joint))

    assert is_pdf(response) is exported
    assert len(audit_rows(AuditAction.TRANSCRIPT_EXPORTED)) == (1 if exported else 0)
    assert policy.can(people["users"]["mediator"], "room.export", joint) is exported


def test_when_the_caucus_party_consents_then_the_caucus_transcript_opens_and_the_joint_room_stays_closed(
    people, joint, caucus
):
    say(caucus, people["users"]["claimant"], "Only for the mediator's ears.")
    mediator = people["users"]["mediator"]
    assert transcripts.room_parties(caucus) == [people["of"]["claimant"]]
    assert not policy.can(mediator, "room.export", caucus)

    post_consent(people["users"]["claimant"], caucus, True)

    assert policy.can(mediator, "room.export", caucus)
    assert not policy.can(mediator, "room.export", joint)  # consent is per room
    client = reauthenticated(mediator)
    assert is_pdf(client.post(export_url(caucus)))
    assert not is_pdf(client.post(export_url(joint)))


def test_when_the_other_party_consents_in_the_joint_room_then_it_does_not_open_a_caucus(people, joint, caucus):
    for role in ("claimant", "respondent"):
        post_consent(people["users"][role], joint, True)
    assert policy.can(people["users"]["mediator"], "room.export", joint)
    assert not policy.can(people["users"]["mediator"], "room.export", caucus)


@pytest.mark.parametrize("role", ["mediator", "observer", "representative"])
def test_when_someone_who_is_not_a_party_consents_then_it_is_refused_and_nothing_is_recorded(people, joint, role):
    audit_before = case_audit_count(people["case"])

    response = post_consent(people["users"][role], joint, True)

    assert response.status_code == 302 and response.url == room_url(joint)
    assert [level for level, _text in flashed(response)] == [django_messages.ERROR]
    assert consent_events(joint) == []
    assert case_audit_count(people["case"]) == audit_before
    with pytest.raises(RoomRefused):
        transcripts.transcript_consent(room=joint, user=people["users"][role], consent=True)


def test_when_a_party_is_still_in_the_lobby_then_their_consent_is_refused(people, joint):
    rooms.session_end(room=joint, user=people["users"]["mediator"])
    rooms.session_start(room=joint, user=people["users"]["mediator"])  # everyone back in the lobby

    post_consent(people["users"]["claimant"], joint, True)

    assert consent_events(joint) == []


def test_when_the_other_party_posts_consent_to_a_caucus_not_theirs_then_not_found(people, caucus):
    response = post_consent(people["users"]["respondent"], caucus, True)
    assert response.status_code == 404
    assert consent_events(caucus) == []


def test_when_a_party_consents_then_a_sequenced_event_and_an_audit_row_record_it(people, joint):
    claimant = people["of"]["claimant"]
    last_seq = joint.last_seq

    response = post_consent(people["users"]["claimant"], joint, True)

    assert response.status_code == 302 and response.url == room_url(joint)
    assert consent_events(joint) == [(last_seq + 1, EventKind.CONSENT_GIVEN, claimant.pk)]
    [row] = audit_rows(AuditAction.TRANSCRIPT_CONSENT_GIVEN)
    assert row.actor_id == people["users"]["claimant"].pk
    assert row.object_id == str(people["case"].public_id)
    assert row.details["room"] == str(joint.public_id) and row.details["participant"] == str(claimant.public_id)
    page = forced(people["users"]["claimant"]).get(room_url(joint))
    assert page.context["transcript"]["my_consent"] is True
    assert 'id="consent-withdraw"' in page.content.decode()


def test_when_a_party_repeats_the_same_answer_then_nothing_more_is_recorded(people, joint):
    for _ in range(2):
        post_consent(people["users"]["claimant"], joint, True)
    post_consent(people["users"]["respondent"], joint, False)  # never consented: nothing to withdraw

    assert [kind for _seq, kind, _actor in consent_events(joint)] == [EventKind.CONSENT_GIVEN]
    assert len(audit_rows(AuditAction.TRANSCRIPT_CONSENT_GIVEN)) == 1
    assert audit_rows(AuditAction.TRANSCRIPT_CONSENT_WITHDRAWN) == []


def test_when_a_party_withdraws_consent_then_the_export_is_refused_again(people, joint):
    mediator = people["users"]["mediator"]
    for role in ("claimant", "respondent"):
        post_consent(people["users"][role], joint, True)
    assert policy.can(mediator, "room.export", joint)

    post_consent(people["users"]["respondent"], joint, False)

    assert [kind for _seq, kind, _actor in consent_events(joint)] == [
        EventKind.CONSENT_GIVEN, EventKind.CONSENT_GIVEN, EventKind.CONSENT_WITHDRAWN,
    ]
    [withdrawn] = audit_rows(AuditAction.TRANSCRIPT_CONSENT_WITHDRAWN)
    assert withdrawn.actor_id == people["users"]["respondent"].pk
    response = reauthenticated(mediator).post(export_url(joint))
    assert not is_pdf(response) and response.url == room_url(joint)
    assert audit_rows(AuditAction.TRANSCRIPT_EXPORTED) == []
    # Consent given again opens it again.
    post_consent(people["users"]["respondent"], joint, True)
    assert policy.can(mediator, "room.export", joint)


def test_when_the_session_has_ended_then_a_party_can_still_withdraw_consent_before_the_export(people, joint):
    """"Consent can be withdrawn until the mediator exports it" (the room
    page): the mediator can export between sessions, so the party must be able
    to withdraw then too, not only while admitted."""
    mediator = people["users"]["mediator"]
    for role in ("claimant", "respondent"):
        post_consent(people["users"][role], joint, True)
    rooms.session_end(room=joint, user=mediator)  # everyone leaves; nobody is admitted now
    assert policy.can(mediator, "room.export", joint)  # the mediator could export right now

    post_consent(people["users"]["respondent"], joint, False)

    assert [kind for _seq, kind, _actor in consent_events(joint)][-1] == EventKind.CONSENT_WITHDRAWN
    assert not policy.can(mediator, "room.export", joint)
    assert not is_pdf(reauthenticated(mediator).post(export_url(joint)))


def test_when_a_caucus_was_closed_then_its_party_can_still_withdraw_consent_before_the_export(people, caucus):
    mediator = people["users"]["mediator"]
    post_consent(people["users"]["claimant"], caucus, True)
    rooms.caucus_close(room=caucus, user=mediator)
    assert policy.can(mediator, "room.export", caucus)

    post_consent(people["users"]["claimant"], caucus, False)

    assert [kind for _seq, kind, _actor in consent_events(caucus)][-1] == EventKind.CONSENT_WITHDRAWN
    assert not is_pdf(reauthenticated(mediator).post(export_url(caucus)))


def test_when_consent_is_withdrawn_while_the_pdf_is_being_rendered_then_no_pdf_is_handed_out(
    people, joint, monkeypatch
):
    """Rendering takes a second or two; a party who withdraws in that time
    must still stop the export (the consent is checked once, before
    rendering, and nothing re-checks it under the room lock afterwards)."""
    import weasyprint

    for role in ("claimant", "respondent"):
        post_consent(people["users"][role], joint, True)
    render = weasyprint.HTML.write_pdf

    def render_while_the_respondent_withdraws(self, *args, **kwargs):
        transcripts.transcript_consent(room=joint, user=people["users"]["respondent"], consent=False)
        return render(self, *args, **kwargs)

    monkeypatch.setattr(weasyprint.HTML, "write_pdf", render_while_the_respondent_withdraws)

    response = reauthenticated(people["users"]["mediator"]).post(export_url(joint))

    assert consent_events(joint)[-1][1] == EventKind.CONSENT_WITHDRAWN
    assert not is_pdf(response)
    assert audit_rows(AuditAction.TRANSCRIPT_EXPORTED) == []


@pytest.mark.parametrize("role", ["claimant", "respondent", "representative", "observer"])
def test_when_anyone_but_the_mediator_asks_for_the_export_then_no_pdf(people, joint, role):
    for party in ("claimant", "respondent"):
        post_consent(people["users"][party], joint, True)

    response = reauthenticated(people["users"][role]).post(export_url(joint))

    assert not is_pdf(response)
    assert audit_rows(AuditAction.TRANSCRIPT_EXPORTED) == []


def test_when_a_stranger_or_another_case_asks_for_consent_or_export_then_not_found_like_a_random_id(
    people, joint, user_factory
):
    stranger = reauthenticated(user_factory("stranger@example.kz"))
    for url in (consent_url(joint), export_url(joint)):
        assert stranger.post(url, {"consent": "1"}).status_code == 404
    random_room = uuid.uuid4()
    for name in ("mediation:transcript_consent", "mediation:transcript_export"):
        assert stranger.post(reverse(name, args=[random_room]), {"consent": "1"}).status_code == 404


# --- Consent reaches the room live ---------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
async def test_when_a_party_consents_then_everyone_in_the_room_sees_it_live(people):
    joint = people["joint"]
    users, of = people["users"], people["of"]
    async with enter(users["mediator"], joint) as mediator, enter(users["respondent"], joint) as respondent:
        for socket in (mediator, respondent):
            await socket.settle(joint)

        await db(post_consent)(users["claimant"], joint, True)
        given = [await socket.expect("event", kind=EventKind.CONSENT_GIVEN) for socket in (mediator, respondent)]

        await db(post_consent)(users["claimant"], joint, False)
        withdrawn = [
            await socket.expect("event", kind=EventKind.CONSENT_WITHDRAWN) for socket in (mediator, respondent)
        ]

    for frame in given + withdrawn:
        assert frame["actor"]["id"] == str(of["claimant"].public_id)
    assert given[0]["seq"] == given[1]["seq"] and withdrawn[0]["seq"] == given[0]["seq"] + 1
    stored = await db(consent_events)(joint)
    assert [(seq, kind) for seq, kind, _actor in stored] == [
        (given[0]["seq"], EventKind.CONSENT_GIVEN), (withdrawn[0]["seq"], EventKind.CONSENT_WITHDRAWN)
    ]


# --- Re-authentication -------------------------------------------------------------------------------------


@pytest.fixture
def consented(people, joint):
    for role in ("claimant", "respondent"):
        post_consent(people["users"][role], joint, True)
    return joint


def test_when_the_mediator_has_not_signed_in_recently_then_export_asks_to_reauthenticate_first(
    people, consented
):
    say(consented, people["users"]["claimant"], "A sentence to export.")
    client = forced(people["users"]["mediator"])

    response = client.post(export_url(consented))

    assert response.status_code == 302
    assert response.url.startswith(reverse("account_reauthenticate"))
    assert f"next={export_url(consented)}".replace("/", "%2F") in response.url
    assert audit_rows(AuditAction.TRANSCRIPT_EXPORTED) == []
    # Giving the password again resumes the export itself.
    resumed = client.post(response.url, {"password": PASSWORD})
    assert is_pdf(resumed), (resumed.status_code, resumed.get("Location"))
    assert len(audit_rows(AuditAction.TRANSCRIPT_EXPORTED)) == 1


def test_when_the_reauthentication_is_stale_then_export_asks_again(people, consented, settings):
    client = reauthenticated(people["users"]["mediator"])
    later = timezone.now() + datetime.timedelta(seconds=settings.ACCOUNT_REAUTHENTICATION_TIMEOUT + 60)
    with time_machine.travel(later):
        response = client.post(export_url(consented))
    assert response.status_code == 302 and response.url.startswith(reverse("account_reauthenticate"))
    assert audit_rows(AuditAction.TRANSCRIPT_EXPORTED) == []


def test_when_the_export_page_is_opened_with_get_then_it_returns_to_the_room_without_a_pdf(people, consented):
    response = reauthenticated(people["users"]["mediator"]).get(export_url(consented))
    assert response.status_code == 302 and response.url == room_url(consented)
    assert audit_rows(AuditAction.TRANSCRIPT_EXPORTED) == []


# --- The PDF --------------------------------------------------------------------------------------------------------


def _watermark_re(user) -> re.Pattern:
    """The watermark in a page's text with every space removed (the diagonal
    copy wraps where the PDF's text extraction loses spaces)."""
    # The transcript is in the case's language (Russian here).
    with translation.override("ru"):
        words = gettext("Exported by %(who)s on %(when)s") % {"who": f"{user.display_name} <{user.email}>", "when": ""}
    return re.compile(re.escape("".join(words.split())) + r"(\d{4}-\d\d-\d\d)(\d\d:\d\d)")


def _stamps(pattern, text) -> list[str]:
    return [f"{day} {time}" for day, time in pattern.findall("".join(text.split()))]


def _minute(at) -> str:
    return timezone.localtime(at).strftime("%Y-%m-%d %H:%M")


def _long_conversation(room, people, messages=24):
    """Enough text for at least three A4 pages."""
    speakers = [people["users"]["claimant"], people["users"]["respondent"], people["users"]["mediator"]]
    bodies = [f"Message {i:02d}: " + " ".join(["the shared fence and the garden gate"] * 12) for i in range(messages)]
    for i, body in enumerate(bodies):
        say(room, speakers[i % 3], body)
    return bodies


def test_when_the_transcript_is_exported_then_every_page_carries_the_watermark_and_the_messages(people, consented):
    mediator = people["users"]["mediator"]
    bodies = _long_conversation(consented, people)
    client = reauthenticated(mediator)
    before = timezone.now()

    response = client.post(export_url(consented))

    after = timezone.now()
    assert is_pdf(response), response.status_code
    assert response["Content-Disposition"].startswith("attachment;")
    assert "no-store" in response["Cache-Control"]
    pages = pages_text(response.content)
    assert len(pages) >= 3
    pattern = _watermark_re(mediator)
    stamps = set()
    for number, text in enumerate(pages, start=1):
        found = _stamps(pattern, text)
        assert found, f"page {number} has no watermark: {text[:300]!r}"
        stamps.update(found)
    assert stamps <= {_minute(before), _minute(after)} and len(stamps) == 1
    everything = " ".join(pages)
    for i in (0, len(bodies) // 2, len(bodies) - 1):
        assert f"Message {i:02d}:" in everything  # positive control: the conversation is there
    [row] = audit_rows(AuditAction.TRANSCRIPT_EXPORTED)
    assert row.actor_id == mediator.pk and row.object_id == str(people["case"].public_id)
    assert row.details["room"] == str(consented.public_id)
    assert row.details["events"] == consented.events.count()
    assert _minute(datetime.datetime.fromisoformat(row.details["exported_at"])) in stamps


def test_when_a_message_was_removed_by_the_mediator_then_the_transcript_does_not_carry_it(people, consented):
    kept = say(consented, people["users"]["claimant"], "This sentence stays in the record.")
    removed = say(consented, people["users"]["respondent"], "Regrettable words, withdrawn.")
    rooms.message_redact(room=consented, user=people["users"]["mediator"], seq=removed.seq)

    text = " ".join(pages_text(reauthenticated(people["users"]["mediator"]).post(export_url(consented)).content))

    assert "This sentence stays in the record." in text
    assert "Regrettable words" not in text
    assert kept.seq < removed.seq


def test_when_a_room_is_exported_then_it_carries_nothing_from_the_other_rooms(people, joint, caucus):
    say(joint, people["users"]["respondent"], "Said in front of everyone.")
    say(caucus, people["users"]["claimant"], "Said only in the caucus.")
    for role in ("claimant", "respondent"):
        post_consent(people["users"][role], joint, True)
    post_consent(people["users"]["claimant"], caucus, True)
    client = reauthenticated(people["users"]["mediator"])

    joint_text = " ".join(pages_text(client.post(export_url(joint)).content))
    caucus_text = " ".join(pages_text(client.post(export_url(caucus)).content))

    assert "Said in front of everyone." in joint_text and "Said only in the caucus." not in joint_text
    assert "Said only in the caucus." in caucus_text and "Said in front of everyone." not in caucus_text


def test_when_a_document_was_shared_then_the_transcript_names_it(people, consented, origin):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from sessions.services import documents

    documents.document_share(
        room=consented, user=people["users"]["respondent"], origin=origin,
        upload=SimpleUploadedFile("boundary-survey.txt", b"Boundary marker 17 is missing.\n"),
    )

    text = " ".join(pages_text(reauthenticated(people["users"]["mediator"]).post(export_url(consented)).content))

    assert "boundary-survey.txt" in text


NASTY_NAMES = [
    'Ma"rat \\ Mediator',
    "O'Brien; } @page { @bottom-center { content: \"forged\" } }",
    "Eve </style><script>alert(1)</script>",
    "Back\\slash \\\" quote \\A newline",
    "Сәлем /* comment */ 👋",
]


@pytest.mark.parametrize("text", NASTY_NAMES)
def test_when_text_is_made_a_css_string_then_it_parses_back_to_itself_as_one_string(text):
    css = transcripts.css_string(text)
    tokens = [t for t in tinycss2.parse_component_value_list(css) if t.type != "whitespace"]
    assert len(tokens) == 1 and tokens[0].type == "string", tokens
    assert tokens[0].value == text
    assert "<" not in css and "\n" not in css


def test_when_the_mediator_name_has_quotes_backslashes_and_a_style_end_tag_then_the_watermark_is_intact(
    people, consented
):
    mediator = people["users"]["mediator"]
    mediator.display_name = 'Ma"rat \\ </style><b>bold</b> ;} Mediator'
    mediator.save(update_fields=["display_name"])
    _long_conversation(consented, people, messages=12)

    response = reauthenticated(mediator).post(export_url(consented))

    assert is_pdf(response)
    pages = pages_text(response.content)
    assert len(pages) >= 2
    pattern = _watermark_re(mediator)
    for number, text in enumerate(pages, start=1):
        # Twice on a page: the margin box (CSS string) and the diagonal mark (HTML).
        assert len(_stamps(pattern, text)) >= 2, f"page {number}: {text!r}"
