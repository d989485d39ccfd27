"""Migration mediation 0004 seals what earlier versions stored in plaintext:
message bodies, document names and the documents' files. The database is
migrated back to mediation 0003 (rooms, before encryption at rest), rows are
written there as 0003's code wrote them (historical models), and migrating
forward must leave them sealed, each case under its own data key, readable
by today's code, with no plaintext file left on disk.

The test always leaves the database migrated to the latest state, even when
it fails, so that the tests after it find the schema they expect."""

import hashlib
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.base import ContentFile
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from odr import crypto
from odr.models import DataKey
from sessions.models import Case, RoomDocument, RoomEvent
from sessions.services import rooms
from tests.sealed import document_bytes, document_name, texts
from tests.sessions.room_fixtures import other_case  # noqa: F401  (a fixture)
from tests.sessions.test_plaintext_absence import Canary, _database_bytes, _leaks

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE_SEALING = ("mediation", "0003_rooms")
SEALING = ("mediation", "0004_confidentiality")


def _migrate(targets) -> MigrationExecutor:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor


def _migrate_to_latest() -> None:
    executor = MigrationExecutor(connection)
    _migrate(executor.loader.graph.leaf_nodes())


def _applied() -> set[tuple[str, str]]:
    return set(MigrationExecutor(connection).loader.applied_migrations)


def _joint_in_session(cast_case, mediator, parties):
    joint = rooms.room_joint(cast_case)
    rooms.session_start(room=joint, user=mediator)
    for participant in cast_case.participants.filter(user__in=parties):
        rooms.lobby_admit(room=joint, user=mediator, participant_id=participant.public_id)
    joint.refresh_from_db()
    return joint


def _write_as_0003(apps, room_pk: int, actor_pk: int, *, body: str, document: tuple[str, bytes] | None = None):
    """A message (and a shared document) the way 0003's code stored them:
    the body, the name and the file's bytes in plaintext."""
    Room = apps.get_model("mediation", "Room")
    RoomEvent0003 = apps.get_model("mediation", "RoomEvent")
    RoomDocument0003 = apps.get_model("mediation", "RoomDocument")
    Participant = apps.get_model("mediation", "Participant")
    room = Room.objects.get(pk=room_pk)
    actor = Participant.objects.get(pk=actor_pk)
    created = {}

    def append(kind, **fields):
        room.last_seq += 1
        Room.objects.filter(pk=room.pk).update(last_seq=room.last_seq)
        return RoomEvent0003.objects.create(room=room, seq=room.last_seq, kind=kind, actor=actor, **fields)

    created["message"] = append("message", client_id=uuid.uuid4(), body=body)
    created["redacted"] = append("message", client_id=uuid.uuid4(), body="")  # 0003 emptied redacted bodies
    if document is not None:
        name, data = document
        shared = RoomDocument0003(
            room=room, shared_by=actor, name=name, content_type="text/plain", size=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
        )
        shared.file.save("upload", ContentFile(data), save=False)
        shared.save()
        append("document", document=shared)
        created["document"] = shared
    return created


@pytest.fixture
def migrated(active_case, mediator, party_a, party_b, other_case) -> dict:
    """Two cases whose rooms hold content written by 0003's code, in
    plaintext, and then migrated forward through 0004."""
    canaries = {label: Canary.make(label) for label in ("BODY", "NAME", "FILE", "OTHER")}
    joint = _joint_in_session(active_case, mediator, [party_a, party_b])
    other_joint = _joint_in_session(
        other_case.case, other_case.mediator, [other_case.party_a, other_case.party_b]
    )
    claimant = active_case.participants.get(user=party_a)
    other_claimant = other_case.case.participants.get(user=other_case.party_a)
    name = f"{canaries['NAME'].text}.txt"
    data = f"Шарттар / terms\n{canaries['FILE'].text}\n".encode()
    assert not Case.objects.exclude(data_key=None).exists()  # nothing sealed yet
    location = Path(settings.STORAGES["private"]["OPTIONS"]["location"])

    try:
        _migrate([BEFORE_SEALING])
        assert SEALING not in _applied()
        apps = MigrationExecutor(connection).loader.project_state(BEFORE_SEALING).apps
        written = _write_as_0003(
            apps, joint.pk, claimant.pk, body=canaries["BODY"].text, document=(name, data)
        )
        other = _write_as_0003(apps, other_joint.pk, other_claimant.pk, body=canaries["OTHER"].text)
        plaintext_file = Path(written["document"].file.path)
        assert plaintext_file.read_bytes() == data  # the control: 0003 stored it in the clear
        assert plaintext_file.is_relative_to(location)

        _migrate_to_latest()
        assert SEALING in _applied()
    finally:
        _migrate_to_latest()

    active_case.refresh_from_db()
    other_case.case.refresh_from_db()
    return {
        "canaries": canaries, "cases": (active_case, other_case.case), "joint": joint,
        "written": written, "other": other, "name": name, "data": data,
        "plaintext_file": plaintext_file, "location": location,
    }


def _logical_dump() -> tuple[str, bytes]:
    """What a dump shows: pg_dump on PostgreSQL, the SQL text of the database
    on SQLite (blobs as hex)."""
    if connection.vendor == "postgresql":
        return _database_bytes()
    connection.ensure_connection()
    return "sqlite dump", "\n".join(connection.connection.iterdump()).encode("utf-8")


def _storage_bytes() -> tuple[str, bytes]:
    """What a stolen disk holds: the tables' files as PostgreSQL wrote them
    (after a checkpoint), or the SQLite database files."""
    if connection.vendor != "postgresql":
        return _database_bytes()
    blobs = []
    with connection.cursor() as cursor:
        cursor.execute("CHECKPOINT")
        for model in (RoomEvent, RoomDocument):
            cursor.execute(
                "SELECT pg_read_binary_file(pg_relation_filepath(%s))", [model._meta.db_table]
            )
            blobs.append(bytes(cursor.fetchone()[0]))
    return "table files", b"".join(blobs)


def test_when_0004_runs_then_plaintext_from_0003_is_sealed_per_case_and_opens_with_todays_code(
    migrated,
):
    canaries, written, other = migrated["canaries"], migrated["written"], migrated["other"]
    case, other_case_ = migrated["cases"]

    # Each case got a data key of its own, under the current master key.
    assert case.data_key_id and other_case_.data_key_id
    assert case.data_key_id != other_case_.data_key_id
    assert set(DataKey.objects.values_list("key_id", flat=True)) == {crypto.current_key_id()}

    # Messages: sealed, readable, and only under their own identity and case.
    message = RoomEvent.objects.get(pk=written["message"].pk)
    other_message = RoomEvent.objects.get(pk=other["message"].pk)
    assert texts(RoomEvent.objects.filter(pk=message.pk)) == [canaries["BODY"].text]
    assert texts(RoomEvent.objects.filter(pk=other_message.pk)) == [canaries["OTHER"].text]
    assert _leaks(bytes(message.body_sealed), canaries) == []
    RoomEvent.objects.filter(pk=other_message.pk).update(body_sealed=bytes(message.body_sealed))
    with pytest.raises(crypto.UndecryptableError):
        texts(RoomEvent.objects.filter(pk=other_message.pk))
    # Events without a body stay without one.
    assert RoomEvent.objects.get(pk=written["redacted"].pk).body_sealed is None
    joint = migrated["joint"]
    assert not RoomEvent.objects.filter(
        room=joint, seq__lte=joint.last_seq, body_sealed__isnull=False
    ).exists()

    # The document: name and file sealed and readable; the plaintext file gone.
    document = RoomDocument.objects.get(pk=written["document"].pk)
    assert document_name(document) == migrated["name"]
    assert document_bytes(document) == migrated["data"]
    sealed_file = Path(document.file.path)
    assert sealed_file != migrated["plaintext_file"]
    assert not migrated["plaintext_file"].exists()
    assert sealed_file.read_bytes()[:1] == crypto.FORMAT
    for path in (p for p in migrated["location"].rglob("*") if p.is_file()):
        assert _leaks(path.read_bytes(), canaries) == [], f"plaintext left in {path}"
        assert _leaks(str(path).encode(), canaries) == []

    # A dump of the database shows none of it either.
    source, dump = _logical_dump()
    assert str(document.public_id).replace("-", "").encode() in dump.replace(b"-", b"")
    assert _leaks(dump, canaries) == [], f"plaintext left in the {source} after the migration"


def test_when_0004_has_run_then_no_plaintext_is_left_in_the_database_storage(migrated):
    """Encryption at rest is against stolen disks too (docs/confidentiality.md):
    the plaintext 0003 stored must not stay in the tables' files, as values
    of the dropped columns or as old row versions."""
    source, stored = _storage_bytes()

    assert bytes(RoomEvent.objects.get(pk=migrated["written"]["message"].pk).body_sealed) in stored
    assert _leaks(stored, migrated["canaries"]) == [], f"plaintext left in the {source}"
