"""The room page's cost: its SQL queries do not grow with the room's history
or with the people in it. The page carries the latest page of events and the
member list, so a lookup per event or per member would make every long
session slower for everyone who opens or reloads it."""

import re
import time
import uuid
from collections import Counter
from dataclasses import dataclass

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.http import HttpResponse
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from sessions.models import Role
from sessions.services import documents, invitations, rooms
from tests.case_fixtures import accept_undertaking


@dataclass(frozen=True)
class PageLoad:
    response: HttpResponse
    queries: list[str]  # the SQL of every query, in order
    seconds: float  # wall-clock time of the request, for benchmarks only


def room_page_load(client: Client, room) -> PageLoad:
    """GET the room page as the client's signed-in user, with the SQL it ran
    and the time it took (tests/bench reuses this)."""
    url = reverse("mediation:room", args=[room.public_id])
    with CaptureQueriesContext(connection) as captured:
        started = time.perf_counter()
        response = client.get(url)
        seconds = time.perf_counter() - started
    return PageLoad(response, [query["sql"] for query in captured.captured_queries], seconds)


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _shape(sql: str) -> str:
    """The query without its columns and literals, so that a query repeated
    per row shows as one shape with a count."""
    return re.sub(r"'[^']*'|\d+", "?", re.sub(r"^SELECT .*? FROM", "SELECT … FROM", sql))


def assert_same_queries(baseline: PageLoad, grown: PageLoad, what: str) -> None:
    before, after = len(baseline.queries), len(grown.queries)
    added = Counter(map(_shape, grown.queries)) - Counter(map(_shape, baseline.queries))
    assert after == before, f"{what}: {before} queries became {after}; added: {dict(added)}"


def post_messages(room, authors, count: int, label: str) -> str:
    """`count` messages, the authors taking turns; the last one's body."""
    body = ""
    for i in range(count):
        body = f"{label} #{i}"
        author = authors[i % len(authors)]
        rooms.message_post(room=room, user=author, client_id=uuid.uuid4(), body=body)
    return body


def share_document(room, user, name: str) -> None:
    upload = SimpleUploadedFile(name, b"notes\n", "text/plain")
    documents.document_share(room=room, user=user, upload=upload)


def join(case, room, *, invited_by, role, user, mediator, origin):
    """Bring a representative or an observer into the case and admit them to
    the room, as the invitation and the lobby do."""
    invitation = invitations.invitation_create(
        case=case, actor=invited_by, role=role, name=user.display_name, email=user.email,
        origin=origin,
    )
    participant = invitations.invitation_accept(invitation=invitation, user=user, origin=origin)
    accept_undertaking(case, user, origin)
    rooms.lobby_admit(room=room, user=mediator, participant_id=participant.public_id)
    return participant


@pytest.fixture
def joint(active_case, mediator, party_a, party_b):
    """A session in progress with both parties admitted to the joint room."""
    room = rooms.room_joint(active_case)
    rooms.session_start(room=room, user=mediator)
    for user in (party_a, party_b):
        participant = active_case.participants.get(user=user)
        rooms.lobby_admit(room=room, user=mediator, participant_id=participant.public_id)
    return room


@pytest.mark.parametrize("viewer", ["mediator", "claimant"])
def test_when_history_and_people_grow_then_room_page_runs_the_same_queries(
    joint, active_case, mediator, party_a, party_b, user_factory, origin, viewer
):
    client = signed_in({"mediator": mediator, "claimant": party_a}[viewer])
    latest = post_messages(joint, [party_a, mediator], 2, "opening")
    few = room_page_load(client, joint)
    assert few.response.status_code == 200
    assert few.response.context["client"]["events"][-1]["body"] == latest

    post_messages(joint, [party_a, party_b, mediator], 100, "statement")
    share_document(joint, party_b, "invoice.txt")
    share_document(joint, mediator, "summary.txt")
    latest = post_messages(joint, [party_b, party_a], 20, "reply")
    long_history = room_page_load(client, joint)
    events = long_history.response.context["client"]["events"]
    assert joint.events.count() > settings.ODR_HISTORY_PAGE * 2
    assert len(events) == settings.ODR_HISTORY_PAGE
    shared = [e["document"]["name"] for e in events if "document" in e]
    assert shared == ["invoice.txt", "summary.txt"]
    assert events[-1]["body"] == latest
    assert_same_queries(few, long_history, "120 more messages and 2 documents")

    newcomers = []
    for party in (party_a, party_b):
        for n in (1, 2):
            user = user_factory(display_name=f"Representative {n} of {party.display_name}")
            join(active_case, joint, invited_by=party, role=Role.REPRESENTATIVE, user=user,
                 mediator=mediator, origin=origin)
            newcomers.append(user)
    for _ in range(3):
        join(active_case, joint, invited_by=mediator, role=Role.OBSERVER, user=user_factory(),
             mediator=mediator, origin=origin)
    for representative in newcomers:
        share_document(joint, representative, f"{representative.display_name}.txt")
    latest = post_messages(joint, newcomers, 8, "representatives")
    crowded = room_page_load(client, joint)
    config = crowded.response.context["client"]
    assert len(config["members"]) == 10  # mediator, 2 parties, 4 representatives, 3 observers
    authors = {e["author"]["display_name"] for e in config["events"] if e["type"] == "message"}
    assert {user.display_name for user in newcomers} <= authors
    shared = {e["document"]["name"] for e in config["events"] if "document" in e}
    assert {f"{user.display_name}.txt" for user in newcomers} <= shared
    assert config["events"][-1]["body"] == latest
    assert_same_queries(few, crowded, "7 more people in the room, their messages and documents")
