"""Master keys as text: parsing (strict, at settings load) and the
development key, generated once into an ignored file so that `make run`
encrypts with a real key from the first start and keeps reading its own data
across restarts (never used with DEBUG off). No Django imports: the settings
module calls this."""

import base64
import binascii
import os
import time
from pathlib import Path

KEY_BYTES = 32


class MasterKeyError(ValueError):
    pass


def parse_master_key(text: str) -> bytes:
    """32 bytes from URL-safe base64; anything else is refused, stray
    characters included."""
    try:
        raw = base64.b64decode(text.strip().encode("ascii"), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        raise MasterKeyError("A master key must be 32 bytes in URL-safe base64.") from None
    if len(raw) != KEY_BYTES:
        raise MasterKeyError("A master key must be 32 bytes in URL-safe base64.")
    return raw


def _read(path: Path) -> str:
    # Another process may have created the file and not written it yet.
    for _attempt in range(50):
        key = path.read_text().strip()
        if key:
            return key
        time.sleep(0.02)
    raise RuntimeError(f"{path} is empty: delete it to generate a new development key.")


def development_master_key(path: Path) -> str:
    try:
        return _read(path)
    except FileNotFoundError:
        pass
    key = base64.urlsafe_b64encode(os.urandom(32)).decode("ascii")
    try:
        # O_EXCL: two processes starting at once agree on one key.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read(path)
    with os.fdopen(fd, "w") as handle:
        handle.write(key + "\n")
    return key
