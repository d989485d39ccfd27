"""`manage.py rotate_master_key`: every live data key is rewrapped under the
new master key (ODR_MASTER_KEY) while the old one is still accepted for
reading (ODR_PREVIOUS_MASTER_KEYS); content is not touched; afterwards the
new key alone reads everything and the old key alone reads nothing.
odr.crypto reads the settings at call time, so the `settings` fixture
switches keys as a restart with new environment variables would."""

import datetime
import io
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django.urls import reverse

from agreements.services import drafts as agreements
from agreements.models import Draft
from odr import crypto
from odr.audit import SYSTEM
from odr.crypto import UndecryptableError
from odr.models import AuditAction, AuditEvent, DataKey
from sessions.models import CaseStatus, RoomDocument, RoomEvent
from sessions.services import documents, procedure, retention, rooms
from tests.sealed import document_bytes, document_name, texts
from tests.sessions.room_fixtures import other_case  # noqa: F401  (a fixture)


def _kid(key: str) -> str:
    return crypto.key_id(crypto.parse_master_key(key))


@dataclass(frozen=True)
class Keys:
    old: str
    new: str

    @property
    def old_id(self) -> str:
        return _kid(self.old)

    @property
    def new_id(self) -> str:
        return _kid(self.new)


@pytest.fixture
def keys(settings) -> Keys:
    """Two master keys; the old one is in force while content is written."""
    pair = Keys(old=crypto.generate_master_key(), new=crypto.generate_master_key())
    settings.ODR_MASTER_KEY, settings.ODR_PREVIOUS_MASTER_KEYS = pair.old, []
    return pair


def use_keys(settings, current: str, *previous: str) -> None:
    settings.ODR_MASTER_KEY, settings.ODR_PREVIOUS_MASTER_KEYS = current, list(previous)


@dataclass
class Content:
    """What was written under the old key, with the plaintext it must read as."""

    joint: object
    message: RoomEvent
    caucus_message: RoomEvent
    document: RoomDocument
    drafts: list[Draft]
    other_draft: Draft
    expected: dict[str, object] = field(default_factory=dict)


def _post(room, user, body) -> RoomEvent:
    event, _ = rooms.message_post(room=room, user=user, client_id=uuid.uuid4(), body=body)
    return RoomEvent.objects.get(pk=event.pk)


@pytest.fixture
def content(keys, active_case, mediator, party_a, party_b, other_case) -> Content:
    """Two cases' content sealed under the old master key: messages in the
    joint room and a caucus, a shared document and two draft versions; the
    other case has a draft of its own (its own data key)."""
    claimant = active_case.participants.get(user=party_a)
    joint = rooms.room_joint(active_case)
    rooms.session_start(room=joint, user=mediator)
    for participant in active_case.participants.filter(user__in=[party_a, party_b]):
        rooms.lobby_admit(room=joint, user=mediator, participant_id=participant.public_id)
    caucus = rooms.caucus_open(room=joint, user=mediator, party_id=claimant.public_id)
    message = _post(joint, party_b, "Біз 500 000 ₸ ұсынамыз")
    caucus_message = _post(caucus, party_a, "Between us: I would take 400 000 ₸")
    shared = documents.document_share(
        room=joint, user=party_a, upload=SimpleUploadedFile("Есеп-шот.txt", "Шот № 17: 500 000 ₸\n".encode())
    )
    drafts = [
        agreements.draft_save(case=active_case, user=mediator, terms=text)
        for text in ("Келісім v1: 450 000 ₸", "Келісім v2: 470 000 ₸")
    ]
    other_draft = agreements.draft_save(case=other_case.case, user=other_case.mediator, terms="Другое дело: мир")

    assert set(DataKey.objects.values_list("key_id", flat=True)) == {keys.old_id}
    assert DataKey.objects.filter(purpose__isnull=True).count() == 2  # one per case (and the accounts key)
    return Content(
        joint=joint,
        message=message,
        caucus_message=caucus_message,
        document=RoomDocument.objects.get(pk=shared.pk),
        drafts=[Draft.objects.get(pk=d.pk) for d in drafts],
        other_draft=Draft.objects.get(pk=other_draft.pk),
        expected={
            "message": "Біз 500 000 ₸ ұсынамыз",
            "caucus message": "Between us: I would take 400 000 ₸",
            "document name": "Есеп-шот.txt",
            "document file": "Шот № 17: 500 000 ₸\n".encode(),
            "draft v1": "Келісім v1: 450 000 ₸",
            "draft v2": "Келісім v2: 470 000 ₸",
            "other case's draft": "Другое дело: мир",
        },
    )


# Each piece of content, read through the product's own code from fresh rows.
READERS = {
    "message": lambda c: texts(RoomEvent.objects.filter(pk=c.message.pk))[0],
    "caucus message": lambda c: texts(RoomEvent.objects.filter(pk=c.caucus_message.pk))[0],
    "document name": lambda c: document_name(RoomDocument.objects.get(pk=c.document.pk)),
    "document file": lambda c: document_bytes(RoomDocument.objects.get(pk=c.document.pk)),
    "draft v1": lambda c: agreements.draft_text(Draft.objects.get(pk=c.drafts[0].pk)),
    "draft v2": lambda c: agreements.draft_text(Draft.objects.get(pk=c.drafts[1].pk)),
    "other case's draft": lambda c: agreements.draft_text(Draft.objects.get(pk=c.other_draft.pk)),
}


def _read_all(c: Content) -> dict[str, object]:
    return {name: read(c) for name, read in READERS.items()}


def _sealed_bytes(c: Content) -> dict[str, bytes]:
    """Every ciphertext of the content as stored (rows and the file on disk)."""
    sealed = {
        f"event {pk}": bytes(body)
        for pk, body in RoomEvent.objects.filter(body_sealed__isnull=False).values_list("pk", "body_sealed")
    }
    sealed |= {
        f"draft {pk}": bytes(text) for pk, text in Draft.objects.values_list("pk", "text_sealed")
    }
    for document in RoomDocument.objects.all():
        sealed[f"document name {document.pk}"] = bytes(document.name_sealed)
        sealed[f"document file {document.pk}"] = Path(document.file.path).read_bytes()
    return sealed


def _data_keys() -> dict[int, tuple]:
    return {
        pk: (kid, bytes(wrapped) if wrapped is not None else None, destroyed_at)
        for pk, kid, wrapped, destroyed_at in DataKey.objects.values_list("pk", "key_id", "wrapped", "destroyed_at")
    }


def _rotate(*args) -> str:
    out = io.StringIO()
    call_command("rotate_master_key", *args, stdout=out)
    return out.getvalue()


def _rotations() -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=AuditAction.MASTER_KEY_ROTATED).order_by("id"))


# --- Rotation ---------------------------------------------------------------------------------


def _platform_keys() -> int:
    """The platform's own data keys (2FA secrets of the mediators with TOTP),
    rotated along with the cases' keys."""
    return DataKey.objects.filter(purpose__isnull=False).count()


def test_when_rotated_then_every_live_data_key_is_rewrapped_under_the_new_key_and_content_is_untouched(
    settings, keys, content
):
    sealed_before, keys_before = _sealed_bytes(content), _data_keys()
    use_keys(settings, keys.new, keys.old)
    already_new = crypto.data_key_create()  # written after the restart, before the rotation
    already_new_wrapped = bytes(already_new.wrapped)

    output = _rotate()

    after = _data_keys()
    assert {kid for kid, _w, _d in after.values()} == {keys.new_id}
    for pk, (_kid_before, wrapped_before, _d) in keys_before.items():
        assert after[pk][1] != wrapped_before, "a data key was not rewrapped"
    assert after[already_new.pk][1] == already_new_wrapped  # already current: left as it was
    assert _sealed_bytes(content) == sealed_before  # not one byte of content changed
    assert _read_all(content) == content.expected
    rewrapped = 2 + _platform_keys()
    assert f"Master key {keys.new_id}: {rewrapped} data keys rewrapped, 1 already under it, 0 left." in output


def test_when_rotated_then_an_audit_row_records_the_new_key_id_and_the_counts(settings, keys, content):
    use_keys(settings, keys.new, keys.old)

    _rotate()

    (row,) = _rotations()
    assert row.actor is None and row.actor_label == "system"
    assert row.details == {"key_id": keys.new_id, "rewrapped": 2 + _platform_keys(), "already_current": 0}
    assert keys.old not in str(row.details) and keys.new not in str(row.details)  # key ids, never keys


@pytest.mark.parametrize("piece", list(READERS))
def test_when_rotated_then_the_new_key_alone_reads_it_and_the_old_key_alone_does_not(settings, keys, content, piece):
    read = READERS[piece]
    expected = content.expected[piece]
    # Before the rotation the new key alone cannot read what the old one wrapped:
    use_keys(settings, keys.new)
    with pytest.raises(UndecryptableError):
        read(content)
    use_keys(settings, keys.new, keys.old)
    assert read(content) == expected

    _rotate()

    use_keys(settings, keys.new)
    assert read(content) == expected
    use_keys(settings, keys.old)
    with pytest.raises(UndecryptableError):
        read(content)
    # Not even with the rows relabelled as wrapped by the old key: the old
    # master key does not unwrap what the new one wrapped.
    DataKey.objects.update(key_id=keys.old_id)
    with pytest.raises(UndecryptableError):
        read(content)


def test_when_rotated_and_the_old_key_is_retired_then_the_site_still_serves_the_content(
    settings, keys, content, party_a, party_b
):
    use_keys(settings, keys.new, keys.old)
    _rotate()
    use_keys(settings, keys.new)
    client = Client()
    client.force_login(party_b)

    page = client.get(reverse("mediation:room", args=[content.joint.public_id]))
    download = client.get(reverse("mediation:room_document", args=[content.joint.public_id, content.document.public_id]))
    event, _ = rooms.message_post(room=content.joint, user=party_a, client_id=uuid.uuid4(), body="after the rotation")

    assert page.status_code == 200
    assert content.expected["message"] in [f.get("body") for f in page.context["client"]["events"]]
    assert download.status_code == 200
    assert b"".join(download.streaming_content) == content.expected["document file"]
    assert texts(RoomEvent.objects.filter(pk=event.pk)) == ["after the rotation"]


def test_when_the_old_key_is_not_configured_then_rotation_fails_and_changes_nothing(settings, keys, content):
    sealed_before, keys_before = _sealed_bytes(content), _data_keys()
    use_keys(settings, keys.new)  # the old key was forgotten in ODR_PREVIOUS_MASTER_KEYS

    with pytest.raises(CommandError, match="ODR_PREVIOUS_MASTER_KEYS"):
        _rotate()

    assert _data_keys() == keys_before
    assert _sealed_bytes(content) == sealed_before
    assert _rotations() == []
    use_keys(settings, keys.old)
    assert _read_all(content) == content.expected


def test_when_run_twice_then_the_second_run_changes_nothing(settings, keys, content):
    use_keys(settings, keys.new, keys.old)
    _rotate()
    keys_between, sealed_between = _data_keys(), _sealed_bytes(content)

    output = _rotate()

    assert _data_keys() == keys_between
    assert _sealed_bytes(content) == sealed_between
    live = 2 + _platform_keys()
    assert f"Master key {keys.new_id}: 0 data keys rewrapped, {live} already under it, 0 left." in output
    assert [row.details["rewrapped"] for row in _rotations()] == [live, 0]
    assert _read_all(content) == content.expected


def test_when_a_cases_content_was_destroyed_then_rotation_skips_its_data_key(
    settings, keys, content, other_case, active_case
):
    """The other case closes and its retention period passes: its key is
    shredded, and stays as the record that it happened, under the old id."""
    procedure.case_close(case=other_case.case, user=other_case.mediator, outcome=CaseStatus.NOT_SETTLED, origin=SYSTEM)
    other_case.case.refresh_from_db()
    later = other_case.case.closed_at + datetime.timedelta(days=settings.ODR_RETENTION_DAYS + 1)
    assert retention.case_content_destroy(case_id=other_case.case.pk, now=later)
    other_case.case.refresh_from_db()
    shredded = other_case.case.data_key
    assert shredded.destroyed_at is not None and shredded.wrapped is None
    before = _data_keys()[shredded.pk]
    use_keys(settings, keys.new, keys.old)

    output = _rotate()

    assert _data_keys()[shredded.pk] == before == (keys.old_id, None, shredded.destroyed_at)
    rewrapped = 1 + _platform_keys()
    assert f"Master key {keys.new_id}: {rewrapped} data keys rewrapped, 0 already under it, 0 left." in output
    active_case.refresh_from_db()
    assert active_case.data_key.key_id == keys.new_id


def test_when_rewrapped_in_small_batches_then_every_key_is_rewrapped_once(settings, keys, db):
    created = [crypto.data_key_create() for _ in range(5)]
    sealed = [crypto.cipher(k).seal_text(f"item {i}", aad=f"x:{i}") for i, k in enumerate(created)]
    use_keys(settings, keys.new, keys.old)

    assert crypto.rewrap_all(batch=2) == (5, 0)

    use_keys(settings, keys.new)
    for i, data_key in enumerate(DataKey.objects.order_by("pk")):
        assert data_key.key_id == keys.new_id
        assert crypto.cipher(data_key).open_text(sealed[i], aad=f"x:{i}") == f"item {i}"
    assert crypto.rewrap_all(batch=2) == (0, 5)


def test_when_asked_to_generate_then_a_valid_new_key_is_printed_and_nothing_is_rewrapped(settings, keys, content):
    use_keys(settings, keys.new, keys.old)
    before = _data_keys()

    printed = [_rotate("--generate").strip() for _ in range(2)]

    for key in printed:
        assert len(crypto.parse_master_key(key)) == crypto.KEY_BYTES
        assert key not in (keys.old, keys.new)
    assert printed[0] != printed[1]
    assert _data_keys() == before
    assert _rotations() == []
