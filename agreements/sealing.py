"""PAdES signatures on agreement PDFs (pyHanko), and the platform's seal.

The sealer is chosen by ODR_SEAL_BACKEND: a local PKCS#12 file now; an HSM or
a national signature service later, as a class with the same `sign` and
`seal` methods. The platform's key signs twice over: in the box of each
signer who signed with a one-time code (attesting that signature), and as the
final seal over the whole file."""

import io
import logging
from functools import lru_cache
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string
from pyhanko.pdf_utils.font.opentype import GlyphAccumulatorFactory
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.text import TextBoxStyle
from pyhanko.sign import fields, signers
from pyhanko.stamp import TextStampStyle

SEAL_FIELD = "PlatformSeal"
# Kazakh, Russian and Latin letters; see fonts/README.md for why not the PDF font file itself.
STAMP_FONT = Path(__file__).resolve().parent / "fonts" / "DejaVuSans-upem1000.ttf"

# fontTools notes every table it does not subset; the stamp font is fine.
logging.getLogger("fontTools.subset").setLevel(logging.ERROR)


def _stamp_style(text: str) -> TextStampStyle:
    # "%" would be taken for one of pyHanko's placeholders.
    return TextStampStyle(
        stamp_text=text.replace("%", "%%"),
        text_box_style=TextBoxStyle(
            font=GlyphAccumulatorFactory(str(STAMP_FONT), font_size=7), font_size=7, leading=9
        ),
        border_width=0,
        background=None,
    )


def pades_sign(pdf: bytes, *, signer: signers.Signer, field: str, reason: str, stamp: str | None = None) -> bytes:
    """Sign `pdf` in `field` (created invisible if the PDF has no such field)
    as an incremental update, so the bytes signed before stay a prefix."""
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
    metadata = signers.PdfSignatureMetadata(
        field_name=field,
        reason=reason,
        subfilter=fields.SigSeedSubFilter.PADES,
        md_algorithm="sha256",
    )
    pdf_signer = signers.PdfSigner(metadata, signer=signer, stamp_style=_stamp_style(stamp) if stamp else None)
    return pdf_signer.sign_pdf(writer).getvalue()


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

    def sign(self, pdf: bytes, *, field: str, reason: str, stamp: str | None = None) -> bytes:
        return pades_sign(pdf, signer=self._signer, field=field, reason=reason, stamp=stamp)

    def seal(self, pdf: bytes, *, reason: str) -> bytes:
        return self.sign(pdf, field=SEAL_FIELD, reason=reason)


@lru_cache(maxsize=4)
def _sealer(backend: str, path: str, passphrase: str):
    return import_string(backend).from_settings()


def get_sealer():
    """The configured sealer (loaded once per process and configuration)."""
    return _sealer(settings.ODR_SEAL_BACKEND, settings.ODR_SEAL_PKCS12, settings.ODR_SEAL_PASSPHRASE)
