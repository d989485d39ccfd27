"""Encryption at rest, end to end: a known message (joint room and caucus), a
known uploaded file (name and content) and a known agreement draft are
written through the product; a dump of the database and every file of the
private media folder contain none of them, while the product still reads
them all back.

On PostgreSQL the database is read with `pg_dump` (plain format), as CI
does; on SQLite (a local run without PostgreSQL) the database files are read
byte by byte, the write-ahead log included. Under CI=true the PostgreSQL
branch is required. The tests commit (transactional database), so that the
dump, a separate connection, sees what the product wrote."""

import json
import logging
import os
import shutil
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from django.urls import reverse

from agreements.services import drafts as agreements
from sessions.models import Room, RoomDocument, RoomEvent
from sessions.services import rooms

pytestmark = pytest.mark.django_db(transaction=True)

PG_DUMP = shutil.which("pg_dump") or "/usr/bin/pg_dump"


@dataclass(frozen=True)
class Canary:
    """A unique string with an ASCII token and Kazakh/Russian letters, and the
    forms in which it would show if stored unsealed: UTF-8, its ASCII and
    Cyrillic parts alone, hex (a bytea column in a dump) and JSON escapes."""

    text: str
    token: str
    cyrillic: str

    @classmethod
    def make(cls, label: str) -> "Canary":
        tag = uuid.uuid4().hex
        token = f"CANARY-{label}-{tag}"
        cyrillic = f"Құпия әңгіме {tag[:10]} ұғым тайна"
        return cls(f"{token} «{cyrillic}» Ғғ Ңң Өө Үү Һһ Іі Ёё", token, cyrillic)

    @property
    def needles(self) -> dict[str, bytes]:
        utf8 = self.text.encode("utf-8")
        return {
            "utf-8": utf8,
            "ascii token": self.token.encode("ascii"),
            "cyrillic part": self.cyrillic.encode("utf-8"),
            "hex": utf8.hex().encode("ascii"),
            "json escapes": json.dumps(self.cyrillic)[1:-1].encode("ascii"),
            "utf-16": self.cyrillic.encode("utf-16-le"),
        }


def _leaks(blob: bytes, canaries: dict[str, Canary]) -> list[str]:
    found = []
    lowered = blob.lower()  # hex may be printed in either case
    for name, canary in canaries.items():
        for form, needle in canary.needles.items():
            haystack = lowered if form == "hex" else blob
            if needle in haystack:
                found.append(f"{name} ({form})")
    return found


@dataclass
class Written:
    case: object
    joint: Room
    caucus: Room
    document: RoomDocument
    message: RoomEvent
    caucus_message: RoomEvent
    canaries: dict[str, Canary]
    file_bytes: bytes
    file_name: str


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def written(active_case, mediator, party_a, party_b) -> Written:
    """A session in progress in which everything confidential was written once."""
    canaries = {label: Canary.make(label) for label in ("MESSAGE", "CAUCUS", "NAME", "FILE", "DRAFT")}
    claimant = active_case.participants.get(user=party_a)
    respondent = active_case.participants.get(user=party_b)
    joint = rooms.room_joint(active_case)
    rooms.session_start(room=joint, user=mediator)
    for participant in (claimant, respondent):
        rooms.lobby_admit(room=joint, user=mediator, participant_id=participant.public_id)
    caucus = rooms.caucus_open(room=joint, user=mediator, party_id=claimant.public_id)

    message, _ = rooms.message_post(room=joint, user=party_b, client_id=uuid.uuid4(), body=canaries["MESSAGE"].text)
    caucus_message, _ = rooms.message_post(
        room=caucus, user=party_a, client_id=uuid.uuid4(), body=canaries["CAUCUS"].text
    )

    file_name = f"{canaries['NAME'].text}.txt"
    file_bytes = ("Settlement offer\n" + canaries["FILE"].text + "\nend\n").encode("utf-8")
    response = _client(party_a).post(
        reverse("mediation:room_documents", args=[joint.public_id]),
        {"file": SimpleUploadedFile(file_name, file_bytes, content_type="text/plain")},
    )
    assert response.status_code == 201, response.content
    document = RoomDocument.objects.get(public_id=response.json()["document"]["id"])

    agreements.draft_save(case=active_case, user=mediator, terms=f"Келісім жобасы\n{canaries['DRAFT'].text}")

    return Written(
        case=active_case, joint=joint, caucus=caucus, document=document,
        message=RoomEvent.objects.get(pk=message.pk), caucus_message=RoomEvent.objects.get(pk=caucus_message.pk),
        canaries=canaries, file_bytes=file_bytes, file_name=file_name,
    )


def _read_back(w: Written, mediator, party_a, party_b) -> None:
    """The positive control: the product shows every canary to whom it may."""
    joint_page = _client(party_b).get(reverse("mediation:room", args=[w.joint.public_id]))
    assert joint_page.status_code == 200
    frames = joint_page.context["client"]["events"]
    assert w.canaries["MESSAGE"].text in [f.get("body") for f in frames]
    assert w.file_name in [f.get("document", {}).get("name") for f in frames]

    caucus_page = _client(party_a).get(reverse("mediation:room", args=[w.caucus.public_id]))
    assert caucus_page.status_code == 200
    assert w.canaries["CAUCUS"].text in [f.get("body") for f in caucus_page.context["client"]["events"]]

    download = _client(party_b).get(reverse("mediation:room_document", args=[w.joint.public_id, w.document.public_id]))
    assert download.status_code == 200
    assert b"".join(download.streaming_content) == w.file_bytes

    draft_page = _client(mediator).get(reverse("agreements:draft", args=[w.case.public_id]))
    assert draft_page.status_code == 200
    assert w.canaries["DRAFT"].text in draft_page.content.decode()


# --- The database ------------------------------------------------------------------------------


def _pg_dump() -> bytes:
    params = connection.settings_dict
    command = [PG_DUMP, "--format=plain", "--no-owner", "--no-privileges", "--encoding=UTF8", "--dbname", params["NAME"]]
    if params.get("HOST"):
        command += ["--host", str(params["HOST"])]
    if params.get("PORT"):
        command += ["--port", str(params["PORT"])]
    if params.get("USER"):
        command += ["--username", str(params["USER"])]
    env = {**os.environ}
    if params.get("PASSWORD"):
        env["PGPASSWORD"] = str(params["PASSWORD"])
    result = subprocess.run(command, check=False, env=env, capture_output=True, timeout=120)
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    return result.stdout


def _sqlite_files() -> bytes:
    name = Path(connection.settings_dict["NAME"])
    files = [Path(f"{name}{suffix}") for suffix in ("", "-wal", "-shm", "-journal")]
    present = [path for path in files if path.exists()]
    assert name in present, f"the test database {name} is not a file"
    return b"".join(path.read_bytes() for path in present)


def _database_bytes() -> tuple[str, bytes]:
    if connection.vendor == "postgresql":
        return "pg_dump", _pg_dump()
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI must read a pg_dump of PostgreSQL, not a {connection.vendor} database")
    assert connection.vendor == "sqlite", connection.vendor
    return "sqlite files", _sqlite_files()


def test_when_the_database_is_dumped_then_no_message_file_name_or_draft_is_in_plaintext(
    written, mediator, party_a, party_b, caplog
):
    caplog.set_level(logging.DEBUG)
    _read_back(written, mediator, party_a, party_b)  # reading may write too (sessions, audit)

    source, dump = _database_bytes()

    # The dump is of this database, with what the product committed in it.
    case_id = str(written.case.public_id) if source == "pg_dump" else written.case.public_id.hex
    assert case_id.encode() in dump, f"the case is not in the {source}"
    for sealed in (written.message.body_sealed, written.caucus_message.body_sealed, written.document.name_sealed):
        blob = bytes(sealed)
        assert (blob.hex().encode() in dump.lower()) if source == "pg_dump" else (blob in dump)
    # And nothing confidential in it.
    assert _leaks(dump, written.canaries) == [], f"plaintext found in the {source}"
    assert _leaks(caplog.text.encode("utf-8"), written.canaries) == [], "plaintext found in the logs"


# --- The private media folder ------------------------------------------------------------------


def test_when_the_private_media_folder_is_read_then_no_file_content_or_name_is_in_plaintext(
    written, mediator, party_a, party_b
):
    _read_back(written, mediator, party_a, party_b)
    location = Path(settings.STORAGES["private"]["OPTIONS"]["location"])

    files = sorted(path for path in location.rglob("*") if path.is_file())

    stored = Path(written.document.file.path)
    assert stored in files, f"{stored} is not under {location}"
    assert stored.stat().st_size == len(written.file_bytes) + 1 + 12 + 16  # version, nonce, tag
    for path in files:
        relative = str(path.relative_to(location)).encode("utf-8")
        assert _leaks(relative, written.canaries) == [], f"plaintext in the file name {path}"
        assert _leaks(path.read_bytes(), written.canaries) == [], f"plaintext in {path}"
    assert b"Settlement offer" not in stored.read_bytes()


def test_when_a_pdf_is_shared_then_neither_its_bytes_nor_its_name_are_on_disk_in_plaintext(
    written, party_a, party_b
):
    """A binary file too: its signature and body are sealed, not only text."""
    canary = Canary.make("PDF")
    pdf = b"%PDF-1.4\n%" + canary.text.encode("utf-8") + b"\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
    response = _client(party_a).post(
        reverse("mediation:room_documents", args=[written.joint.public_id]),
        {"file": SimpleUploadedFile(f"{canary.token}.pdf", pdf, content_type="application/pdf")},
    )
    assert response.status_code == 201, response.content
    document = RoomDocument.objects.get(public_id=response.json()["document"]["id"])
    download = _client(party_b).get(reverse("mediation:room_document", args=[written.joint.public_id, document.public_id]))
    assert download.status_code == 200 and b"".join(download.streaming_content) == pdf
    assert download["Content-Type"] == "application/pdf"

    on_disk = Path(document.file.path).read_bytes()

    assert not on_disk.startswith(b"%PDF")
    assert b"%PDF" not in on_disk
    assert _leaks(on_disk, {"pdf": canary}) == []
    assert canary.token not in document.file.name
    assert on_disk[:1] == b"\x01"  # the sealed format's version byte
