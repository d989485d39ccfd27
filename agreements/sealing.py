"""The platform's seal on a finished agreement: a PAdES signature over the
whole PDF. The backend is chosen by ODR_SEAL_BACKEND: a local PKCS#12 file
now; an HSM or a national signature service later, as a class with the same
`seal` method."""

import io
from functools import lru_cache

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import fields, signers

SEAL_FIELD = "PlatformSeal"


class Pkcs12Sealer:
    """Seals with the key and certificate in ODR_SEAL_PKCS12."""

    def __init__(self, path: str, passphrase: str):
        try:
            self._signer = signers.SimpleSigner.load_pkcs12(pfx_file=path, passphrase=passphrase.encode())
        except (OSError, ValueError) as error:
            raise ImproperlyConfigured(f"The seal's PKCS#12 file {path} cannot be read: {error}") from None
        if self._signer is None:
            raise ImproperlyConfigured(f"The seal's PKCS#12 file {path} cannot be opened with its passphrase.")

    @classmethod
    def from_settings(cls) -> "Pkcs12Sealer":
        return cls(settings.ODR_SEAL_PKCS12, settings.ODR_SEAL_PASSPHRASE)

    @property
    def certificate(self):
        return self._signer.signing_cert

    def seal(self, pdf: bytes, *, reason: str) -> bytes:
        writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
        metadata = signers.PdfSignatureMetadata(
            field_name=SEAL_FIELD,
            reason=reason,
            subfilter=fields.SigSeedSubFilter.PADES,
            md_algorithm="sha256",
        )
        return signers.PdfSigner(metadata, signer=self._signer).sign_pdf(writer).getvalue()


@lru_cache(maxsize=4)
def _sealer(backend: str, path: str, passphrase: str):
    return import_string(backend).from_settings()


def get_sealer():
    """The configured sealer (loaded once per process and configuration)."""
    return _sealer(settings.ODR_SEAL_BACKEND, settings.ODR_SEAL_PKCS12, settings.ODR_SEAL_PASSPHRASE)
