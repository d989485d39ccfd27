"""The platform's seal and the verification of sealed PDFs (pyHanko)."""

import datetime
import io
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from django.utils import translation
from weasyprint import HTML

from agreements import pki, sealing
from agreements.verification import verify_pdf

TEXT = "Келісім · Соглашение: ә ғ қ ң ө ұ ү һ і"


@pytest.fixture
def sealed(dev_pki) -> bytes:
    pdf = HTML(string=f"<h1>{TEXT}</h1>").write_pdf()
    return sealing.get_sealer().seal(pdf, reason="Mediation agreement sealed by the platform")


def test_when_agreement_is_sealed_then_it_verifies_with_the_ca_as_trust_root(sealed):
    report = verify_pdf(sealed)

    assert report.valid, report.reasons
    (seal,) = report.signatures
    assert seal.field == sealing.SEAL_FIELD
    assert seal.intact and seal.trusted and seal.covers_whole_file
    assert "ODR Mediation platform seal" in seal.signer


def test_when_sealed_then_pyhankos_own_validator_judges_it_valid(sealed, dev_pki, tmp_path):
    path = tmp_path / "sealed.pdf"
    path.write_bytes(sealed)
    result = subprocess.run(
        [str(Path(sys.executable).parent / "pyhanko"), "sign", "validate", "--trust", str(dev_pki / "ca.pem"), "--pretty-print", str(path)],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "The signature is judged VALID." in result.stdout


def _places(sealed: bytes) -> dict[str, int]:
    """Offsets in every part of a sealed file: the document (covered by the
    seal's byte range), the container's zero padding, the certificates it
    carries, and the revision written after the container."""
    from asn1crypto import cms
    from pyhanko.pdf_utils.reader import PdfFileReader

    (seal,) = PdfFileReader(io.BytesIO(sealed)).embedded_signatures
    start, first_len, second_start, _second_len = seal.byte_range
    der_len = len(cms.ContentInfo.load(bytes(seal.sig_object["/Contents"])).dump())
    der_end = first_len + 1 + 2 * der_len  # '<' then two hex digits a byte
    certificate = seal.signer_cert.dump()
    in_signer_cert = sealed.index(certificate[40:48].hex().upper().encode())
    return {
        "header": 3,
        "document middle": first_len // 2,
        "just before the container": first_len - 5,
        "signer certificate": in_signer_cert,
        "container padding": (der_end + second_start) // 2,
        "after the container": second_start + 5,
        "end of file": len(sealed) - 8,
    }


PLACES = ["header", "document middle", "just before the container", "signer certificate",
          "container padding", "after the container", "end of file"]


@pytest.mark.parametrize("place", PLACES)
def test_when_one_byte_changes_then_the_file_is_not_valid(sealed, place):
    position = _places(sealed)[place]
    tampered = bytearray(sealed)
    tampered[position] ^= 0x01

    report = verify_pdf(bytes(tampered))

    assert not report.valid and report.reasons, (place, position)


def test_when_any_byte_of_the_embedded_ca_certificate_changes_then_the_file_is_not_valid(sealed):
    from pyhanko.pdf_utils.reader import PdfFileReader

    (seal,) = PdfFileReader(io.BytesIO(sealed)).embedded_signatures
    ca_copy = next(c.chosen.dump() for c in seal.signed_data["certificates"] if c.chosen.dump() != seal.signer_cert.dump())
    hex_copy = ca_copy.hex().upper().encode()
    start = sealed.index(hex_copy)
    for offset in range(0, len(hex_copy), 97):
        tampered = bytearray(sealed)
        tampered[start + offset] ^= 0x01
        assert not verify_pdf(bytes(tampered)).valid, offset


def test_when_bytes_are_appended_after_the_seal_then_the_file_is_not_valid(sealed):
    report = verify_pdf(sealed + b"\n% appended\n")
    assert not report.valid


def test_when_seal_comes_from_an_untrusted_ca_then_the_file_is_not_valid(sealed, settings, tmp_path):
    stranger = tmp_path / "other-ca.pem"
    stranger.write_bytes(pki.make_ca("Some other CA").pem())
    settings.ODR_TRUST_ROOTS = [str(stranger)]

    report = verify_pdf(sealed)

    assert not report.valid
    assert not report.signatures[0].trusted


@pytest.mark.parametrize("data", [b"", b"hello", b"%PDF-1.7\n garbage", HTML(string="<p>unsigned</p>").write_pdf()])
def test_when_file_is_not_a_sealed_pdf_then_it_is_not_valid_with_a_reason(dev_pki, data):
    report = verify_pdf(data)
    assert not report.valid and report.reasons


def test_when_verify_agreement_command_judges_signatures_only_then_it_exits_nonzero_for_an_invalid_file(
    sealed, tmp_path
):
    good, bad = tmp_path / "good.pdf", tmp_path / "bad.pdf"
    good.write_bytes(sealed)
    tampered = bytearray(sealed)
    tampered[len(tampered) // 2] ^= 0x01
    bad.write_bytes(bytes(tampered))
    out = io.StringIO()

    call_command("verify_agreement", str(good), "--signatures-only", stdout=out)
    assert "VALID" in out.getvalue() and "NOT VALID" not in out.getvalue()
    with pytest.raises(SystemExit) as exit_info:
        call_command("verify_agreement", str(bad), "--signatures-only", stdout=io.StringIO())
    assert exit_info.value.code == 1


def test_when_a_well_sealed_file_is_not_in_the_register_then_the_command_says_not_valid(db, sealed, tmp_path):
    """Sealed with the platform's key, but not an agreement the platform issued."""
    path = tmp_path / "stranger.pdf"
    path.write_bytes(sealed)
    out = io.StringIO()
    with translation.override("en"), pytest.raises(SystemExit) as exit_info:
        call_command("verify_agreement", str(path), stdout=out)
    assert exit_info.value.code == 1
    assert "register" in out.getvalue()


def test_when_make_dev_ca_runs_twice_then_the_ca_is_kept(dev_pki):
    before = (dev_pki / "ca.pem").read_bytes()
    call_command("make_dev_ca", stdout=io.StringIO())
    assert (dev_pki / "ca.pem").read_bytes() == before
    call_command("make_dev_ca", "--force", stdout=io.StringIO())
    assert (dev_pki / "ca.pem").read_bytes() != before


def test_when_signing_certificate_has_expired_then_a_seal_made_with_it_is_not_trusted(settings, tmp_path):
    ca = pki.make_ca()
    long_ago = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=400)
    expired = pki.issue_signing_certificate(ca, "Expired seal", not_before=long_ago, days=30)
    (tmp_path / "ca.pem").write_bytes(ca.pem())
    (tmp_path / "expired.p12").write_bytes(expired.pkcs12("pw", chain=[ca.certificate]))
    settings.ODR_TRUST_ROOTS = [str(tmp_path / "ca.pem")]
    sealer = sealing.Pkcs12Sealer(str(tmp_path / "expired.p12"), "pw")

    report = verify_pdf(sealer.seal(HTML(string="<p>x</p>").write_pdf(), reason="test"))

    assert not report.valid
