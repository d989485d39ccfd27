"""Encryption at rest (odr/crypto.py) through its public functions: sealing
round trips, a fresh nonce per item, the item's identity as associated data
(also between real rows), tampering, crypto-shredding, master-key ids and
configuration, and the settings refusing to start without a key in
production (a fresh process per run, since settings are read once)."""

import base64
import os
import secrets
import string
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.files.uploadedfile import SimpleUploadedFile

from agreements.services import drafts as agreements
from agreements.models import Draft
from odr import crypto
from odr.crypto import ContentDestroyed, UndecryptableError
from odr.models import DataKey
from sessions.models import RoomDocument, RoomEvent
from sessions.services import confidentiality, documents, rooms
from tests.sealed import document_bytes, document_name, texts

ROOT = Path(__file__).resolve().parents[2]
AAD = b"room-event:00000000-0000-0000-0000-000000000001:body"


def _key() -> bytes:
    return os.urandom(crypto.KEY_BYTES)


def _flip(blob: bytes, index: int) -> bytes:
    data = bytearray(blob)
    data[index] ^= 0x01
    return bytes(data)


# --- The primitive and a data key's cipher -----------------------------------------------


@pytest.mark.parametrize(
    "plaintext",
    [
        b"",
        b"x",
        "Біз келісімге келдік — мы договорились, ақша 150 000 ₸".encode(),
        bytes(range(256)) * 40,  # binary, larger than a block
    ],
    ids=["empty", "one-byte", "kazakh-cyrillic", "binary-10k"],
)
def test_when_sealed_with_a_key_and_identity_then_the_same_pair_opens_it(plaintext):
    key = _key()

    blob = crypto.seal_with(key, plaintext, aad=AAD)

    assert crypto.open_with(key, blob, aad=AAD) == plaintext
    # version byte | 12-byte nonce | ciphertext | 16-byte tag
    assert blob[:1] == crypto.FORMAT
    assert len(blob) == 1 + crypto.NONCE_BYTES + len(plaintext) + 16
    if len(plaintext) >= 8:  # a shorter one can occur in random bytes by chance
        assert plaintext not in blob


def test_when_a_data_key_seals_text_then_its_cipher_reopens_it_after_reloading_the_row(db):
    data_key = crypto.data_key_create()
    text = "Құпия: the claimant would accept 70 %"

    blob = crypto.cipher(data_key).seal_text(text, aad="agreement-draft:1:text")

    reloaded = DataKey.objects.get(pk=data_key.pk)
    assert crypto.cipher(reloaded).open_text(blob, aad="agreement-draft:1:text") == text
    assert crypto.cipher(reloaded).open(memoryview(blob), aad="agreement-draft:1:text") == text.encode()


def test_when_the_same_plaintext_is_sealed_twice_then_the_blobs_and_nonces_differ(db):
    cipher = crypto.cipher(crypto.data_key_create())
    text = "the same words, twice"

    blobs = [cipher.seal_text(text, aad="room-event:x:body") for _ in range(20)]

    assert len(set(blobs)) == len(blobs)
    nonces = {blob[1 : 1 + crypto.NONCE_BYTES] for blob in blobs}
    assert len(nonces) == len(blobs)
    assert {cipher.open_text(blob, aad="room-event:x:body") for blob in blobs} == {text}


def test_when_two_data_keys_are_created_then_each_seals_for_itself_only(db):
    first, second = crypto.data_key_create(), crypto.data_key_create()

    blob = crypto.cipher(first).seal_text("case one only", aad="room-event:x:body")

    assert first.public_id != second.public_id
    assert bytes(first.wrapped) != bytes(second.wrapped)
    with pytest.raises(UndecryptableError):
        crypto.cipher(second).open_text(blob, aad="room-event:x:body")


@pytest.mark.parametrize(
    "other_aad",
    [
        b"room-event:00000000-0000-0000-0000-000000000002:body",  # another row
        b"room-document:00000000-0000-0000-0000-000000000001:name",  # another kind and field
        b"room-event:00000000-0000-0000-0000-000000000001:body ",  # one byte more
        b"",
    ],
    ids=["other-row", "other-kind", "one-byte-more", "no-identity"],
)
def test_when_opened_under_another_identity_then_undecryptable(other_aad):
    key = _key()
    blob = crypto.seal_with(key, b"said in the joint room", aad=AAD)

    with pytest.raises(UndecryptableError):
        crypto.open_with(key, blob, aad=other_aad)


def test_when_opened_with_another_key_then_undecryptable():
    blob = crypto.seal_with(_key(), b"said in the joint room", aad=AAD)

    with pytest.raises(UndecryptableError):
        crypto.open_with(_key(), blob, aad=AAD)


@pytest.mark.parametrize(
    "index",
    [0, 1, crypto.NONCE_BYTES, crypto.NONCE_BYTES + 1, crypto.NONCE_BYTES + 5, -16, -1],
    ids=["version", "nonce-first", "nonce-last", "ciphertext-first", "ciphertext-middle", "tag-first", "tag-last"],
)
def test_when_one_byte_of_a_blob_is_flipped_then_undecryptable(index):
    key = _key()
    blob = crypto.seal_with(key, b"twelve bytes", aad=AAD)

    with pytest.raises(UndecryptableError):
        crypto.open_with(key, _flip(blob, index), aad=AAD)


@pytest.mark.parametrize(
    "mangle",
    [lambda b: b"", lambda b: b[:-1], lambda b: b[: 1 + crypto.NONCE_BYTES + 15], lambda b: b + b"\x00"],
    ids=["empty", "last-byte-cut", "shorter-than-a-tag", "byte-appended"],
)
def test_when_a_blob_is_truncated_or_extended_then_undecryptable(mangle):
    key = _key()
    blob = crypto.seal_with(key, b"", aad=AAD)

    with pytest.raises(UndecryptableError):
        crypto.open_with(key, mangle(blob), aad=AAD)


# --- Between real rows ------------------------------------------------------------------------


@pytest.fixture
def speaking(active_case, mediator, party_a, party_b):
    """The joint room in session, both parties admitted."""
    joint = rooms.room_joint(active_case)
    rooms.session_start(room=joint, user=mediator)
    for party in (party_a, party_b):
        participant = active_case.participants.get(user=party)
        rooms.lobby_admit(room=joint, user=mediator, participant_id=participant.public_id)
    joint.refresh_from_db()
    return joint


def _post(room, user, body) -> RoomEvent:
    event, created = rooms.message_post(room=room, user=user, client_id=uuid.uuid4(), body=body)
    assert created
    return RoomEvent.objects.get(pk=event.pk)


def test_when_one_messages_ciphertext_is_copied_onto_another_message_then_reading_it_fails(
    speaking, party_a, party_b
):
    first = _post(speaking, party_a, "Мен келісемін: first message")
    second = _post(speaking, party_b, "second message")
    assert texts(RoomEvent.objects.filter(pk__in=[first.pk, second.pk]).order_by("seq")) == [
        "Мен келісемін: first message", "second message",
    ]

    # Same room, same case, same data key: only the identity differs.
    RoomEvent.objects.filter(pk=second.pk).update(body_sealed=bytes(first.body_sealed))

    with pytest.raises(UndecryptableError):
        texts(RoomEvent.objects.filter(pk=second.pk))
    assert texts(RoomEvent.objects.filter(pk=first.pk)) == ["Мен келісемін: first message"]


def test_when_a_documents_sealed_name_is_copied_onto_its_file_identity_then_reading_fails(speaking, party_a):
    document = documents.document_share(
        room=speaking, user=party_a, upload=SimpleUploadedFile("terms.txt", b"the terms")
    )
    document = RoomDocument.objects.get(pk=document.pk)
    assert document_name(document) == "terms.txt"

    # The name's blob written over the file: same row, different field.
    Path(document.file.path).write_bytes(bytes(document.name_sealed))

    with pytest.raises(UndecryptableError):
        document_bytes(RoomDocument.objects.get(pk=document.pk))


def test_when_a_drafts_ciphertext_is_copied_onto_another_version_then_reading_it_fails(active_case, mediator):
    first = agreements.draft_save(case=active_case, user=mediator, terms="Version one: 100 000 ₸")
    second = agreements.draft_save(case=active_case, user=mediator, terms="Version two: 120 000 ₸")

    Draft.objects.filter(pk=second.pk).update(text_sealed=bytes(Draft.objects.get(pk=first.pk).text_sealed))

    with pytest.raises(UndecryptableError):
        agreements.draft_text(Draft.objects.get(pk=second.pk))
    assert agreements.draft_text(Draft.objects.get(pk=first.pk)) == "Version one: 100 000 ₸"


def test_when_one_byte_of_a_stored_message_is_flipped_then_reading_it_fails(speaking, party_a):
    event = _post(speaking, party_a, "a message that will be tampered with")

    RoomEvent.objects.filter(pk=event.pk).update(body_sealed=_flip(bytes(event.body_sealed), -1))

    with pytest.raises(UndecryptableError):
        texts(RoomEvent.objects.filter(pk=event.pk))


def test_when_one_byte_of_a_stored_file_is_flipped_then_reading_it_fails(speaking, party_a):
    document = documents.document_share(
        room=speaking, user=party_a, upload=SimpleUploadedFile("offer.txt", b"an offer of settlement")
    )
    path = Path(document.file.path)
    path.write_bytes(_flip(path.read_bytes(), crypto.NONCE_BYTES + 3))

    with pytest.raises(UndecryptableError):
        document_bytes(RoomDocument.objects.get(pk=document.pk))


# --- Wrapped data keys and crypto-shredding ---------------------------------------------------


def test_when_a_wrapped_key_is_copied_onto_another_data_key_row_then_it_does_not_unwrap(db):
    first, second = crypto.data_key_create(), crypto.data_key_create()

    DataKey.objects.filter(pk=second.pk).update(wrapped=bytes(first.wrapped))

    with pytest.raises(UndecryptableError):
        crypto.cipher(DataKey.objects.get(pk=second.pk))
    crypto.cipher(DataKey.objects.get(pk=first.pk))  # the original still opens


def test_when_a_data_key_is_destroyed_then_its_cipher_raises_content_destroyed_for_good(db):
    data_key = crypto.data_key_create()
    crypto.cipher(data_key).seal_text("to be shredded", aad="room-event:x:body")

    crypto.data_key_destroy(data_key)

    reloaded = DataKey.objects.get(pk=data_key.pk)
    assert reloaded.wrapped is None
    assert reloaded.destroyed_at is not None
    for row in (data_key, reloaded):
        with pytest.raises(ContentDestroyed):
            crypto.cipher(row)


def test_when_a_cases_data_key_is_destroyed_then_its_messages_no_longer_open(speaking, party_a):
    event = _post(speaking, party_a, "said before the shredding")
    case = speaking.case
    case.refresh_from_db()

    crypto.data_key_destroy(case.data_key)

    with pytest.raises(ContentDestroyed):
        confidentiality.case_cipher(case)
    assert RoomEvent.objects.get(pk=event.pk).body_sealed is not None  # only the key went


# --- Master keys -------------------------------------------------------------------------------


def test_when_master_keys_differ_then_their_key_ids_differ_and_each_is_stable():
    one, two = crypto.generate_master_key(), crypto.generate_master_key()

    id_one = crypto.key_id(crypto.parse_master_key(one))
    id_two = crypto.key_id(crypto.parse_master_key(two))

    assert id_one != id_two
    assert id_one == crypto.key_id(crypto.parse_master_key(one))
    for kid in (id_one, id_two):
        assert len(kid) == 16 and set(kid) <= set(string.hexdigits.lower())


def test_when_the_master_key_changes_then_new_data_keys_carry_the_new_key_id(db, settings):
    one, two = crypto.generate_master_key(), crypto.generate_master_key()

    settings.ODR_MASTER_KEY, settings.ODR_PREVIOUS_MASTER_KEYS = one, []
    under_one = crypto.data_key_create()
    settings.ODR_MASTER_KEY = two
    under_two = crypto.data_key_create()

    assert under_one.key_id == crypto.key_id(crypto.parse_master_key(one))
    assert under_two.key_id == crypto.key_id(crypto.parse_master_key(two)) == crypto.current_key_id()
    assert DataKey.objects.get(pk=under_one.pk).key_id != DataKey.objects.get(pk=under_two.pk).key_id


def test_when_generated_then_a_master_key_is_32_random_bytes_in_urlsafe_base64():
    keys = {crypto.generate_master_key() for _ in range(10)}

    assert len(keys) == 10
    for key in keys:
        assert len(crypto.parse_master_key(key)) == 32
        assert base64.urlsafe_b64decode(key) == crypto.parse_master_key(key)


MALFORMED = {
    "empty": "",
    "not-base64": "this is not a key at all",
    "16-bytes": base64.urlsafe_b64encode(b"k" * 16).decode(),
    "31-bytes": base64.urlsafe_b64encode(b"k" * 31).decode(),
    "33-bytes": base64.urlsafe_b64encode(b"k" * 33).decode(),
    "64-bytes": base64.urlsafe_b64encode(b"k" * 64).decode(),
    "non-ascii": "ключ" * 11,
    "bad-padding": base64.urlsafe_b64encode(b"k" * 32).decode().rstrip("=")[:-1],
}


@pytest.mark.parametrize("text", list(MALFORMED.values()), ids=list(MALFORMED))
def test_when_the_master_key_is_malformed_then_improperly_configured(db, settings, text):
    settings.ODR_MASTER_KEY, settings.ODR_PREVIOUS_MASTER_KEYS = text, []

    with pytest.raises(ImproperlyConfigured):
        crypto.current_key_id()
    with pytest.raises(ImproperlyConfigured):
        crypto.data_key_create()
    assert not DataKey.objects.exists()


@pytest.mark.parametrize("text", [t for t in MALFORMED.values() if t], ids=[n for n, t in MALFORMED.items() if t])
def test_when_a_previous_master_key_is_malformed_then_improperly_configured(settings, text):
    settings.ODR_MASTER_KEY = crypto.generate_master_key()
    settings.ODR_PREVIOUS_MASTER_KEYS = [text]

    with pytest.raises(ImproperlyConfigured):
        crypto.keyring()


def test_when_a_data_key_is_wrapped_by_an_unconfigured_master_key_then_undecryptable(db, settings):
    settings.ODR_MASTER_KEY, settings.ODR_PREVIOUS_MASTER_KEYS = crypto.generate_master_key(), []
    data_key = crypto.data_key_create()

    settings.ODR_MASTER_KEY = crypto.generate_master_key()

    with pytest.raises(UndecryptableError):
        crypto.cipher(DataKey.objects.get(pk=data_key.pk))


# --- Settings in a fresh process ---------------------------------------------------------------

# Variables odr/settings.py reads that could change the outcome; the parent's
# values must not leak into the child.
_SETTINGS_VARS = {
    "DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "CSRF_TRUSTED_ORIGINS", "SITE_URL", "DATABASE_URL",
    "REDIS_URL", "ODR_ENV_FILE", "ODR_MASTER_KEY", "ODR_MASTER_KEY_FILE", "ODR_PREVIOUS_MASTER_KEYS",
    "ODR_DEMO_MODE", "EMAIL_URL", "SESSION_COOKIE_AGE", "SESSION_IDLE_SECONDS",
    "DJANGO_SETTINGS_MODULE", "DJANGO_ALLOW_ASYNC_UNSAFE",
}


def _environment(**overrides):
    env = {key: value for key, value in os.environ.items() if key not in _SETTINGS_VARS}
    for key in ("DATABASE_URL", "REDIS_URL"):
        if os.environ.get(key):
            env[key] = os.environ[key]
    env["DJANGO_SETTINGS_MODULE"] = "odr.settings"
    env.update(overrides)
    return {key: value for key, value in env.items() if value is not None}


def _production(**overrides):
    secret = "".join(secrets.choice(string.ascii_letters + string.digits + "-_!@#") for _ in range(64))
    return _environment(
        **{"DEBUG": "false", "SECRET_KEY": secret, "ALLOWED_HOSTS": "odr.example.kz", **overrides}
    )


def _run(args, env):
    return subprocess.run(
        [sys.executable, *args], check=False, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


_PRINT_KEY = "from django.conf import settings; print(settings.ODR_MASTER_KEY)"


def test_when_debug_is_off_and_no_master_key_is_set_then_settings_refuse_to_load(tmp_path):
    # A development key file exists and would do for DEBUG on; not in production.
    key_file = tmp_path / "dev-key"
    key_file.write_text(crypto.generate_master_key() + "\n")

    refused = _run(["manage.py", "check"], _production(ODR_MASTER_KEY_FILE=str(key_file)))
    accepted = _run(["manage.py", "check"], _production(ODR_MASTER_KEY=crypto.generate_master_key()))

    assert refused.returncode != 0
    assert "ImproperlyConfigured" in refused.stderr
    assert "ODR_MASTER_KEY must be set when DEBUG is off" in refused.stderr
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr


def test_when_debug_is_on_without_a_master_key_then_one_development_key_is_created_and_kept(tmp_path):
    key_file = tmp_path / "dev-key"
    env = _environment(ODR_MASTER_KEY_FILE=str(key_file))

    first = _run(["-c", f"import django; django.setup(); {_PRINT_KEY}"], env)
    second = _run(["-c", f"import django; django.setup(); {_PRINT_KEY}"], env)

    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    key = first.stdout.strip().splitlines()[-1]
    assert second.stdout.strip().splitlines()[-1] == key
    assert key_file.read_text().strip() == key
    assert len(crypto.parse_master_key(key)) == 32
    assert key_file.stat().st_mode & 0o077 == 0  # readable by its owner only
