"""Encryption at rest: envelope encryption with AES-256-GCM.

Each case has its own data key (a `DataKey` row). Content of the case is
sealed with that key, a fresh 96-bit nonce per item and the item's identity
as associated data, so a ciphertext moved to another row does not open.
The data key itself is stored wrapped (AES-256-GCM again) by the master key
from the environment, under a key id derived from the master key; rotating
the master key rewraps data keys without touching content. Destroying a data
key (crypto-shredding) makes everything sealed with it unreadable for good.

Sealed blob layout: version byte 0x01 | 12-byte nonce | ciphertext+tag.
"""

import base64
import hashlib
import hmac
import os
from functools import lru_cache

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import IntegrityError, transaction
from django.utils import timezone

from odr import devkey
from odr.models import DataKey

FORMAT = b"\x01"
NONCE_BYTES = 12
KEY_BYTES = devkey.KEY_BYTES


class ContentDestroyed(Exception):
    """The data key was destroyed: the content is gone for good."""


class UndecryptableError(Exception):
    """A blob does not open with this key and associated data (tampered,
    moved between rows, or wrapped by a master key we do not hold)."""


# --- Master keys -------------------------------------------------------------------


def generate_master_key() -> str:
    """A new random master key, as ODR_MASTER_KEY expects it."""
    return base64.urlsafe_b64encode(os.urandom(KEY_BYTES)).decode("ascii")


def parse_master_key(text: str) -> bytes:
    try:
        return devkey.parse_master_key(text)
    except devkey.MasterKeyError as error:
        raise ImproperlyConfigured(str(error)) from None


def key_id(raw: bytes) -> str:
    """A public name for a master key: it tells keys apart, reveals nothing."""
    return hashlib.sha256(b"odr-master-key-id\x00" + raw).hexdigest()[:16]


@lru_cache(maxsize=8)
def _keyring(current: str, previous: tuple[str, ...]) -> tuple[str, dict[str, bytes]]:
    if not current:
        raise ImproperlyConfigured("ODR_MASTER_KEY is not set.")
    ring: dict[str, bytes] = {}
    for text in (current, *previous):
        raw = parse_master_key(text)
        ring[key_id(raw)] = raw
    return key_id(parse_master_key(current)), ring


def keyring() -> tuple[str, dict[str, bytes]]:
    """(current key id, {key id: key}) from ODR_MASTER_KEY and the retired
    keys still accepted for reading (ODR_PREVIOUS_MASTER_KEYS)."""
    return _keyring(settings.ODR_MASTER_KEY, tuple(settings.ODR_PREVIOUS_MASTER_KEYS))


def current_key_id() -> str:
    return keyring()[0]


def _wrap_aad(data_key: DataKey, kid: str) -> bytes:
    return b"odr-data-key\x00" + data_key.public_id.bytes + b"\x00" + kid.encode("ascii")


def _wrap(data_key: DataKey, raw_key: bytes) -> None:
    kid, ring = keyring()
    data_key.key_id = kid
    data_key.wrapped = seal_with(ring[kid], raw_key, aad=_wrap_aad(data_key, kid))


def _unwrap(data_key: DataKey) -> bytes:
    if data_key.destroyed_at is not None or not data_key.wrapped:
        raise ContentDestroyed
    _kid, ring = keyring()
    master = ring.get(data_key.key_id)
    if master is None:
        raise UndecryptableError(f"The master key {data_key.key_id} is not configured.")
    return open_with(master, bytes(data_key.wrapped), aad=_wrap_aad(data_key, data_key.key_id))


# --- The primitive --------------------------------------------------------------------


def secrets_equal(given: str | bytes, expected: str | bytes) -> bool:
    """Constant-time equality of a secret someone sent with the one we hold.
    On bytes: `hmac.compare_digest` raises TypeError on a non-ASCII `str`,
    which a hostile header or form field would turn into a 500."""

    def as_bytes(value: str | bytes) -> bytes:
        return value if isinstance(value, bytes) else value.encode("utf-8", "surrogatepass")

    return hmac.compare_digest(as_bytes(given), as_bytes(expected))


def seal_with(key: bytes, plaintext: bytes, *, aad: bytes) -> bytes:
    nonce = os.urandom(NONCE_BYTES)
    return FORMAT + nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def open_with(key: bytes, blob: bytes, *, aad: bytes) -> bytes:
    if len(blob) < 1 + NONCE_BYTES + 16 or blob[:1] != FORMAT:
        raise UndecryptableError("Not a sealed blob.")
    try:
        return AESGCM(key).decrypt(blob[1 : 1 + NONCE_BYTES], blob[1 + NONCE_BYTES :], aad)
    except InvalidTag:
        raise UndecryptableError("The blob does not open with this key and identity.") from None


# --- Data keys --------------------------------------------------------------------------


class Cipher:
    """Seals and opens the content of one data key's owner (a case)."""

    def __init__(self, raw_key: bytes):
        self._key = raw_key

    def seal(self, plaintext: bytes, *, aad: str) -> bytes:
        return seal_with(self._key, plaintext, aad=aad.encode("utf-8"))

    def open(self, blob: bytes | memoryview, *, aad: str) -> bytes:
        return open_with(self._key, bytes(blob), aad=aad.encode("utf-8"))

    def seal_text(self, text: str, *, aad: str) -> bytes:
        return self.seal(text.encode("utf-8"), aad=aad)

    def open_text(self, blob: bytes | memoryview, *, aad: str) -> str:
        return self.open(blob, aad=aad).decode("utf-8")


def data_key_create() -> DataKey:
    """A fresh random data key, stored wrapped by the current master key."""
    data_key = DataKey()
    _wrap(data_key, AESGCM.generate_key(bit_length=256))
    data_key.save()
    return data_key


def cipher(data_key: DataKey) -> Cipher:
    """The cipher of a data key; ContentDestroyed once it was shredded."""
    return Cipher(_unwrap(data_key))


def platform_cipher(purpose: str) -> Cipher:
    """The cipher of a platform-wide data key (not a case's), created on
    first use; rotated with the master key like every other."""
    data_key = DataKey.objects.filter(purpose=purpose).first()
    if data_key is None:
        try:
            with transaction.atomic():
                data_key = DataKey(purpose=purpose)
                _wrap(data_key, AESGCM.generate_key(bit_length=256))
                data_key.save()
        except IntegrityError:  # another process created it first
            data_key = DataKey.objects.get(purpose=purpose)
    return cipher(data_key)


def data_key_destroy(data_key: DataKey) -> None:
    """Crypto-shredding: the wrapped key is overwritten and forgotten. Call
    inside the transaction that deletes the content it sealed."""
    DataKey.objects.filter(pk=data_key.pk).update(wrapped=None, destroyed_at=timezone.now())
    data_key.wrapped = None
    data_key.destroyed_at = timezone.now()


def rewrap_all(*, batch: int = 500) -> tuple[int, int]:
    """Rewrap every live data key not under the current master key.
    Returns (rewrapped, already current). Content is not touched."""
    kid = current_key_id()
    rewrapped = 0
    while True:
        with transaction.atomic():
            rows = list(
                DataKey.objects.select_for_update()
                .filter(destroyed_at__isnull=True)
                .exclude(key_id=kid)
                .order_by("pk")[:batch]
            )
            for data_key in rows:
                raw = _unwrap(data_key)
                _wrap(data_key, raw)
                data_key.save(update_fields=["key_id", "wrapped"])
        rewrapped += len(rows)
        if len(rows) < batch:
            break
    current = DataKey.objects.filter(destroyed_at__isnull=True, key_id=kid).count() - rewrapped
    return rewrapped, current
