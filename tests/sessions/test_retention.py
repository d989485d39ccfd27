"""Retention by crypto-shredding, and legal holds.

Closing a case queues `destroy_case_content` for closed_at + ODR_RETENTION_DAYS;
the parties and the mediator see that date in advance. When it comes, the
case's data key is destroyed and its sealed content deleted (chat, caucus
talk, documents, drafts, the description of the dispute); afterwards no page,
socket, export or administrator can produce it. What remains: the case's
metadata (dates, states, counts of events), the audit log, and the signed
agreement — which has no model yet (agreements holds only drafts), so there
is nothing of it to check here. A legal hold suspends destruction until an
administrator lifts it.
"""

import datetime
import os
import re
import uuid
from collections import Counter

import pytest
import time_machine
from django.core.exceptions import PermissionDenied
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django.utils import formats, timezone, translation
from django_tasks_db.models import DBTaskResult

from agreements.models import Draft
from agreements.services.drafts import draft_save, draft_text
from odr import crypto
from odr.audit import audit_verify
from odr.models import AuditAction, AuditEvent, DataKey
from sessions.models import Case, CaseStatus, LegalHold, RoomDocument, RoomEvent
from sessions.services import confidentiality, documents, procedure, retention, rooms, transcripts
from sessions.services.errors import ProcedureError
from sessions.services.rooms import RoomGone, RoomRefused
from tests.conftest import PASSWORD
from tests.sealed import document_bytes, messages_of
from tests.sessions.room_fixtures import connect, fresh_channel_layer, other_case  # noqa: F401 (fixtures)

TASK = "sessions.tasks.destroy_case_content"
JOINT_WORDS = "The fence moved forty centimetres onto my land"
CAUCUS_WORDS = "Between us, I would accept half of the repair costs"
DOCUMENT_WORDS = "Surveyor's report: boundary marker 17 is missing"
DRAFT_WORDS = "The parties agree to share the cost of a new fence equally"
DESCRIPTION = "Neighbours disagree about a shared fence."
ADMIN_CASE = f"{Case._meta.app_label}_{Case._meta.model_name}"


# --- A case with content of every kind ---------------------------------------------------------------------


@pytest.fixture
def content(active_case, mediator, party_a, party_b, origin):
    """An active case with talk in the joint room and in the claimant's
    caucus, a document in each, and two draft versions of the agreement."""
    case = active_case
    joint = rooms.room_joint(case)
    rooms.session_start(room=joint, user=mediator)
    of = {p.user_id: p for p in case.participants.all()}
    for user in (party_a, party_b):
        rooms.lobby_admit(room=joint, user=mediator, participant_id=of[user.pk].public_id)
    caucus = rooms.caucus_open(room=joint, user=mediator, party_id=of[party_a.pk].public_id)
    rooms.message_post(room=joint, user=party_a, client_id=uuid.uuid4(), body=JOINT_WORDS)
    rooms.message_post(room=joint, user=party_b, client_id=uuid.uuid4(), body="I do not agree.")
    rooms.message_post(room=caucus, user=party_a, client_id=uuid.uuid4(), body=CAUCUS_WORDS)
    joint_doc = documents.document_share(
        room=joint, user=party_b, upload=SimpleUploadedFile("survey.txt", f"{DOCUMENT_WORDS}\n".encode()), origin=origin
    )
    caucus_doc = documents.document_share(
        room=caucus, user=party_a, upload=SimpleUploadedFile("offer.txt", f"{CAUCUS_WORDS}\n".encode()), origin=origin
    )
    draft_save(case=case, user=mediator, terms="First thoughts.", origin=origin)
    draft_save(case=case, user=mediator, terms=DRAFT_WORDS, origin=origin)
    case.refresh_from_db()
    return {
        "case": case, "joint": joint, "caucus": caucus, "documents": [joint_doc, caucus_doc],
        "paths": [joint_doc.file.path, caucus_doc.file.path], "of": of,
    }


@pytest.fixture
def closed(content, mediator, origin):
    """The mediator ended the mediation as settled."""
    procedure.case_close(case=content["case"], user=mediator, outcome=CaseStatus.SETTLED, origin=origin)
    content["case"].refresh_from_db()
    return content


def due_of(case) -> datetime.datetime:
    case.refresh_from_db()
    return retention.destruction_date(case)


def destroy_jobs(case) -> list[DBTaskResult]:
    return [
        job for job in DBTaskResult.objects.filter(task_path=TASK).order_by("enqueued_at")
        if job.args_kwargs["kwargs"] == {"case_id": case.pk}
    ]


def document_url(room, document) -> str:
    return reverse("mediation:room_document", args=[room.public_id, document.public_id])


def client_of(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def reauthenticated(user) -> Client:
    """Signed in and just gave the password again (allauth's re-authentication)."""
    client = client_of(user)
    response = client.post(reverse("account_reauthenticate"), {"password": PASSWORD})
    assert response.status_code == 302
    return client


def destroyed_rows(case) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=AuditAction.CONTENT_DESTROYED, object_id=str(case.public_id)))


def metadata(case) -> dict:
    """What statistics need, and what must survive the destruction."""
    fresh = type(case).objects.get(pk=case.pk)
    return {
        "case": (fresh.reference, fresh.status, fresh.category, fresh.language, fresh.created_at,
                 fresh.activated_at, fresh.closed_at, fresh.term_started_on, fresh.term_ends_on),
        "participants": sorted(case.participants.values_list("pk", "role", "status")),
        "events": Counter(RoomEvent.objects.filter(room__case=case).values_list("room_id", "kind")),
        "documents": sorted(RoomDocument.objects.filter(room__case=case).values_list("pk", "size", "content_type")),
        "drafts": sorted(Draft.objects.filter(case=case).values_list("pk", "version", "created_at")),
        "sittings": list(case.sittings.order_by("number").values_list("number", "started_at", "ended_at")),
    }


def date_on_page(when, user) -> str:
    """A date as the page shows it to `user` (their language, local time)."""
    with translation.override(user.preferred_language):
        return formats.date_format(timezone.localtime(when), "DATE_FORMAT")


def _run_jobs_at(run_jobs, capture, when):
    """The job worker runs at `when`; files are deleted on commit."""
    with time_machine.travel(when, tick=False), capture(execute=True):
        run_jobs()


def everything_sealed_is_gone(case):
    assert not RoomEvent.objects.filter(room__case=case, body_sealed__isnull=False).exists()
    assert not RoomDocument.objects.filter(room__case=case, name_sealed__isnull=False).exists()
    assert not RoomDocument.objects.filter(room__case=case).exclude(file="").exists()
    assert not Draft.objects.filter(case=case, text_sealed__isnull=False).exists()


# --- Scheduling, and the date shown in advance -------------------------------------------------------------------


@pytest.mark.parametrize("days", [30, 7])
def test_when_a_case_closes_then_destruction_is_queued_for_its_retention_date(
    content, mediator, origin, settings, days
):
    settings.ODR_RETENTION_DAYS = days
    assert destroy_jobs(content["case"]) == []  # nothing while the case is open

    procedure.case_close(case=content["case"], user=mediator, outcome=CaseStatus.NOT_SETTLED, origin=origin)

    case = content["case"]
    case.refresh_from_db()
    [job] = destroy_jobs(case)
    assert job.status == "READY"
    assert job.run_after == case.closed_at + datetime.timedelta(days=days)
    assert retention.destruction_date(case) == job.run_after


def test_when_the_retention_setting_is_left_alone_then_it_is_thirty_days(settings):
    assert settings.ODR_RETENTION_DAYS == int(os.environ.get("ODR_RETENTION_DAYS", "30"))


def test_when_a_party_withdraws_then_destruction_is_queued_too_and_they_see_the_date(content, party_b, origin):
    procedure.case_withdraw(case=content["case"], user=party_b, reason="I changed my mind.", origin=origin)
    [job] = destroy_jobs(content["case"])
    assert job.run_after == due_of(content["case"])
    html = client_of(party_b).get(reverse("mediation:case_detail", args=[content["case"].public_id])).content.decode()
    [notice] = re.findall(r'<p id="destruction-date">(.*?)</p>', html, re.DOTALL)
    assert date_on_page(job.run_after, party_b) in notice


@pytest.mark.parametrize("who", ["party_a", "party_b", "mediator"])
def test_when_a_case_has_closed_then_its_people_see_the_destruction_date_in_advance(closed, who, request):
    user = request.getfixturevalue(who)
    due = due_of(closed["case"])

    html = client_of(user).get(reverse("mediation:case_detail", args=[closed["case"].public_id])).content.decode()
    room = client_of(user).get(reverse("mediation:room", args=[closed["joint"].public_id]))

    [notice] = re.findall(r'<p id="destruction-date">(.*?)</p>', html, re.DOTALL)
    assert date_on_page(due, user) in notice
    assert room.status_code == 200 and "mediation/room_closed.html" in [t.name for t in room.templates]
    assert date_on_page(due, user) in room.content.decode()


def test_when_a_case_is_open_then_no_date_is_shown_only_the_rule(content, party_a, settings):
    html = client_of(party_a).get(reverse("mediation:case_detail", args=[content["case"].public_id])).content.decode()
    assert 'id="destruction-date"' not in html
    section = re.search(r'id="confidentiality".*?</section>', html, re.DOTALL).group(0)
    assert f"{settings.ODR_RETENTION_DAYS} days after the case ends" in section
    assert retention.destruction_date(content["case"]) is None


# --- Before the date, nothing; after it, everything sealed is gone ------------------------------------------------------


def test_when_the_date_has_not_come_then_the_jobs_destroy_nothing(
    closed, run_jobs, django_capture_on_commit_callbacks
):
    case = closed["case"]
    _run_jobs_at(run_jobs, django_capture_on_commit_callbacks, due_of(case) - datetime.timedelta(minutes=1))

    case.refresh_from_db()
    assert case.content_destroyed_at is None and case.description == DESCRIPTION
    assert [job.status for job in destroy_jobs(case)] == ["READY"]
    assert [m.text for m in messages_of(case)] == [JOINT_WORDS, "I do not agree.", CAUCUS_WORDS]
    assert document_bytes(closed["documents"][0]).decode().strip() == DOCUMENT_WORDS
    assert all(os.path.exists(path) for path in closed["paths"])
    assert retention.retention_sweep(now=due_of(case) - datetime.timedelta(minutes=1)) == []


def test_when_the_date_has_come_then_the_key_and_every_sealed_item_are_destroyed(
    closed, run_jobs, django_capture_on_commit_callbacks, settings
):
    case = closed["case"]
    data_key_id = case.data_key_id
    before = metadata(case)
    assert all(os.path.exists(path) for path in closed["paths"])
    when = due_of(case) + datetime.timedelta(minutes=1)

    _run_jobs_at(run_jobs, django_capture_on_commit_callbacks, when)

    case.refresh_from_db()
    assert case.content_destroyed_at == when
    assert case.description == ""
    key = DataKey.objects.get(pk=data_key_id)
    assert key.wrapped is None and key.destroyed_at is not None
    assert case.data_key_id == data_key_id  # the same (dead) key: no fresh one was made
    everything_sealed_is_gone(case)
    assert not any(os.path.exists(path) for path in closed["paths"])
    [job] = destroy_jobs(case)
    assert job.status == "SUCCESSFUL" and job.return_value is True
    [row] = destroyed_rows(case)
    assert row.actor is None
    assert row.details == {"messages": 3, "documents": 2, "retention_days": settings.ODR_RETENTION_DAYS}
    assert metadata(case) == before  # what statistics need is all still there


def test_when_content_was_destroyed_then_the_audit_log_is_whole_and_still_verifies(
    closed, run_jobs, django_capture_on_commit_callbacks
):
    case = closed["case"]
    rows_before = list(AuditEvent.objects.filter(object_id=str(case.public_id)).values_list("id", "hash"))
    _run_jobs_at(run_jobs, django_capture_on_commit_callbacks, due_of(case) + datetime.timedelta(minutes=1))

    rows_after = list(AuditEvent.objects.filter(object_id=str(case.public_id)).values_list("id", "hash"))
    assert rows_after[: len(rows_before)] == rows_before
    assert [a for a in AuditEvent.objects.filter(id__gt=rows_before[-1][0]).values_list("action", flat=True)
            if a == AuditAction.CONTENT_DESTROYED] == [AuditAction.CONTENT_DESTROYED]
    report = audit_verify()
    assert report.ok, report.problems
    call_command("verify_audit")


@pytest.fixture
def destroyed(closed, run_jobs, django_capture_on_commit_callbacks):
    case = closed["case"]
    closed["when"] = due_of(case) + datetime.timedelta(minutes=1)
    _run_jobs_at(run_jobs, django_capture_on_commit_callbacks, closed["when"])
    case.refresh_from_db()
    assert case.content_destroyed_at is not None
    return closed


# --- Nothing produces it afterwards ----------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["party_a", "party_b", "mediator"])
def test_when_content_was_destroyed_then_room_pages_say_so_and_when(destroyed, who, request):
    user = request.getfixturevalue(who)
    rooms_to_try = [destroyed["joint"]] + ([destroyed["caucus"]] if who != "party_b" else [])
    for room in rooms_to_try:
        response = client_of(user).get(reverse("mediation:room", args=[room.public_id]))

        assert response.status_code == 200
        html = response.content.decode()
        [notice] = re.findall(r'<p class="notice" role="status" id="destroyed">(.*?)</p>', html, re.DOTALL)
        with translation.override(user.preferred_language):
            when = formats.date_format(timezone.localtime(destroyed["case"].content_destroyed_at), "DATETIME_FORMAT")
        assert when in notice
        for words in (JOINT_WORDS, CAUCUS_WORDS, DOCUMENT_WORDS):
            assert words not in html


def test_when_content_was_destroyed_then_no_page_produces_it(
    closed, party_a, mediator, admin_user, run_jobs, django_capture_on_commit_callbacks
):
    case = closed["case"]
    joint_doc, caucus_doc = closed["documents"]
    pages = {
        "case page": (party_a, reverse("mediation:case_detail", args=[case.public_id])),
        "case page (mediator)": (mediator, reverse("mediation:case_detail", args=[case.public_id])),
        "joint document": (mediator, document_url(closed["joint"], joint_doc)),
        "caucus document": (party_a, document_url(closed["caucus"], caucus_doc)),
        "draft": (mediator, reverse("agreements:draft", args=[case.public_id])),
        "draft (party)": (party_a, reverse("agreements:draft", args=[case.public_id])),
        "admin case page": (admin_user, reverse(f"admin:{ADMIN_CASE}_change", args=[case.pk])),
        "admin case list": (admin_user, reverse(f"admin:{ADMIN_CASE}_changelist")),
    }

    def fetch(name):
        user, url = pages[name]
        response = client_of(user).get(url)
        body = b"".join(response.streaming_content) if response.streaming else response.content
        return response.status_code, body.decode(errors="replace")

    before = {name: fetch(name) for name in pages}
    assert DESCRIPTION in before["case page"][1]  # positive controls: the content was there
    assert before["draft"] == (200, before["draft"][1]) and DRAFT_WORDS in before["draft"][1]
    assert DRAFT_WORDS in before["draft (party)"][1]

    _run_jobs_at(run_jobs, django_capture_on_commit_callbacks, due_of(case) + datetime.timedelta(minutes=1))

    for name in pages:
        status, text = fetch(name)
        for words in (JOINT_WORDS, CAUCUS_WORDS, DOCUMENT_WORDS, DRAFT_WORDS, DESCRIPTION):
            assert words not in text, (name, words)
        if "document" in name:
            assert status == 404, name
        if name.startswith("draft"):
            # Refused: forbidden (the policy) or not found (the content); never the page.
            assert status in (403, 404), (name, status)
        if name.startswith(("case page", "admin")):
            assert status == 200, name
    case_html = fetch("case page")[1]
    assert 'id="destroyed"' in case_html and 'id="destruction-date"' not in case_html


def test_when_content_was_destroyed_then_the_services_refuse_to_open_or_add_to_it(
    destroyed, party_a, mediator, origin
):
    case, joint = destroyed["case"], destroyed["joint"]
    with pytest.raises(crypto.ContentDestroyed):
        confidentiality.case_cipher(case)
    with pytest.raises(crypto.ContentDestroyed):
        crypto.cipher(DataKey.objects.get(pk=case.data_key_id))
    with pytest.raises(crypto.ContentDestroyed):
        draft_text(Draft.objects.filter(case=case).first())
    events = list(RoomEvent.objects.filter(room__case=case).select_related("document"))
    opened = confidentiality.reveal_events(events, case)
    assert {event.text for event in opened} == {""}
    assert {event.document.name for event in opened if event.document} == {""}
    with pytest.raises(RoomRefused):
        transcripts.transcript_export(room=joint, user=mediator)
    with pytest.raises(RoomGone):
        rooms.message_post(room=joint, user=party_a, client_id=uuid.uuid4(), body="One more thing")
    with pytest.raises(RoomGone):
        documents.document_share(
            room=joint, user=party_a, upload=SimpleUploadedFile("late.txt", b"late\n"), origin=origin
        )
    with pytest.raises(PermissionDenied):
        draft_save(case=case, user=mediator, terms="A late draft", origin=origin)
    case.refresh_from_db()
    assert DataKey.objects.filter(case=case).count() == 1 and case.data_key.wrapped is None
    everything_sealed_is_gone(case)


def test_when_a_copy_of_the_sealed_rows_survives_destruction_then_it_no_longer_opens(
    closed, run_jobs, django_capture_on_commit_callbacks
):
    """A backup taken before the date holds the sealed bodies and the wrapped
    key; after shredding, the live database no longer has the wrapped key,
    and the master key alone opens nothing."""
    case = closed["case"]
    event = RoomEvent.objects.filter(room__case=case, kind="message").order_by("pk").first()
    blob, aad = bytes(event.body_sealed), confidentiality.message_aad(event)
    assert confidentiality.case_cipher(case).open_text(blob, aad=aad) == JOINT_WORDS  # positive control

    _run_jobs_at(run_jobs, django_capture_on_commit_callbacks, due_of(case) + datetime.timedelta(minutes=1))

    case.refresh_from_db()
    with pytest.raises(crypto.ContentDestroyed):
        confidentiality.case_cipher(case)
    _current, ring = crypto.keyring()
    for master in ring.values():
        with pytest.raises(crypto.UndecryptableError):
            crypto.open_with(master, blob, aad=aad.encode())
    assert DataKey.objects.get(pk=case.data_key_id).wrapped is None


def test_when_content_was_destroyed_then_the_transcript_export_is_refused(destroyed, mediator):
    url = reverse("mediation:transcript_export", args=[destroyed["joint"].public_id])
    response = reauthenticated(mediator).post(url)
    assert response.status_code == 404
    assert not AuditEvent.objects.filter(action=AuditAction.TRANSCRIPT_EXPORTED).exists()


def test_when_content_was_destroyed_then_break_glass_is_refused_and_an_open_access_reads_nothing(
    closed, admin_user, run_jobs, django_capture_on_commit_callbacks, origin
):
    case = closed["case"]
    url = reverse("mediation:break_glass", args=[case.public_id])
    when = due_of(case) + datetime.timedelta(minutes=1)
    with time_machine.travel(when, tick=False):
        access = confidentiality.break_glass_open(
            case=case, user=admin_user, reason="Court order 2-123/2026 requires review of the record.", origin=origin
        )
        admin = reauthenticated(admin_user)
        before = admin.get(url).content.decode()
        assert JOINT_WORDS in before and CAUCUS_WORDS in before  # positive control: break-glass reads it

        with django_capture_on_commit_callbacks(execute=True):
            run_jobs()

        case.refresh_from_db()
        after = admin.get(url)
        assert after.status_code == 404  # nothing left to open, even with access in force
        for words in (JOINT_WORDS, CAUCUS_WORDS, "survey.txt", "offer.txt"):
            assert words not in after.content.decode()
        assert confidentiality.break_glass_read(access=access) == []
        with pytest.raises(PermissionDenied):
            confidentiality.break_glass_open(case=case, user=admin_user, reason="Another reason, long enough to pass.")
    with time_machine.travel(when + datetime.timedelta(days=1), tick=False):
        assert reauthenticated(admin_user).get(url).status_code == 404


@pytest.mark.django_db(transaction=True)
async def test_when_content_was_destroyed_then_the_room_socket_is_refused(destroyed, party_a, mediator):
    for user in (party_a, mediator):
        async with connect(user, destroyed["joint"]) as socket:
            assert await socket.closed() == rooms.CLOSE_CLOSED
            assert socket.received == []  # no welcome, no backlog: closed straight away


# --- Edge cases ---------------------------------------------------------------------------------------------------


def test_when_a_message_was_posted_just_before_closing_then_it_is_destroyed_with_the_rest(
    content, party_b, mediator, origin, run_jobs, django_capture_on_commit_callbacks
):
    case = content["case"]
    rooms.message_post(room=content["joint"], user=party_b, client_id=uuid.uuid4(), body="My last word on it.")
    procedure.case_close(case=case, user=mediator, outcome=CaseStatus.NOT_SETTLED, origin=origin)
    with pytest.raises(RoomGone):  # and nothing after the close
        rooms.message_post(room=content["joint"], user=party_b, client_id=uuid.uuid4(), body="Too late.")
    assert "My last word on it." in [m.text for m in messages_of(case)]

    _run_jobs_at(run_jobs, django_capture_on_commit_callbacks, due_of(case) + datetime.timedelta(seconds=1))

    assert [m.text for m in messages_of(case)] == [""] * 4
    everything_sealed_is_gone(case)


def test_when_two_destroy_jobs_run_for_one_case_then_the_second_does_nothing(
    closed, run_jobs, django_capture_on_commit_callbacks
):
    from sessions.tasks import destroy_case_content

    case = closed["case"]
    destroy_case_content.using(run_after=due_of(case)).enqueue(case_id=case.pk)
    assert len(destroy_jobs(case)) == 2

    _run_jobs_at(run_jobs, django_capture_on_commit_callbacks, due_of(case) + datetime.timedelta(minutes=1))

    assert sorted(job.return_value for job in destroy_jobs(case)) == [False, True]
    assert len(destroyed_rows(case)) == 1
    assert retention.case_content_destroy(case_id=case.pk, now=due_of(case) + datetime.timedelta(days=1)) is False
    assert len(destroyed_rows(case)) == 1


def test_when_a_case_is_still_open_then_destruction_does_nothing_whatever_the_date(content):
    case = content["case"]
    far = timezone.now() + datetime.timedelta(days=3650)
    assert retention.case_content_destroy(case_id=case.pk, now=far) is False
    assert retention.retention_sweep(now=far) == []
    case.refresh_from_db()
    assert case.content_destroyed_at is None
    assert [m.text for m in messages_of(case)] == [JOINT_WORDS, "I do not agree.", CAUCUS_WORDS]


def test_when_retention_is_lengthened_after_closing_then_the_queued_job_waits_and_the_sweep_destroys_later(
    closed, settings, run_jobs, django_capture_on_commit_callbacks
):
    case = closed["case"]
    closed_at = case.closed_at
    settings.ODR_RETENTION_DAYS = 60

    _run_jobs_at(run_jobs, django_capture_on_commit_callbacks, closed_at + datetime.timedelta(days=31))
    case.refresh_from_db()
    assert case.content_destroyed_at is None
    assert [job.return_value for job in destroy_jobs(case)] == [False]

    with time_machine.travel(closed_at + datetime.timedelta(days=60, minutes=1), tick=False):
        call_command("retention_sweep")
    case.refresh_from_db()
    assert case.content_destroyed_at is not None
    assert destroyed_rows(case)[0].details["retention_days"] == 60


def test_when_retention_is_shortened_after_closing_then_the_sweep_destroys_early_and_the_job_later_does_nothing(
    closed, settings, run_jobs, django_capture_on_commit_callbacks
):
    case = closed["case"]
    closed_at = case.closed_at
    settings.ODR_RETENTION_DAYS = 5

    assert retention.retention_sweep(now=closed_at + datetime.timedelta(days=5, minutes=1)) == [case.pk]
    _run_jobs_at(run_jobs, django_capture_on_commit_callbacks, closed_at + datetime.timedelta(days=31))

    assert [job.return_value for job in destroy_jobs(case)] == [False]
    assert len(destroyed_rows(case)) == 1


def test_when_the_sweep_runs_twice_then_the_second_run_destroys_nothing(closed, capsys):
    case = closed["case"]
    with time_machine.travel(due_of(case) + datetime.timedelta(minutes=1), tick=False):
        call_command("retention_sweep")
        first = capsys.readouterr().out
        call_command("retention_sweep")
        second = capsys.readouterr().out
    # (The case's emails, a month old by then and never sent here, are purged by the first run.)
    assert first.splitlines()[0] == "1 case(s) destroyed."
    assert second.splitlines() == ["0 case(s) destroyed.", "0 undelivered email(s) older than a week purged."]
    assert len(destroyed_rows(case)) == 1
    everything_sealed_is_gone(case)


def test_when_one_case_is_due_then_another_cases_content_is_untouched(
    closed, request, run_jobs, django_capture_on_commit_callbacks
):
    cast = request.getfixturevalue("other_case")
    other = cast.case
    joint = rooms.room_joint(other)
    rooms.session_start(room=joint, user=cast.mediator)
    rooms.message_post(room=joint, user=cast.mediator, client_id=uuid.uuid4(), body="Another mediation entirely.")

    _run_jobs_at(run_jobs, django_capture_on_commit_callbacks, due_of(closed["case"]) + datetime.timedelta(minutes=1))

    assert [m.text for m in messages_of(other)] == ["Another mediation entirely."]
    other.refresh_from_db()
    assert other.content_destroyed_at is None and DataKey.objects.get(pk=other.data_key_id).wrapped is not None


# --- Legal hold ------------------------------------------------------------------------------------------------------------


def hold_url(case) -> str:
    return reverse("mediation:legal_hold", args=[case.public_id])


REASON = "Court order 2-345/2026 of the Astana civil court"
LIFT_REASON = "The court order was revoked on appeal"


@pytest.mark.parametrize("who", ["party_a", "mediator", "court_user", "stranger"])
def test_when_anyone_but_an_administrator_opens_the_legal_hold_page_then_not_found(closed, who, request, user_factory):
    user = user_factory("stranger@example.kz") if who == "stranger" else request.getfixturevalue(who)
    client = client_of(user)
    for url in (hold_url(closed["case"]), reverse("mediation:legal_hold", args=[uuid.uuid4()])):
        assert client.get(url).status_code == 404
        assert client.post(url, {"action": "place", "reason": REASON}).status_code == 404
    assert not LegalHold.objects.exists()


def test_when_anonymous_opens_the_legal_hold_page_then_sent_to_login(closed):
    response = Client().get(hold_url(closed["case"]))
    assert response.status_code == 302 and "/accounts/login/" in response.url


@pytest.mark.parametrize("reason", ["", "   ", "too short", "  short  \n  "])
def test_when_the_reason_is_missing_or_short_then_no_hold_is_placed(closed, admin_user, reason):
    response = client_of(admin_user).post(hold_url(closed["case"]), {"action": "place", "reason": reason})

    assert response.status_code == 200
    assert any("reason" in str(m) for m in response.context["messages"])
    assert not LegalHold.objects.exists()
    assert not AuditEvent.objects.filter(action=AuditAction.LEGAL_HOLD_PLACED).exists()


def test_when_an_administrator_places_a_hold_then_it_is_recorded_audited_and_shown_to_the_case(
    closed, admin_user, party_a
):
    case = closed["case"]
    admin = client_of(admin_user)
    assert admin.get(hold_url(case)).status_code == 200

    response = admin.post(hold_url(case), {"action": "place", "reason": REASON})

    assert response.status_code == 302 and response.url == hold_url(case)
    [hold] = LegalHold.objects.filter(case=case)
    assert hold.reason == REASON and hold.placed_by == admin_user and hold.lifted_at is None
    [row] = AuditEvent.objects.filter(action=AuditAction.LEGAL_HOLD_PLACED, object_id=str(case.public_id))
    assert row.actor_id == admin_user.pk and row.details == {"hold": hold.pk, "reason": REASON}
    html = client_of(party_a).get(reverse("mediation:case_detail", args=[case.public_id])).content.decode()
    assert 'id="destruction-date"' not in html and "legal hold" in html
    assert REASON in admin.get(hold_url(case)).content.decode()
    with pytest.raises(ProcedureError):
        retention.legal_hold_place(case=case, user=admin_user, reason="A second hold for another reason")


def test_when_a_held_case_passes_its_date_then_neither_the_jobs_nor_the_sweep_destroy_it(
    closed, admin_user, run_jobs, django_capture_on_commit_callbacks
):
    case = closed["case"]
    retention.legal_hold_place(case=case, user=admin_user, reason=REASON)
    when = due_of(case) + datetime.timedelta(days=2)

    _run_jobs_at(run_jobs, django_capture_on_commit_callbacks, when)
    with time_machine.travel(when, tick=False):
        call_command("retention_sweep")

    case.refresh_from_db()
    assert case.content_destroyed_at is None and destroyed_rows(case) == []
    assert [job.return_value for job in destroy_jobs(case)] == [False]
    assert [m.text for m in messages_of(case)] == [JOINT_WORDS, "I do not agree.", CAUCUS_WORDS]
    assert DataKey.objects.get(pk=case.data_key_id).wrapped is not None
    assert all(os.path.exists(path) for path in closed["paths"])
    room = client_of(closed["case"].created_by).get(reverse("mediation:room", args=[closed["joint"].public_id]))
    assert "legal hold" in room.content.decode()


def test_when_the_hold_is_lifted_after_the_date_then_the_next_jobs_run_destroys_the_content(
    closed, admin_user, run_jobs, django_capture_on_commit_callbacks
):
    case = closed["case"]
    retention.legal_hold_place(case=case, user=admin_user, reason=REASON)
    when = due_of(case) + datetime.timedelta(days=2)
    _run_jobs_at(run_jobs, django_capture_on_commit_callbacks, when)

    with time_machine.travel(when + datetime.timedelta(hours=1), tick=False):
        response = client_of(admin_user).post(hold_url(case), {"action": "lift", "reason": LIFT_REASON})
    assert response.status_code == 302
    [hold] = LegalHold.objects.filter(case=case)
    assert hold.lifted_by == admin_user and hold.lift_reason == LIFT_REASON and hold.lifted_at is not None
    [row] = AuditEvent.objects.filter(action=AuditAction.LEGAL_HOLD_LIFTED, object_id=str(case.public_id))
    assert row.actor_id == admin_user.pk and row.details == {"hold": hold.pk, "reason": LIFT_REASON}
    case.refresh_from_db()
    assert case.content_destroyed_at is None  # lifting alone destroys nothing

    _run_jobs_at(run_jobs, django_capture_on_commit_callbacks, when + datetime.timedelta(hours=1, seconds=1))

    case.refresh_from_db()
    assert case.content_destroyed_at is not None
    everything_sealed_is_gone(case)
    assert not any(os.path.exists(path) for path in closed["paths"])
    assert len(destroyed_rows(case)) == 1


def test_when_the_hold_is_lifted_before_the_date_then_destruction_happens_on_the_date_once(
    closed, admin_user, run_jobs, django_capture_on_commit_callbacks
):
    case = closed["case"]
    retention.legal_hold_place(case=case, user=admin_user, reason=REASON)
    retention.legal_hold_lift(case=case, user=admin_user, reason=LIFT_REASON)

    _run_jobs_at(run_jobs, django_capture_on_commit_callbacks, due_of(case) - datetime.timedelta(minutes=1))
    case.refresh_from_db()
    assert case.content_destroyed_at is None

    _run_jobs_at(run_jobs, django_capture_on_commit_callbacks, due_of(case) + datetime.timedelta(minutes=1))
    case.refresh_from_db()
    assert case.content_destroyed_at is not None
    assert len(destroyed_rows(case)) == 1
    assert sorted(job.return_value for job in destroy_jobs(case)) == [False, True]


@pytest.mark.parametrize("reason", ["", "short"])
def test_when_lifting_without_a_proper_reason_then_the_hold_stays(closed, admin_user, reason):
    case = closed["case"]
    retention.legal_hold_place(case=case, user=admin_user, reason=REASON)

    response = client_of(admin_user).post(hold_url(case), {"action": "lift", "reason": reason})

    assert response.status_code == 200
    assert retention.legal_hold_in_force(case) is not None
    assert not AuditEvent.objects.filter(action=AuditAction.LEGAL_HOLD_LIFTED).exists()


def test_when_there_is_no_hold_then_lifting_is_refused(closed, admin_user):
    with pytest.raises(ProcedureError):
        retention.legal_hold_lift(case=closed["case"], user=admin_user, reason=LIFT_REASON)


def test_when_the_content_is_already_destroyed_then_no_hold_can_be_placed(destroyed, admin_user):
    response = client_of(admin_user).post(hold_url(destroyed["case"]), {"action": "place", "reason": REASON})
    assert response.status_code == 200
    assert not LegalHold.objects.exists()
    assert "The content was destroyed on" in response.content.decode()


def test_when_an_open_case_is_held_then_closing_and_passing_the_date_still_destroy_nothing(
    content, admin_user, mediator, origin, run_jobs, django_capture_on_commit_callbacks
):
    case = content["case"]
    retention.legal_hold_place(case=case, user=admin_user, reason=REASON)
    procedure.case_close(case=case, user=mediator, outcome=CaseStatus.SETTLED, origin=origin)

    _run_jobs_at(run_jobs, django_capture_on_commit_callbacks, due_of(case) + datetime.timedelta(days=1))

    case.refresh_from_db()
    assert case.content_destroyed_at is None
    assert [m.text for m in messages_of(case)] == [JOINT_WORDS, "I do not agree.", CAUCUS_WORDS]


@pytest.mark.parametrize("who", ["party_a", "mediator"])
def test_when_a_non_administrator_calls_the_hold_service_then_it_is_refused(closed, who, request):
    with pytest.raises(PermissionDenied):
        retention.legal_hold_place(case=closed["case"], user=request.getfixturevalue(who), reason=REASON)
    assert not LegalHold.objects.exists()
