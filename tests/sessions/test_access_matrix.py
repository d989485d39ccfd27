"""The access-control matrix of the confidentiality controls (issue 4, §4).

Every role — claimant, respondent, the respondent's representative, this
case's mediator, another mediator, an observer, a court user, an
administrator, a stranger, anonymous — × every object — the case page, the
joint room, each caucus, a message, a room document, the draft agreement, the
audit log — × every action that applies — view, post, download, moderate,
export — written as tables of role → expected answer, so that the policy is
read here, and checked through the real stack: HTTP through the test client
and its middleware, the room WebSocket through `odr.asgi.application` with a
real session cookie.

Also: ids of other cases, rooms and documents, guessed or enumerated, get the
same answer as ids that do not exist; administrators do not read content
except through audited, re-authenticated, time-limited break-glass access;
nobody (the mediator included) enters a room before accepting the case's
confidentiality undertaking.

Signed agreements do not exist yet (the next issue): they are not in the
matrix.
"""

import datetime
import io
import json
import re
import uuid
from dataclasses import dataclass

import pytest
import time_machine
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext

from agreements.models import Draft
from agreements.services import drafts as agreements
from odr import policy
from odr.models import AuditAction, AuditEvent
from sessions.models import (
    BreakGlassAccess,
    Case,
    CaseStatus,
    EventKind,
    Participant,
    Role,
    Room,
    RoomDocument,
    RoomEvent,
)
from sessions.services import documents as room_documents
from sessions.services import invitations, procedure, retention, rooms, transcripts
from tests.case_fixtures import accept_atm, accept_undertaking
from tests.conftest import ORIGIN, PASSWORD
from tests.sessions.room_fixtures import *

# --- The roles ----------------------------------------------------------------------------

ROLES = [
    "claimant", "respondent", "representative", "mediator", "other_mediator",
    "observer", "court_user", "admin", "stranger", "anonymous",
]
IN_CASE = ["claimant", "respondent", "representative", "mediator", "observer"]
ROOMS = ["joint", "claimant_caucus", "respondent_caucus"]

# Answers, as `answer()` names them.
LOGIN = "login"  # 302 to the login page
REAUTH = "reauth"  # 302 to allauth's re-authentication page


@pytest.fixture
def people(one_user_per_role):
    return one_user_per_role


# --- The case and its content ------------------------------------------------------------------

# What is said and shared in each room; none of it may reach anyone outside it.
SECRET = {
    "joint": "JOINT-SECRET we could pay 400000 tenge",
    "claimant_caucus": "CLAIMANT-CAUCUS-SECRET my bottom line is 300000",
    "respondent_caucus": "RESPONDENT-CAUCUS-SECRET the fence was never ours",
}
DOC_NAME = {
    "joint": "joint-evidence-5c1e.txt",
    "claimant_caucus": "claimant-private-notes-8a2b.txt",
    "respondent_caucus": "respondent-private-notes-3f9d.txt",
}
DOC_BYTES = {room: f"The {room} document: only its members may read this (9d2f).\n".encode() for room in ROOMS}
DRAFT_TEXT = "DRAFT-SECRET The respondent pays 350000 tenge by the first of May."
EVERY_SECRET = [*SECRET.values(), *DOC_NAME.values(), *(b.decode() for b in DOC_BYTES.values()), DRAFT_TEXT]

# Who wrote and who shared what in each room (the representative speaks in
# the respondent's caucus, the mediator shares in the claimant's).
AUTHOR = {"joint": "claimant", "claimant_caucus": "claimant", "respondent_caucus": "representative"}
SHARER = {"joint": "respondent", "claimant_caucus": "mediator", "respondent_caucus": "respondent"}


@dataclass
class World:
    case: Case
    people: dict
    participants: dict[str, Participant]  # role → participant row (the case's people only)
    rooms: dict[str, Room]
    documents: dict[str, RoomDocument]

    def user(self, role):
        return self.people[role]


def build_world(case: Case, people: dict, origin) -> World:
    """An active case with a representative (of the respondent) and an
    observer, a session in progress with everyone admitted to the joint
    room, both caucuses open, and in each room a message and a document;
    a draft agreement saved by the mediator. All through the services."""
    mediator = people["mediator"]
    representation = invitations.invitation_create(
        case=case, actor=people["respondent"], role=Role.REPRESENTATIVE,
        name="Rustem Representative", email=people["representative"].email, origin=origin,
    )
    invitations.invitation_accept(invitation=representation, user=people["representative"], origin=origin)
    observation = invitations.invitation_create(
        case=case, actor=mediator, role=Role.OBSERVER, name="Olga Observer",
        email=people["observer"].email, origin=origin,
    )
    invitations.invitation_accept(invitation=observation, user=people["observer"], origin=origin)
    for role in ("representative", "observer"):
        accept_undertaking(case, people[role], origin)
    case.refresh_from_db()
    participants = {role: case.participants.get(user=people[role]) for role in IN_CASE}
    assert participants["representative"].represents == participants["respondent"]

    joint = rooms.room_joint(case)
    rooms.session_start(room=joint, user=mediator)
    for role in ("claimant", "respondent", "representative", "observer"):
        rooms.lobby_admit(room=joint, user=mediator, participant_id=participants[role].public_id)
    the_rooms = {
        "joint": joint,
        "claimant_caucus": rooms.caucus_open(
            room=joint, user=mediator, party_id=participants["claimant"].public_id
        ),
        "respondent_caucus": rooms.caucus_open(
            room=joint, user=mediator, party_id=participants["respondent"].public_id
        ),
    }
    shared = {}
    for name, room in the_rooms.items():
        rooms.message_post(room=room, user=people[AUTHOR[name]], client_id=uuid.uuid4(), body=SECRET[name])
        shared[name] = room_documents.document_share(
            room=room, user=people[SHARER[name]],
            upload=SimpleUploadedFile(DOC_NAME[name], DOC_BYTES[name], "text/plain"), origin=origin,
        )
    agreements.draft_save(case=case, user=mediator, terms=DRAFT_TEXT, origin=origin)
    for room in the_rooms.values():
        room.refresh_from_db()
    case.refresh_from_db()
    return World(case, people, participants, the_rooms, shared)


@pytest.fixture
def world(active_case, people, origin) -> World:
    return build_world(active_case, people, origin)


# --- HTTP helpers ------------------------------------------------------------------------------


def client_as(world: World, role: str) -> Client:
    """A browser signed in as the role (force_login: no recent authentication)."""
    client = Client()
    if role != "anonymous":
        client.force_login(world.user(role))
    return client


def reauthenticate(client: Client) -> None:
    """allauth's re-authentication form: the password again (a recent
    re-authentication is what sensitive pages ask for)."""
    response = client.post(reverse("account_reauthenticate"), {"password": PASSWORD})
    assert response.status_code == 302, response.content[:500]


def answer(response):
    """A response as the tables name it: a status code, LOGIN, REAUTH, or
    '→ <path>' for any other redirect."""
    if response.status_code == 302:
        location = response["Location"]
        if location.startswith(reverse("account_login")):
            return LOGIN
        if location.startswith(reverse("account_reauthenticate")):
            return REAUTH
        return f"→ {location.split('?')[0]}"
    return response.status_code


def secrets_in(text: str) -> set[str]:
    return {secret for secret in EVERY_SECRET if secret in text}


def room_config(response) -> dict:
    """The room page's `room-config` (json_script), as the browser client reads it."""
    match = re.search(
        r'<script id="room-config" type="application/json">(.*?)</script>', response.content.decode(), re.DOTALL
    )
    assert match, "no room-config on the page"
    return json.loads(match.group(1))


def message_bodies(frames) -> set[str]:
    return {f["body"] for f in frames if f.get("type") == "message" and f.get("body")}


def document_names(frames) -> set[str]:
    return {f["document"]["name"] for f in frames if f.get("type") == "event" and f.get("document")}


# --- The policy, as tables (policy.can per role) ----------------------------------------------------

# The actions of the confidentiality issue, tabled here (test_policy_table
# checks that every registered action is covered by a table somewhere).
ACTIVE_CASE_POLICY = {
    # Administrators place and lift legal holds and may open break-glass
    # access; nobody else, and no participant.
    "case.legal_hold": {"admin"},
    "case.break_glass": {"admin"},
    # The draft: the parties, their representatives and the mediator (not
    # observers); only the mediator writes it.
    "agreement.view_draft": {"claimant", "respondent", "representative", "mediator"},
    "agreement.edit_draft": {"mediator"},
}
MEMBERS = {
    "joint": {"claimant", "respondent", "representative", "mediator", "observer"},
    "claimant_caucus": {"claimant", "mediator"},
    "respondent_caucus": {"respondent", "representative", "mediator"},
}
ACTIVE_ROOM_POLICY = {
    # A room's activity shows in the case history for its members only.
    "room.see_activity": MEMBERS,
    # While the case is active, nobody sees a "closed room" page.
    "room.see_closed": {"joint": set(), "claimant_caucus": set(), "respondent_caucus": set()},
    # Only the parties themselves (not their representatives, not the
    # mediator, not observers) consent to a transcript, in rooms they are in.
    "room.consent": {
        "joint": {"claimant", "respondent"},
        "claimant_caucus": {"claimant"},
        "respondent_caucus": {"respondent"},
    },
    # ... and may withdraw it (until the export).
    "room.withdraw_consent": {
        "joint": {"claimant", "respondent"},
        "claimant_caucus": {"claimant"},
        "respondent_caucus": {"respondent"},
    },
    # Nobody exports before every party in the room has consented.
    "room.export": {"joint": set(), "claimant_caucus": set(), "respondent_caucus": set()},
}
# Between sessions (admissions lapsed, caucuses closed): nobody gives consent
# in a room they are not in; a party may still take theirs back.
BETWEEN_SESSIONS_ROOM_POLICY = {
    "room.consent": {room: set() for room in ROOMS},
    "room.withdraw_consent": ACTIVE_ROOM_POLICY["room.withdraw_consent"],
}
# Once every party has consented in every room: the mediator, and only the mediator.
CONSENTED_ROOM_POLICY = {
    "room.export": {"joint": {"mediator"}, "claimant_caucus": {"mediator"}, "respondent_caucus": {"mediator"}},
}

# After the case ends (not settled): members see that the room closed, and
# when its content goes; there is no draft to read, no transcript to export.
CLOSED_CASE_POLICY = {
    "case.legal_hold": {"admin"},
    "case.break_glass": {"admin"},
    "agreement.view_draft": set(),
    "agreement.edit_draft": set(),
}
CLOSED_ROOM_POLICY = {
    "room.see_closed": MEMBERS,
    "room.see_activity": MEMBERS,
    "room.consent": {room: set() for room in ROOMS},
    "room.withdraw_consent": {room: set() for room in ROOMS},
    "room.export": {room: set() for room in ROOMS},
}
# A settled case: the draft stays readable (nobody edits it any more).
SETTLED_CASE_POLICY = {
    "agreement.view_draft": {"claimant", "respondent", "representative", "mediator"},
    "agreement.edit_draft": set(),
}
# After destruction: the legal hold page stays (the service refuses a hold
# on nothing); break-glass, the draft, transcripts are gone for everyone.
DESTROYED_CASE_POLICY = {
    "case.legal_hold": {"admin"},
    "case.break_glass": set(),
    "agreement.view_draft": set(),
    "agreement.edit_draft": set(),
}
DESTROYED_ROOM_POLICY = {
    "room.see_closed": MEMBERS,
    "room.see_activity": MEMBERS,
    "room.consent": {room: set() for room in ROOMS},
    "room.withdraw_consent": {room: set() for room in ROOMS},
    "room.export": {room: set() for room in ROOMS},
}

CONFIDENTIALITY_ACTIONS = frozenset(
    {*ACTIVE_CASE_POLICY, *ACTIVE_ROOM_POLICY, *CONSENTED_ROOM_POLICY, *BETWEEN_SESSIONS_ROOM_POLICY,
     *CLOSED_CASE_POLICY, *CLOSED_ROOM_POLICY, *SETTLED_CASE_POLICY, *DESTROYED_CASE_POLICY,
     *DESTROYED_ROOM_POLICY}
)


def allowed(world, action, obj) -> set[str]:
    return {role for role in ROLES if policy.can(world.user(role), action, obj)}


def assert_policy(world, case_table: dict, room_table: dict) -> None:
    for action, expected in case_table.items():
        assert allowed(world, action, world.case) == expected, action
    for action, per_room in room_table.items():
        for name, expected in per_room.items():
            world.rooms[name].refresh_from_db()
            assert allowed(world, action, world.rooms[name]) == expected, (action, name)


def consent_everywhere(world) -> None:
    for name, parties in ACTIVE_ROOM_POLICY["room.consent"].items():
        for role in parties:
            transcripts.transcript_consent(room=world.rooms[name], user=world.user(role), consent=True)


def test_when_case_is_active_then_confidentiality_policy_is_as_tabled(world):
    assert_policy(world, ACTIVE_CASE_POLICY, ACTIVE_ROOM_POLICY)


def test_when_every_party_consented_then_only_the_mediator_may_export(world):
    consent_everywhere(world)
    assert_policy(world, {}, CONSENTED_ROOM_POLICY)
    # One withdrawal is enough to stop it again, in that room only.
    transcripts.transcript_consent(room=world.rooms["joint"], user=world.user("respondent"), consent=False)
    assert allowed(world, "room.export", world.rooms["joint"]) == set()
    assert allowed(world, "room.export", world.rooms["respondent_caucus"]) == {"mediator"}


def _end_session(world):
    rooms.session_end(room=world.rooms["joint"], user=world.user("mediator"))
    for room in world.rooms.values():
        room.refresh_from_db()


def test_when_the_session_ended_then_parties_may_withdraw_consent_but_not_give_it(world):
    _end_session(world)
    assert_policy(world, {}, BETWEEN_SESSIONS_ROOM_POLICY)


def _close(world, outcome):
    procedure.case_close(case=world.case, user=world.user("mediator"), outcome=outcome, origin=ORIGIN)
    world.case.refresh_from_db()


def test_when_case_closed_unsettled_then_confidentiality_policy_is_as_tabled(world):
    _close(world, CaseStatus.NOT_SETTLED)
    assert_policy(world, CLOSED_CASE_POLICY, CLOSED_ROOM_POLICY)


def test_when_case_settled_then_the_draft_is_read_only_for_the_same_people(world):
    _close(world, CaseStatus.SETTLED)
    assert_policy(world, SETTLED_CASE_POLICY, {})


def test_when_content_destroyed_then_confidentiality_policy_is_as_tabled(world, settings):
    _close(world, CaseStatus.NOT_SETTLED)
    assert retention.case_content_destroy(
        case_id=world.case.pk, now=world.case.closed_at + datetime.timedelta(days=settings.ODR_RETENTION_DAYS)
    )
    world.case.refresh_from_db()
    assert world.case.content_destroyed_at is not None
    assert_policy(world, DESTROYED_CASE_POLICY, DESTROYED_ROOM_POLICY)


# --- The matrix over HTTP ----------------------------------------------------------------------------

# The case page (/cases/<id>/), with its History (the case's audit log).
CASE_PAGE = {
    "claimant": 200, "respondent": 200, "representative": 200, "mediator": 200, "observer": 200,
    "other_mediator": 404, "court_user": 404, "admin": 404, "stranger": 404, "anonymous": LOGIN,
}

# The room pages (/rooms/<id>/): members only; the rest cannot tell the room exists.
ROOM_PAGE = {
    "joint": {
        "claimant": 200, "respondent": 200, "representative": 200, "mediator": 200, "observer": 200,
        "other_mediator": 404, "court_user": 404, "admin": 404, "stranger": 404, "anonymous": LOGIN,
    },
    "claimant_caucus": {
        "claimant": 200, "respondent": 404, "representative": 404, "mediator": 200, "observer": 404,
        "other_mediator": 404, "court_user": 404, "admin": 404, "stranger": 404, "anonymous": LOGIN,
    },
    "respondent_caucus": {
        "claimant": 404, "respondent": 200, "representative": 200, "mediator": 200, "observer": 404,
        "other_mediator": 404, "court_user": 404, "admin": 404, "stranger": 404, "anonymous": LOGIN,
    },
}

# Whose room page carries the room's message (in `room-config`'s events):
# every member admitted to the room, and nobody else; never another room's.
MESSAGE_ON_PAGE = {
    "joint": {"claimant", "respondent", "representative", "mediator", "observer"},
    "claimant_caucus": {"claimant", "mediator"},
    "respondent_caucus": {"respondent", "representative", "mediator"},
}

# Downloading the room's document (/rooms/<room>/documents/<doc>/).
DOCUMENT_DOWNLOAD = {
    "joint": {
        "claimant": 200, "respondent": 200, "representative": 200, "mediator": 200, "observer": 200,
        "other_mediator": 404, "court_user": 404, "admin": 404, "stranger": 404, "anonymous": LOGIN,
    },
    "claimant_caucus": {
        "claimant": 200, "respondent": 404, "representative": 404, "mediator": 200, "observer": 404,
        "other_mediator": 404, "court_user": 404, "admin": 404, "stranger": 404, "anonymous": LOGIN,
    },
    "respondent_caucus": {
        "claimant": 404, "respondent": 200, "representative": 200, "mediator": 200, "observer": 404,
        "other_mediator": 404, "court_user": 404, "admin": 404, "stranger": 404, "anonymous": LOGIN,
    },
}

# Sharing a document (POST /rooms/<room>/documents/): observers do not post.
DOCUMENT_UPLOAD = {
    "joint": {
        "claimant": 201, "respondent": 201, "representative": 201, "mediator": 201, "observer": 403,
        "other_mediator": 404, "court_user": 404, "admin": 404, "stranger": 404, "anonymous": LOGIN,
    },
    "claimant_caucus": {
        "claimant": 201, "respondent": 404, "representative": 404, "mediator": 201, "observer": 404,
        "other_mediator": 404, "court_user": 404, "admin": 404, "stranger": 404, "anonymous": LOGIN,
    },
    "respondent_caucus": {
        "claimant": 404, "respondent": 201, "representative": 201, "mediator": 201, "observer": 404,
        "other_mediator": 404, "court_user": 404, "admin": 404, "stranger": 404, "anonymous": LOGIN,
    },
}

# The draft agreement (/cases/<id>/agreement/draft/): read by the parties,
# their representatives and the mediator; for everyone else, observers
# included, there is no such page.
DRAFT_VIEW = {
    "claimant": 200, "respondent": 200, "representative": 200, "mediator": 200, "observer": 404,
    "other_mediator": 404, "court_user": 404, "admin": 404, "stranger": 404, "anonymous": LOGIN,
}
# Saving a draft version (POST): the mediator only ("saved": a new version, back to the draft).
DRAFT_POST = {
    "claimant": 403, "respondent": 403, "representative": 403, "mediator": "saved", "observer": 404,
    "other_mediator": 404, "court_user": 404, "admin": 404, "stranger": 404, "anonymous": LOGIN,
}

# Consent to a transcript (POST /rooms/<room>/transcript/consent/): a party
# in the room ("consented": a consent event); other members are sent back to
# the room with an error and nothing recorded ("refused").
TRANSCRIPT_CONSENT = {
    "joint": {
        "claimant": "consented", "respondent": "consented", "representative": "refused",
        "mediator": "refused", "observer": "refused",
        "other_mediator": 404, "court_user": 404, "admin": 404, "stranger": 404, "anonymous": LOGIN,
    },
    "claimant_caucus": {
        "claimant": "consented", "respondent": 404, "representative": 404, "mediator": "refused", "observer": 404,
        "other_mediator": 404, "court_user": 404, "admin": 404, "stranger": 404, "anonymous": LOGIN,
    },
    "respondent_caucus": {
        "claimant": 404, "respondent": "consented", "representative": "refused", "mediator": "refused",
        "observer": 404,
        "other_mediator": 404, "court_user": 404, "admin": 404, "stranger": 404, "anonymous": LOGIN,
    },
}

# Exporting the transcript (POST /rooms/<room>/transcript/) once every party
# consented, each user freshly re-authenticated: a PDF for the mediator;
# other members are sent back to the room ("refused").
TRANSCRIPT_EXPORT = {
    "joint": {
        "claimant": "refused", "respondent": "refused", "representative": "refused", "mediator": "pdf",
        "observer": "refused",
        "other_mediator": 404, "court_user": 404, "admin": 404, "stranger": 404, "anonymous": LOGIN,
    },
    "claimant_caucus": {
        "claimant": "refused", "respondent": 404, "representative": 404, "mediator": "pdf", "observer": 404,
        "other_mediator": 404, "court_user": 404, "admin": 404, "stranger": 404, "anonymous": LOGIN,
    },
    "respondent_caucus": {
        "claimant": 404, "respondent": "refused", "representative": "refused", "mediator": "pdf",
        "observer": 404,
        "other_mediator": 404, "court_user": 404, "admin": 404, "stranger": 404, "anonymous": LOGIN,
    },
}

# The administrators' pages of a case: legal hold, and break-glass (after re-authentication).
LEGAL_HOLD_PAGE = {
    "claimant": 404, "respondent": 404, "representative": 404, "mediator": 404, "observer": 404,
    "other_mediator": 404, "court_user": 404, "admin": 200, "stranger": 404, "anonymous": LOGIN,
}
BREAK_GLASS_PAGE = {
    "claimant": 404, "respondent": 404, "representative": 404, "mediator": 404, "observer": 404,
    "other_mediator": 404, "court_user": 404, "admin": 200, "stranger": 404, "anonymous": LOGIN,
}

# The platform-wide audit log in the admin (/admin/odr/auditevent/): staff
# only; everyone else is sent to sign in (as staff).
ADMIN_AUDIT_LOG = {
    "claimant": "admin login", "respondent": "admin login", "representative": "admin login",
    "mediator": "admin login", "observer": "admin login", "other_mediator": "admin login",
    "court_user": "admin login", "admin": 200, "stranger": "admin login", "anonymous": "admin login",
}


def _history(response) -> list[AuditEvent]:
    return list(response.context["history"]) if response.status_code == 200 else []


def test_case_page_and_its_history_answer_as_the_table_says(world):
    case_rows = [
        event.id
        for event in AuditEvent.objects.filter(object_id=str(world.case.public_id)).order_by("id")
        if "room" not in event.details
    ]
    assert len(case_rows) > 10  # the case's story so far, undertakings and draft included
    answers, histories = {}, {}
    for role in ROLES:
        response = client_as(world, role).get(reverse("mediation:case_detail", args=[world.case.public_id]))
        answers[role] = answer(response)
        if response.status_code == 200:
            assert 'id="history-h"' in response.content.decode()
            histories[role] = [event.id for event in _history(response) if "room" not in event.details]
        assert secrets_in(response.content.decode()) == set(), role
    assert answers == CASE_PAGE
    # The case's own story (filing, invitations, undertakings, the draft's versions): everyone in it.
    assert histories == {role: case_rows for role, code in CASE_PAGE.items() if code == 200}


# Whose History (the case page's audit log) shows what happened in which
# room (sessions, admissions, documents shared, consents, exports): the
# room's members only. That the respondent shared a document with the
# mediator in their caucus, or consented there, is the respondent's own.
HISTORY_ROOMS = {
    "claimant": {"joint", "claimant_caucus"},
    "respondent": {"joint", "respondent_caucus"},
    "representative": {"joint", "respondent_caucus"},
    "mediator": {"joint", "claimant_caucus", "respondent_caucus"},
    "observer": {"joint"},
}


def test_when_something_happens_in_a_caucus_then_only_its_members_see_it_in_the_case_history(world):
    caucus = world.rooms["respondent_caucus"]
    transcripts.transcript_consent(room=caucus, user=world.user("respondent"), consent=True)
    name_of = {str(room.public_id): name for name, room in world.rooms.items()}
    seen = {}
    for role in IN_CASE:
        response = client_as(world, role).get(reverse("mediation:case_detail", args=[world.case.public_id]))
        seen[role] = {name_of[event.details["room"]] for event in _history(response) if "room" in event.details}
    assert seen == HISTORY_ROOMS


def test_room_pages_and_the_messages_on_them_answer_as_the_tables_say(world):
    answers, carried = {}, {}
    for room_name, room in world.rooms.items():
        answers[room_name], carried[room_name] = {}, set()
        for role in ROLES:
            response = client_as(world, role).get(reverse("mediation:room", args=[room.public_id]))
            answers[room_name][role] = answer(response)
            seen = secrets_in(response.content.decode())
            if response.status_code == 200:
                events = room_config(response)["events"]
                if SECRET[room_name] in message_bodies(events):
                    carried[room_name].add(role)
                    assert DOC_NAME[room_name] in document_names(events), (room_name, role)
                # Nothing of any other room, nor the draft, on this room's page.
                assert seen <= {SECRET[room_name], DOC_NAME[room_name]}, (room_name, role, seen)
            else:
                assert seen == set(), (room_name, role, seen)
    assert answers == ROOM_PAGE
    assert carried == MESSAGE_ON_PAGE


def test_room_document_downloads_answer_as_the_table_says(world):
    answers = {}
    for room_name, room in world.rooms.items():
        document = world.documents[room_name]
        url = reverse("mediation:room_document", args=[room.public_id, document.public_id])
        answers[room_name] = {}
        for role in ROLES:
            response = client_as(world, role).get(url)
            answers[room_name][role] = answer(response)
            body = b"".join(response.streaming_content) if response.streaming else response.content
            if response.status_code == 200:
                assert body == DOC_BYTES[room_name]
                assert response["Content-Disposition"].startswith("attachment")
                assert DOC_NAME[room_name] in response["Content-Disposition"]
            else:
                assert DOC_BYTES[room_name] not in body
    assert answers == DOCUMENT_DOWNLOAD


def test_room_document_uploads_answer_as_the_table_says(world):
    answers = {}
    for room_name, room in world.rooms.items():
        url = reverse("mediation:room_documents", args=[room.public_id])
        answers[room_name] = {}
        for role in ROLES:
            before = RoomDocument.objects.count()
            upload = SimpleUploadedFile(f"from-{role}.txt", f"shared by the {role}\n".encode(), "text/plain")
            response = client_as(world, role).post(url, {"file": upload})
            answers[room_name][role] = answer(response)
            assert RoomDocument.objects.count() - before == (1 if response.status_code == 201 else 0), role
            if response.status_code == 201:
                assert RoomDocument.objects.get(public_id=response.json()["document"]["id"]).room == room
    assert answers == DOCUMENT_UPLOAD


def test_draft_agreement_page_answers_as_the_table_says(world):
    url = reverse("agreements:draft", args=[world.case.public_id])
    answers = {}
    for role in ROLES:
        response = client_as(world, role).get(url)
        answers[role] = answer(response)
        shown = DRAFT_TEXT in response.content.decode()
        assert shown == (response.status_code == 200), role
    assert answers == DRAFT_VIEW


def test_draft_agreement_post_answers_as_the_table_says(world):
    url = reverse("agreements:draft", args=[world.case.public_id])
    answers = {}
    for role in ROLES:
        before = Draft.objects.filter(case=world.case).count()
        response = client_as(world, role).post(
            url, {"layout": world.case.language, f"{world.case.language}.terms": f"A new version written by the {role}."}
        )
        outcome = answer(response)
        answers[role] = "saved" if outcome == f"→ {url}" else outcome
        saved = Draft.objects.filter(case=world.case).count() - before
        assert saved == (1 if answers[role] == "saved" else 0), role
    assert answers == DRAFT_POST
    latest = Draft.objects.filter(case=world.case).first()
    assert (latest.version, latest.created_by) == (2, world.user("mediator"))


def test_transcript_consents_answer_as_the_table_says(world):
    answers = {}
    for room_name, room in world.rooms.items():
        url = reverse("mediation:transcript_consent", args=[room.public_id])
        back = f"→ {reverse('mediation:room', args=[room.public_id])}"
        answers[room_name] = {}
        for role in ROLES:
            before = room.events.filter(kind=EventKind.CONSENT_GIVEN).count()
            outcome = answer(client_as(world, role).post(url, {"consent": "1"}))
            recorded = room.events.filter(kind=EventKind.CONSENT_GIVEN).count() - before
            if outcome == back:
                outcome = "consented" if recorded == 1 else "refused"
            else:
                assert recorded == 0, (room_name, role)
            answers[room_name][role] = outcome
    assert answers == TRANSCRIPT_CONSENT


# Withdrawing consent (POST .../transcript/consent/ with consent=0) after the
# session ended and the caucuses closed: the party who gave it, still.
TRANSCRIPT_WITHDRAW = {
    "joint": {
        "claimant": "withdrawn", "respondent": "withdrawn", "representative": "refused",
        "mediator": "refused", "observer": "refused",
        "other_mediator": 404, "court_user": 404, "admin": 404, "stranger": 404, "anonymous": LOGIN,
    },
    "claimant_caucus": {
        "claimant": "withdrawn", "respondent": 404, "representative": 404, "mediator": "refused", "observer": 404,
        "other_mediator": 404, "court_user": 404, "admin": 404, "stranger": 404, "anonymous": LOGIN,
    },
    "respondent_caucus": {
        "claimant": 404, "respondent": "withdrawn", "representative": "refused", "mediator": "refused",
        "observer": 404,
        "other_mediator": 404, "court_user": 404, "admin": 404, "stranger": 404, "anonymous": LOGIN,
    },
}


def test_transcript_consent_withdrawals_answer_as_the_table_says(world):
    consent_everywhere(world)
    _end_session(world)
    answers = {}
    for room_name, room in world.rooms.items():
        url = reverse("mediation:transcript_consent", args=[room.public_id])
        back = f"→ {reverse('mediation:room', args=[room.public_id])}"
        answers[room_name] = {}
        for role in ROLES:
            before = room.events.filter(kind=EventKind.CONSENT_WITHDRAWN).count()
            outcome = answer(client_as(world, role).post(url, {"consent": "0"}))
            recorded = room.events.filter(kind=EventKind.CONSENT_WITHDRAWN).count() - before
            if outcome == back:
                outcome = "withdrawn" if recorded == 1 else "refused"
            else:
                assert recorded == 0, (room_name, role)
            answers[room_name][role] = outcome
    assert answers == TRANSCRIPT_WITHDRAW
    assert {name: transcripts.all_parties_consent(room) for name, room in world.rooms.items()} == {
        name: False for name in ROOMS
    }


def _pdf_text(data: bytes) -> str:
    from pypdf import PdfReader

    return " ".join(" ".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages).split())


def test_transcript_exports_answer_as_the_table_says(world):
    consent_everywhere(world)
    clients = {}
    for role in ROLES:
        clients[role] = client_as(world, role)
        if role != "anonymous":
            reauthenticate(clients[role])
    answers = {}
    for room_name, room in world.rooms.items():
        url = reverse("mediation:transcript_export", args=[room.public_id])
        back = f"→ {reverse('mediation:room', args=[room.public_id])}"
        answers[room_name] = {}
        for role in ROLES:
            response = clients[role].post(url)
            outcome = answer(response)
            if response.status_code == 200:
                assert response["Content-Type"] == "application/pdf"
                text = _pdf_text(response.content)
                # This room's conversation, and nothing of the other rooms.
                assert SECRET[room_name] in text
                assert secrets_in(text) <= {SECRET[room_name], DOC_NAME[room_name]}, secrets_in(text)
                outcome = "pdf"
            elif outcome == back:
                outcome = "refused"
            answers[room_name][role] = outcome
    assert answers == TRANSCRIPT_EXPORT
    exported = AuditEvent.objects.filter(action=AuditAction.TRANSCRIPT_EXPORTED).order_by("id")
    assert [(e.actor, e.details["room"]) for e in exported] == [
        (world.user("mediator"), str(world.rooms[name].public_id)) for name in ROOMS
    ]


def test_when_not_every_party_consented_then_even_the_mediator_gets_no_transcript(world):
    room = world.rooms["joint"]
    client = client_as(world, "mediator")
    reauthenticate(client)
    url = reverse("mediation:transcript_export", args=[room.public_id])
    back = f"→ {reverse('mediation:room', args=[room.public_id])}"
    assert answer(client.post(url)) == back  # nobody consented
    transcripts.transcript_consent(room=room, user=world.user("claimant"), consent=True)
    assert answer(client.post(url)) == back  # the respondent has not
    transcripts.transcript_consent(room=room, user=world.user("respondent"), consent=True)
    transcripts.transcript_consent(room=room, user=world.user("respondent"), consent=False)
    assert answer(client.post(url)) == back  # withdrawn
    assert not AuditEvent.objects.filter(action=AuditAction.TRANSCRIPT_EXPORTED).exists()
    transcripts.transcript_consent(room=room, user=world.user("respondent"), consent=True)
    assert client.post(url).status_code == 200


def test_when_mediator_has_not_reauthenticated_then_export_asks_for_the_password_first(world):
    consent_everywhere(world)
    room = world.rooms["joint"]
    client = client_as(world, "mediator")  # force_login: no recent authentication
    response = client.post(reverse("mediation:transcript_export", args=[room.public_id]))
    assert answer(response) == REAUTH
    assert not AuditEvent.objects.filter(action=AuditAction.TRANSCRIPT_EXPORTED).exists()


# Placing a legal hold (POST /cases/<id>/legal-hold/ with a reason): administrators only.
LEGAL_HOLD_POST = {
    "claimant": 404, "respondent": 404, "representative": 404, "mediator": 404, "observer": 404,
    "other_mediator": 404, "court_user": 404, "admin": "placed", "stranger": 404, "anonymous": LOGIN,
}


def test_placing_a_legal_hold_answers_as_the_table_says(world):
    url = reverse("mediation:legal_hold", args=[world.case.public_id])
    answers = {}
    for role in [r for r in ROLES if r != "admin"] + ["admin"]:
        outcome = answer(client_as(world, role).post(url, {"reason": "Pending appeal in the city court."}))
        answers[role] = "placed" if outcome == f"→ {url}" else outcome
    assert answers == LEGAL_HOLD_POST
    hold = retention.legal_hold_in_force(world.case)
    assert hold.placed_by == world.user("admin")
    assert AuditEvent.objects.filter(action=AuditAction.LEGAL_HOLD_PLACED).count() == 1


@pytest.mark.parametrize(
    ("url_name", "table"), [("mediation:legal_hold", LEGAL_HOLD_PAGE), ("mediation:break_glass", BREAK_GLASS_PAGE)]
)
def test_administrators_case_pages_answer_as_the_table_says(world, url_name, table):
    url = reverse(url_name, args=[world.case.public_id])
    answers = {}
    for role in ROLES:
        client = client_as(world, role)
        if role != "anonymous":
            reauthenticate(client)
        response = client.get(url)
        answers[role] = answer(response)
        assert secrets_in(response.content.decode()) == set(), role  # nothing read without a reason
    assert answers == table


def test_admin_audit_log_answers_as_the_table_says_and_carries_no_content(world):
    answers = {}
    for role in ROLES:
        response = client_as(world, role).get("/admin/odr/auditevent/")
        outcome = answer(response)
        answers[role] = "admin login" if outcome == "→ /admin/login/" else outcome
    assert answers == ADMIN_AUDIT_LOG
    # What the administrator reads there (the list, each row of the case) and
    # on the case's admin page: metadata, never what was said or shared.
    admin = client_as(world, "admin")
    pages = [
        "/admin/odr/auditevent/",
        reverse("admin:mediation_case_changelist"),
        reverse("admin:mediation_case_change", args=[world.case.pk]),
    ]
    pages += [
        f"/admin/odr/auditevent/{pk}/change/"
        for pk in AuditEvent.objects.filter(object_id=str(world.case.public_id)).values_list("pk", flat=True)
    ]
    for page in pages:
        response = admin.get(page)
        assert response.status_code == 200, page
        assert secrets_in(response.content.decode()) == set(), page
    # Room content has no admin pages at all.
    for model in (RoomEvent, RoomDocument, Draft, BreakGlassAccess):
        page = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
        assert admin.get(page).status_code == 404, page


# --- The matrix over the room WebSocket --------------------------------------------------------------

# Opening the room's socket: members get `welcome`; the rest are closed
# before any frame, with the same code as for a room that does not exist (4403).
SOCKET = {
    "joint": {
        "claimant": "welcome", "respondent": "welcome", "representative": "welcome", "mediator": "welcome",
        "observer": "welcome",
        "other_mediator": 4403, "court_user": 4403, "admin": 4403, "stranger": 4403, "anonymous": 4401,
    },
    "claimant_caucus": {
        "claimant": "welcome", "respondent": 4403, "representative": 4403, "mediator": "welcome", "observer": 4403,
        "other_mediator": 4403, "court_user": 4403, "admin": 4403, "stranger": 4403, "anonymous": 4401,
    },
    "respondent_caucus": {
        "claimant": 4403, "respondent": "welcome", "representative": "welcome", "mediator": "welcome",
        "observer": 4403,
        "other_mediator": 4403, "court_user": 4403, "admin": 4403, "stranger": 4403, "anonymous": 4401,
    },
}

# Whose `resume` and `history` frames carry the room's message and document.
MESSAGE_ON_SOCKET = MESSAGE_ON_PAGE

# `message.send`: an `ack` for those who speak; observers get `error` `forbidden`.
SOCKET_POST = {
    "joint": {
        "claimant": "ack", "respondent": "ack", "representative": "ack", "mediator": "ack", "observer": "forbidden",
        "other_mediator": 4403, "court_user": 4403, "admin": 4403, "stranger": 4403, "anonymous": 4401,
    },
    "claimant_caucus": {
        "claimant": "ack", "respondent": 4403, "representative": 4403, "mediator": "ack", "observer": 4403,
        "other_mediator": 4403, "court_user": 4403, "admin": 4403, "stranger": 4403, "anonymous": 4401,
    },
    "respondent_caucus": {
        "claimant": 4403, "respondent": "ack", "representative": "ack", "mediator": "ack", "observer": 4403,
        "other_mediator": 4403, "court_user": 4403, "admin": 4403, "stranger": 4403, "anonymous": 4401,
    },
}

# Moderation frames (`participant.mute`, `room.lock`, `message.redact`): the
# mediator ("done": the room's event follows); any other member `forbidden`.
SOCKET_MODERATE = {
    "joint": {
        "claimant": "forbidden", "respondent": "forbidden", "representative": "forbidden", "mediator": "done",
        "observer": "forbidden",
        "other_mediator": 4403, "court_user": 4403, "admin": 4403, "stranger": 4403, "anonymous": 4401,
    },
    "claimant_caucus": {
        "claimant": "forbidden", "respondent": 4403, "representative": 4403, "mediator": "done", "observer": 4403,
        "other_mediator": 4403, "court_user": 4403, "admin": 4403, "stranger": 4403, "anonymous": 4401,
    },
    "respondent_caucus": {
        "claimant": 4403, "respondent": "forbidden", "representative": "forbidden", "mediator": "done",
        "observer": 4403,
        "other_mediator": 4403, "court_user": 4403, "admin": 4403, "stranger": 4403, "anonymous": 4401,
    },
}

# The member each moderation frame acts on: the room's party (the claimant in the joint room).
TARGET = {"joint": "claimant", "claimant_caucus": "claimant", "respondent_caucus": "respondent"}


def _moderation_frames(target: Participant, seq: int) -> list[tuple[dict, str, dict | None]]:
    """(frame, the room event it makes, the frame that undoes it)."""
    who = str(target.public_id)
    return [
        (
            {"type": "participant.mute", "participant": who}, "muted",
            {"type": "participant.unmute", "participant": who},
        ),
        ({"type": "room.lock"}, "locked", {"type": "room.unlock"}),
        ({"type": "message.redact", "seq": seq}, "redacted", None),
    ]


async def _socket_visit(world: World, role: str, room_name: str) -> dict:
    """What one role's socket to the room gets: the socket's answer, whether
    the room's content reaches it, and what posting and moderating get."""
    room = world.rooms[room_name]
    user = None if role == "anonymous" else world.user(role)
    async with connect(user, room) as socket:
        assert socket.connected, socket.connect_code
        first = await socket.next()
        if first["type"] == CLOSE:
            assert socket.received == [], (role, socket.received)  # not even a `welcome`
            return {"socket": first["code"], "reads": False, "post": first["code"], "moderate": first["code"]}
        assert first["type"] == "welcome", first
        assert first["you"]["admitted"], (role, first)
        last = await db(lambda: Room.objects.get(pk=room.pk).last_seq)()
        backlog = await socket.resume(0, last)
        await socket.send({"type": "history", "before_seq": last + 1})
        history = (await socket.wait_for(lambda f: f["type"] == "history"))["events"]
        frames = backlog + history
        reads = SECRET[room_name] in message_bodies(frames) and DOC_NAME[room_name] in document_names(frames)

        client_id = new_client_id()
        await socket.send(send_frame(f"The {role} speaks in the {room_name}.", client_id))
        reply = await socket.wait_for(lambda f: f["type"] in ("ack", "error"))
        post = "ack" if reply["type"] == "ack" else reply["code"]
        own_seq = reply.get("seq", 1)  # what a redaction would remove: the visitor's own message
        stored = await db(lambda: RoomEvent.objects.filter(room=room, client_id=client_id).count())()
        assert stored == (1 if post == "ack" else 0), role

        target = world.participants[TARGET[room_name]]
        outcomes = set()
        for frame, kind, undo in _moderation_frames(target, own_seq):
            await socket.send(frame)
            reply = await socket.wait_for(
                lambda f, kind=kind: f["type"] == "error" or (f["type"] == "event" and f["kind"] == kind)
            )
            if reply["type"] == "error":
                outcomes.add(reply["code"])
                continue
            outcomes.add("done")
            if undo is not None:
                await socket.send(undo)
                await socket.wait_for(lambda f, undone="un" + kind: f["type"] == "event" and f["kind"] == undone)
        assert len(outcomes) == 1, (role, outcomes)
        # Nothing of the other rooms, nor the draft, ever reached this socket.
        received = json.dumps(socket.received, ensure_ascii=False)
        elsewhere = secrets_in(received) - {SECRET[room_name], DOC_NAME[room_name]}
        assert elsewhere == set(), (role, elsewhere)
        return {"socket": "welcome", "reads": reads, "post": post, "moderate": outcomes.pop()}


@pytest.mark.django_db(transaction=True)
async def test_room_sockets_answer_as_the_tables_say(people, active_case, origin):
    world = await db(build_world)(active_case, people, origin)
    seen = {name: {role: await _socket_visit(world, role, name) for role in ROLES} for name in ROOMS}

    def column(key):
        return {name: {role: seen[name][role][key] for role in ROLES} for name in ROOMS}

    assert column("socket") == SOCKET
    assert {name: {role for role in ROLES if seen[name][role]["reads"]} for name in ROOMS} == MESSAGE_ON_SOCKET
    assert column("post") == SOCKET_POST
    assert column("moderate") == SOCKET_MODERATE


# --- Guessed and enumerated ids reveal nothing ---------------------------------------------------------


@pytest.fixture
def other_world(other_case, origin) -> dict:
    """Another active case with a room, a document and a draft of its own."""
    case, mediator = other_case.case, other_case.mediator
    joint = rooms.room_joint(case)
    rooms.session_start(room=joint, user=mediator)
    document = room_documents.document_share(
        room=joint, user=mediator, origin=origin,
        upload=SimpleUploadedFile("other.txt", b"other case\n", "text/plain"),
    )
    agreements.draft_save(case=case, user=mediator, terms="The other case's draft.", origin=origin)
    return {"case": case, "room": joint, "document": document}


def _id(world: World, other: dict, placeholder: str, source: str):
    """A real id: of this case (its rooms and their documents, by room name)
    or of the other case ("other")."""
    if source == "other":
        return {"case": other["case"], "room": other["room"], "doc": other["document"]}[placeholder].public_id
    return {"case": world.case, "room": world.rooms[source], "doc": world.documents[source]}[placeholder].public_id


def _normalised(response, *ids) -> str:
    """The page with the ids asked for and the per-request CSRF tokens taken out."""
    body = response.content.decode()
    for value in ids:
        body = body.replace(str(value), "ID")
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", body)


JOINT, CLAIMANT_CAUCUS, RESPONDENT_CAUCUS, OTHER = "joint", "claimant_caucus", "respondent_caucus", "other"

# (who asks, method, URL, where each real id comes from). The last id of
# the URL is the guess: a real one the asker may not know about must get
# exactly what a random one gets.
GUESSES = [
    ("claimant", "get", "/cases/{case}/", {"case": OTHER}),
    ("stranger", "get", "/cases/{case}/", {"case": JOINT}),
    ("mediator", "get", "/cases/{case}/agreement/draft/", {"case": OTHER}),
    ("court_user", "get", "/cases/{case}/agreement/draft/", {"case": JOINT}),
    ("claimant", "post", "/cases/{case}/agreement/draft/", {"case": OTHER}),
    ("claimant", "get", "/cases/{case}/undertaking/", {"case": OTHER}),
    ("claimant", "post", "/cases/{case}/contacts/", {"case": OTHER}),
    ("mediator", "get", "/cases/{case}/legal-hold/", {"case": OTHER}),
    ("claimant", "get", "/rooms/{room}/", {"room": OTHER}),
    ("mediator", "get", "/rooms/{room}/", {"room": OTHER}),
    ("respondent", "get", "/rooms/{room}/", {"room": CLAIMANT_CAUCUS}),
    ("representative", "get", "/rooms/{room}/", {"room": CLAIMANT_CAUCUS}),
    ("observer", "get", "/rooms/{room}/", {"room": RESPONDENT_CAUCUS}),
    ("admin", "get", "/rooms/{room}/", {"room": JOINT}),
    ("other_mediator", "get", "/rooms/{room}/", {"room": JOINT}),
    # Documents: through their own room, and through a room the asker is in.
    ("respondent", "get", "/rooms/{room}/documents/{doc}/", {"room": CLAIMANT_CAUCUS, "doc": CLAIMANT_CAUCUS}),
    ("respondent", "get", "/rooms/{room}/documents/{doc}/", {"room": JOINT, "doc": CLAIMANT_CAUCUS}),
    ("claimant", "get", "/rooms/{room}/documents/{doc}/", {"room": JOINT, "doc": OTHER}),
    ("claimant", "get", "/rooms/{room}/documents/{doc}/", {"room": OTHER, "doc": OTHER}),
    ("admin", "get", "/rooms/{room}/documents/{doc}/", {"room": JOINT, "doc": JOINT}),
    ("stranger", "get", "/rooms/{room}/documents/{doc}/", {"room": RESPONDENT_CAUCUS, "doc": RESPONDENT_CAUCUS}),
    # Writes to rooms of others.
    ("claimant", "post", "/rooms/{room}/documents/", {"room": OTHER}),
    ("respondent", "post", "/rooms/{room}/documents/", {"room": CLAIMANT_CAUCUS}),
    ("claimant", "post", "/rooms/{room}/transcript/consent/", {"room": RESPONDENT_CAUCUS}),
    ("mediator", "post", "/rooms/{room}/transcript/", {"room": OTHER}),
]


def test_when_ids_are_guessed_then_every_answer_is_the_same_as_not_found(world, other_world):
    clients = {}
    differences = {}
    for role, method, template, sources in GUESSES:
        if role not in clients:
            clients[role] = client_as(world, role)
            reauthenticate(clients[role])  # the transcript export asks for it before anything else
        client = clients[role]
        real = {name: _id(world, other_world, name, source) for name, source in sources.items()}
        guessed = re.findall(r"{(\w+)}", template)[-1]
        fake = {**real, guessed: uuid.uuid4()}
        responses = []
        for ids in (real, fake):
            sharing = template.endswith("documents/")
            data = {"file": SimpleUploadedFile("x.txt", b"x\n", "text/plain")} if sharing else {}
            responses.append(getattr(client, method)(template.format(**ids), data))
        real_response, fake_response = responses
        seen = (
            real_response.status_code,
            fake_response.status_code,
            _normalised(real_response, *real.values()) == _normalised(fake_response, *fake.values()),
            secrets_in(real_response.content.decode()),
        )
        if seen != (404, 404, True, set()):
            differences[(role, method, template, str(sources))] = seen
    assert differences == {}
    assert not RoomDocument.objects.filter(size=2).exists()  # no "x\n" was shared anywhere


MALFORMED = ["/cases/1/", "/cases/not-a-case/", "/rooms/42/", "/rooms/%27%20OR%201=1/",
             "/cases/{case}x/agreement/draft/", "/rooms/{room}/documents/1/", "/rooms/{room}/documents/{room}/"]


def test_when_ids_are_malformed_then_every_answer_is_the_same_as_not_found(world):
    client = client_as(world, "claimant")
    ids = {"case": world.case.public_id, "room": world.rooms["joint"].public_id}

    def page(path):
        response = client.get(path)
        # Pages differ only by the path echoed in the language switcher's `next`.
        return response.status_code, re.sub(r'name="next" value="[^"]*"', "", _normalised(response))

    not_found = page(f"/cases/{uuid.uuid4()}/")
    assert not_found[0] == 404
    answers = {path: page(path.format(**ids)) for path in MALFORMED}
    assert answers == {path: not_found for path in MALFORMED}


@pytest.mark.django_db(transaction=True)
async def test_when_a_room_id_is_guessed_then_the_socket_closes_as_for_no_room(
    people, active_case, origin, other_case
):
    """Another case's room, another party's caucus, a random UUID: all 4403,
    nothing sent first. (A malformed id, which cannot name any room, is 4404.)"""
    world = await db(build_world)(active_case, people, origin)
    other_joint = await db(rooms.room_joint)(other_case.case)
    guesses = {
        ("claimant", "random room"): uuid.uuid4(),
        ("claimant", "other case's joint room"): other_joint.public_id,
        ("mediator", "other case's joint room"): other_joint.public_id,
        ("claimant", "respondent's caucus"): world.rooms["respondent_caucus"].public_id,
        ("representative", "claimant's caucus"): world.rooms["claimant_caucus"].public_id,
        ("admin", "joint room"): world.rooms["joint"].public_id,
        ("claimant", "a document id as a room id"): world.documents["joint"].public_id,
        ("claimant", "a message id as a room id"): await db(
            lambda: RoomEvent.objects.filter(room=world.rooms["joint"], kind="message").first().public_id
        )(),
        ("claimant", "malformed"): "not-a-room",
    }
    codes = {}
    for (role, what), room_id in guesses.items():
        async with connect(world.user(role), f"/ws/rooms/{room_id}/") as socket:
            assert socket.connected
            frame = await socket.next()
            assert frame["type"] == CLOSE and socket.received == [], (what, frame)
            codes[(role, what)] = frame["code"]
    assert codes == {key: (4404 if key[1] == "malformed" else 4403) for key in guesses}


# --- Administrators: no content by default; break-glass -------------------------------------------------

REASON = "Court order 2-1234/2026 of the Astana City Civil Court requires the case file."


def _break_glass_mails(outbox) -> list:
    return [message for message in outbox if REASON in message.body]


def test_when_admin_has_not_reauthenticated_then_break_glass_asks_for_the_password_first(world):
    client = client_as(world, "admin")  # force_login: no recent authentication
    url = reverse("mediation:break_glass", args=[world.case.public_id])
    assert answer(client.get(url)) == REAUTH
    assert answer(client.post(url, {"reason": REASON})) == REAUTH
    # A case that does not exist is not found before any prompt.
    assert answer(client.get(reverse("mediation:break_glass", args=[uuid.uuid4()]))) == 404
    assert not BreakGlassAccess.objects.exists()
    assert not AuditEvent.objects.filter(action=AuditAction.BREAK_GLASS_OPENED).exists()


def test_when_admin_gives_too_short_a_reason_then_refused_with_a_translated_error(world, run_jobs, outbox):
    from django.utils.html import escape

    admin = world.user("admin")
    client = client_as(world, "admin")
    reauthenticate(client)
    url = reverse("mediation:break_glass", args=[world.case.public_id])
    response = client.post(url, {"reason": "  need   it  "})
    assert response.status_code == 200
    with translation.override(admin.preferred_language):
        expected = gettext("Explain in at least 20 characters why you need to read this case's content.")
    assert escape(expected) in response.content.decode()
    assert secrets_in(response.content.decode()) == set()
    assert not BreakGlassAccess.objects.exists()
    assert not AuditEvent.objects.filter(
        action__in=[AuditAction.BREAK_GLASS_OPENED, AuditAction.BREAK_GLASS_VIEWED]
    ).exists()
    run_jobs()
    assert [m for m in outbox if "break-glass" in m.body.lower()] == []


def test_when_admin_opens_break_glass_then_mediator_told_access_audited_and_content_shown_until_it_expires(
    world, run_jobs, outbox, settings
):
    admin, mediator = world.user("admin"), world.user("mediator")
    url = reverse("mediation:break_glass", args=[world.case.public_id])
    client = client_as(world, "admin")
    reauthenticate(client)

    form = client.get(url)
    assert form.status_code == 200
    assert secrets_in(form.content.decode()) == set()  # nothing is read before the reason is given

    opened_at = timezone.now()
    assert answer(client.post(url, {"reason": REASON})) == f"→ {url}"
    access = BreakGlassAccess.objects.get()
    assert (access.case, access.user, access.reason) == (world.case, admin, REASON)
    expected_end = opened_at + datetime.timedelta(minutes=settings.ODR_BREAK_GLASS_MINUTES)
    assert abs((access.expires_at - expected_end).total_seconds()) < 60
    opened = AuditEvent.objects.get(action=AuditAction.BREAK_GLASS_OPENED)
    assert (opened.actor, opened.object_id, opened.details["reason"]) == (admin, str(world.case.public_id), REASON)

    # The case's mediator, and only the mediator, is told by email.
    run_jobs()
    mails = _break_glass_mails(outbox)
    assert [m.to for m in mails] == [[mediator.email]]
    assert world.case.reference in mails[0].subject
    assert admin.email in mails[0].body

    # While in force: every room's messages and documents' names, each reading audited.
    page = client.get(url)
    assert page.status_code == 200
    assert {*SECRET.values(), *DOC_NAME.values()} <= secrets_in(page.content.decode())
    assert AuditEvent.objects.filter(action=AuditAction.BREAK_GLASS_VIEWED, actor=admin).count() == 1
    client.get(url)
    assert AuditEvent.objects.filter(action=AuditAction.BREAK_GLASS_VIEWED, actor=admin).count() == 2

    # Break-glass is read on its own page only: the rooms stay closed to the admin.
    for name in ROOMS:
        assert client.get(reverse("mediation:room", args=[world.rooms[name].public_id])).status_code == 404
        document = world.documents[name]
        assert client.get(
            reverse("mediation:room_document", args=[world.rooms[name].public_id, document.public_id])
        ).status_code == 404

    # Once it expires: the form again, nothing shown, nothing audited as read.
    with time_machine.travel(access.expires_at + datetime.timedelta(minutes=1), tick=False):
        client = client_as(world, "admin")  # the idle session has lapsed meanwhile
        reauthenticate(client)
        page = client.get(url)
        assert page.status_code == 200
        assert secrets_in(page.content.decode()) == set()
        assert 'name="reason"' in page.content.decode()
    assert AuditEvent.objects.filter(action=AuditAction.BREAK_GLASS_VIEWED).count() == 2


def test_when_anyone_but_an_administrator_asks_for_break_glass_then_not_found_and_nothing_opened(
    world, run_jobs, outbox
):
    url = reverse("mediation:break_glass", args=[world.case.public_id])
    random_id = uuid.uuid4()
    random_url = reverse("mediation:break_glass", args=[random_id])
    answers = {}
    for role in ROLES:
        if role in ("admin", "anonymous"):
            continue
        client = client_as(world, role)
        reauthenticate(client)
        for method, data in (("get", {}), ("post", {"reason": REASON})):
            response = getattr(client, method)(url, data)
            random = getattr(client, method)(random_url, data)
            same = _normalised(response, world.case.public_id) == _normalised(random, random_id)
            answers[(role, method)] = (response.status_code, random.status_code, same)
    assert answers == {key: (404, 404, True) for key in answers}
    assert len(answers) == 16
    assert not BreakGlassAccess.objects.exists()
    assert not AuditEvent.objects.filter(action=AuditAction.BREAK_GLASS_OPENED).exists()
    run_jobs()
    assert _break_glass_mails(outbox) == []


# --- The undertaking comes before any room -------------------------------------------------------------


@pytest.fixture
def case_before_undertakings(accepted_case, party_a, party_b, mediator, origin) -> Case:
    """An active case whose people accepted the agreement to mediate but
    not (yet) the confidentiality undertaking."""
    for user in (party_a, party_b, mediator):
        accept_atm(accepted_case, user, origin)
    accepted_case.refresh_from_db()
    assert accepted_case.status == CaseStatus.ACTIVE
    assert not accepted_case.undertakings.exists()
    return accepted_case


WHO = {"claimant": "party_a", "respondent": "party_b", "mediator": "mediator"}


@pytest.mark.parametrize("role", ["claimant", "respondent", "mediator"])
def test_when_someone_has_not_accepted_the_undertaking_then_no_room_opens_until_they_do(
    request, case_before_undertakings, role
):
    case = case_before_undertakings
    user = request.getfixturevalue(WHO[role])
    others = [request.getfixturevalue(WHO[r]) for r in WHO if r != role]
    for other in others:
        accept_undertaking(case, other)
    mediator = request.getfixturevalue("mediator")
    joint = rooms.room_joint(case)
    if role != "mediator":
        rooms.session_start(room=joint, user=mediator)
        rooms.message_post(room=joint, user=mediator, client_id=uuid.uuid4(), body=SECRET["joint"])
    else:
        # A mediator bound by no undertaking cannot even start the session.
        with pytest.raises(rooms.RoomRefused):
            rooms.session_start(room=joint, user=mediator)
        assert not policy.can(mediator, "room.moderate", joint)

    client = Client()
    client.force_login(user)
    room_url = reverse("mediation:room", args=[joint.public_id])
    undertaking_url = reverse("mediation:undertaking", args=[case.public_id])
    response = client.get(room_url)
    assert response.status_code == 302
    assert response["Location"] == f"{undertaking_url}?next={room_url.replace('/', '%2F')}"
    assert client.get(reverse("mediation:case_detail", args=[case.public_id])).status_code == 200
    # The draft agreement is not shown either: its pages send them to the undertaking first.
    draft_url = reverse("agreements:draft", args=[case.public_id])
    detour = client.get(draft_url)
    assert detour.status_code == 302
    assert detour["Location"] == f"{undertaking_url}?next={draft_url.replace('/', '%2F')}"

    # Accepting it on its page (the exact text shown, by its digest) opens the room.
    page = client.get(response["Location"])
    assert page.status_code == 200
    accepted = client.post(
        response["Location"],
        {"consent": "1", "text_sha256": page.context["text_sha256"], "next": page.context["next"]},
        HTTP_USER_AGENT="matrix-browser/1.0", REMOTE_ADDR="198.51.100.9",
    )
    assert answer(accepted) == f"→ {room_url}"
    undertaking = case.undertakings.get(user=user)
    assert (undertaking.ip, undertaking.user_agent) == ("198.51.100.9", "matrix-browser/1.0")
    assert AuditEvent.objects.filter(action=AuditAction.UNDERTAKING_ACCEPTED, actor=user).count() == 1
    assert client.get(room_url).status_code == 200


def test_when_the_undertaking_is_not_ticked_then_nothing_is_recorded(case_before_undertakings, party_a):
    case = case_before_undertakings
    client = Client()
    client.force_login(party_a)
    url = reverse("mediation:undertaking", args=[case.public_id])
    page = client.get(url)
    response = client.post(url, {"text_sha256": page.context["text_sha256"]})
    assert response.status_code == 200
    assert not case.undertakings.exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("role", ["claimant", "mediator"])
async def test_when_someone_has_not_accepted_the_undertaking_then_the_socket_closes_4403(
    request, case_before_undertakings, role
):
    case = case_before_undertakings
    user = request.getfixturevalue(WHO[role])
    for other, fixture in WHO.items():
        if other != role:
            await db(accept_undertaking)(case, request.getfixturevalue(fixture))
    joint = await db(rooms.room_joint)(case)
    async with connect(user, joint) as socket:
        frame = await socket.next()
        assert frame == {"type": CLOSE, "code": 4403} and socket.received == []
    await db(accept_undertaking)(case, user)
    async with enter(user, joint, resume=False) as socket:
        assert socket.welcome["you"]["mediator"] is (role == "mediator")


# --- After the case ends ---------------------------------------------------------------------------------

# The room pages once the case closed: members see that it closed and when
# its content goes ("closed"), never the content; the rest still get 404.
ROOM_PAGE_CLOSED = {
    "joint": {
        "claimant": "closed", "respondent": "closed", "representative": "closed", "mediator": "closed",
        "observer": "closed",
        "other_mediator": 404, "court_user": 404, "admin": 404, "stranger": 404, "anonymous": LOGIN,
    },
    "claimant_caucus": {
        "claimant": "closed", "respondent": 404, "representative": 404, "mediator": "closed", "observer": 404,
        "other_mediator": 404, "court_user": 404, "admin": 404, "stranger": 404, "anonymous": LOGIN,
    },
    "respondent_caucus": {
        "claimant": 404, "respondent": "closed", "representative": "closed", "mediator": "closed",
        "observer": 404,
        "other_mediator": 404, "court_user": 404, "admin": 404, "stranger": 404, "anonymous": LOGIN,
    },
}
# Its documents: nobody downloads them any more.
DOCUMENT_DOWNLOAD_CLOSED = {role: (LOGIN if role == "anonymous" else 404) for role in ROLES}
# The sockets: members are told the room is closed (4409); the rest, as ever, 4403.
SOCKET_CLOSED = {
    "joint": {
        "claimant": 4409, "respondent": 4409, "representative": 4409, "mediator": 4409, "observer": 4409,
        "other_mediator": 4403, "court_user": 4403, "admin": 4403, "stranger": 4403, "anonymous": 4401,
    },
    "claimant_caucus": {
        "claimant": 4409, "respondent": 4403, "representative": 4403, "mediator": 4409, "observer": 4403,
        "other_mediator": 4403, "court_user": 4403, "admin": 4403, "stranger": 4403, "anonymous": 4401,
    },
    "respondent_caucus": {
        "claimant": 4403, "respondent": 4409, "representative": 4409, "mediator": 4409, "observer": 4403,
        "other_mediator": 4403, "court_user": 4403, "admin": 4403, "stranger": 4403, "anonymous": 4401,
    },
}


def test_when_case_closed_then_room_pages_and_documents_answer_as_the_tables_say(world, settings):
    from django.utils.formats import date_format

    _close(world, CaseStatus.NOT_SETTLED)
    due = retention.destruction_date(world.case)
    assert due == world.case.closed_at + datetime.timedelta(days=settings.ODR_RETENTION_DAYS)
    pages, downloads = {}, {}
    for room_name, room in world.rooms.items():
        document = world.documents[room_name]
        pages[room_name] = {}
        for role in ROLES:
            client = client_as(world, role)
            response = client.get(reverse("mediation:room", args=[room.public_id]))
            pages[room_name][role] = answer(response)
            body = response.content.decode()
            assert secrets_in(body) == set(), (room_name, role)
            if response.status_code == 200:
                assert "room-config" not in body
                with translation.override(world.user(role).preferred_language):
                    assert date_format(timezone.localtime(due), "DATE_FORMAT") in body, (room_name, role)
                pages[room_name][role] = "closed"
            downloads[(room_name, role)] = answer(
                client.get(reverse("mediation:room_document", args=[room.public_id, document.public_id]))
            )
    assert pages == ROOM_PAGE_CLOSED
    assert downloads == {(room_name, role): DOCUMENT_DOWNLOAD_CLOSED[role] for room_name in ROOMS for role in ROLES}


@pytest.mark.django_db(transaction=True)
async def test_when_case_closed_then_room_sockets_answer_as_the_table_says(people, active_case, origin):
    world = await db(build_world)(active_case, people, origin)
    await db(_close)(world, CaseStatus.NOT_SETTLED)
    codes = {}
    for room_name in ROOMS:
        codes[room_name] = {}
        for role in ROLES:
            user = None if role == "anonymous" else world.user(role)
            async with connect(user, world.rooms[room_name]) as socket:
                frame = await socket.next()
                assert frame["type"] == CLOSE and socket.received == [], (room_name, role, frame)
                codes[room_name][role] = frame["code"]
    assert codes == SOCKET_CLOSED
