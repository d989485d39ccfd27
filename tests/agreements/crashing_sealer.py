"""A sealer that kills its own process the moment it is asked to sign or
seal: the crash-recovery test sets it as ODR_SEAL_BACKEND of a real
`manage.py db_worker`, so that the worker dies in the middle of sealing, as
a worker killed by the OOM killer or a lost machine would."""

import os

EXIT_STATUS = 9


class CrashingSealer:
    @classmethod
    def from_settings(cls) -> "CrashingSealer":
        return cls()

    def sign(self, pdf: bytes, *, field: str, reason: str, stamp: str | None = None) -> bytes:
        os._exit(EXIT_STATUS)

    def seal(self, pdf: bytes, *, reason: str) -> bytes:
        os._exit(EXIT_STATUS)
