"""Signing with one's own certificate (a PKCS#12 file and its password, as
Kazakhstan's national certification authority issues them): validated
against the trusted roots and revocation lists, refused with a clear reason
otherwise, used in memory only (neither the key nor the password is ever
stored or logged), and the signer's own signature in their box of the
sealed PDF. The CA, certificates and CRLs are made here, offline."""

import base64
import datetime
import hashlib
import html
import logging
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext

from agreements import pki
from agreements.models import AgreementStatus, SignatureMethod, SignerStatus
from agreements.selectors import verify_file
from agreements.services import documents, issuing, signing
from agreements.verification import verify_pdf
from odr.models import AuditAction, AuditEvent
from sessions.services.errors import ProcedureError
from tests.agreements.conftest import emailed_code, totp_code
from tests.conftest import ORIGIN, PASSWORD

pytestmark = pytest.mark.django_db

P12_PASSWORD = "CANARY-p12-7f3a9c Құпия сөз"
SIGNER_NAME = "Aliya Claimant (personal certificate)"
CA_NAME = "Test National Certification Authority"
PG_DUMP = shutil.which("pg_dump") or "/usr/bin/pg_dump"


@pytest.fixture(autouse=True)
def _english():
    """The services' messages in English (the source strings), whatever the
    default language and its catalogue say."""
    with translation.override("en"):
        yield


@pytest.fixture
def signer_ca(dev_pki, settings, tmp_path) -> pki.Issued:
    """A CA of signers' certificates, trusted for signers and for verifying
    the finished PDF (besides the platform's development CA)."""
    ca = pki.make_ca(CA_NAME)
    path = tmp_path / "signers-ca.pem"
    path.write_bytes(ca.pem())
    roots = [str(dev_pki / "ca.pem"), str(path)]
    settings.ODR_SIGNER_TRUST_ROOTS = roots
    settings.ODR_TRUST_ROOTS = roots
    settings.ODR_SIGNER_CRLS = []
    settings.ODR_SIGNER_ALLOW_FETCHING = False
    return ca


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def personal(ca: pki.Issued, **kwargs) -> pki.Issued:
    return pki.issue_signing_certificate(ca, SIGNER_NAME, **kwargs)


def p12_of(issued: pki.Issued, ca: pki.Issued, password: str = P12_PASSWORD) -> bytes:
    return issued.pkcs12(password, chain=[ca.certificate])


def built(ca: pki.Issued, common_name: str, *, non_repudiation: bool = True, crl_url: str = "") -> pki.Issued:
    """A certificate made with `cryptography` directly: for authentication
    only (no non-repudiation, i.e. content commitment) if asked, and naming
    where its CRL is published if `crl_url` is given (as the national CA's
    certificates do)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now() - datetime.timedelta(minutes=5))
        .not_valid_after(now() + datetime.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(digital_signature=True, content_commitment=non_repudiation,
                          key_encipherment=not non_repudiation, data_encipherment=False, key_agreement=False,
                          key_cert_sign=False, crl_sign=False, encipher_only=False, decipher_only=False),
            critical=True,
        )
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False)
    )
    if crl_url:
        builder = builder.add_extension(
            x509.CRLDistributionPoints([
                x509.DistributionPoint([x509.UniformResourceIdentifier(crl_url)], None, None, None)
            ]),
            critical=False,
        )
    return pki.Issued(key, builder.sign(ca.key, hashes.SHA256()))


def crl_file(ca: pki.Issued, path: Path, revoked: list[x509.Certificate], *, pem: bool = False) -> Path:
    """A revocation list signed by the CA, listing `revoked`."""
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.certificate.subject)
        .last_update(now() - datetime.timedelta(hours=1))
        .next_update(now() + datetime.timedelta(days=7))
        .add_extension(x509.CRLNumber(1), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False)
    )
    for certificate in revoked:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(certificate.serial_number)
            .revocation_date(now() - datetime.timedelta(minutes=1))
            .build()
        )
    crl = builder.sign(ca.key, hashes.SHA256())
    path.write_bytes(crl.public_bytes(serialization.Encoding.PEM if pem else serialization.Encoding.DER))
    return path


def sign_with(agreement, user, data: bytes, password: str = P12_PASSWORD):
    return signing.agreement_sign(
        agreement=agreement, user=user, document_sha256=agreement.frozen_sha256, consent=True,
        pkcs12=data, password=password, origin=ORIGIN,
    )


def reauthenticated(user) -> Client:
    client = Client(HTTP_USER_AGENT="Mozilla/5.0 (certificate test)")
    client.force_login(user)
    response = client.post(reverse("account_reauthenticate"), {"password": PASSWORD})
    assert response.status_code == 302, response.content[:500]
    return client


def certificate_form(agreement, data: bytes, password: str) -> dict:
    return {
        "action": "sign_certificate", "document_sha256": agreement.frozen_sha256, "consent": "yes",
        "certificate": SimpleUploadedFile("signer.p12", data, content_type="application/x-pkcs12"),
        "password": password,
    }


# --- A valid certificate ------------------------------------------------------------------------------------


def test_when_a_signer_signs_with_a_valid_certificate_then_it_is_recorded_and_their_own_signature_is_in_the_sealed_pdf(
    signer_ca, settings, tmp_path, frozen, party_a, party_b, mediator, run_jobs
):
    issued = personal(signer_ca)
    # A revocation list is configured, and does not list this certificate.
    other = personal(signer_ca)
    settings.ODR_SIGNER_CRLS = [str(crl_file(signer_ca, tmp_path / "ca.crl", [other.certificate], pem=True))]

    signer = sign_with(frozen, party_a, p12_of(issued, signer_ca))

    assert signer.status == SignerStatus.SIGNED
    assert signer.method == SignatureMethod.CERTIFICATE
    assert SIGNER_NAME in signer.certificate_subject
    assert CA_NAME in signer.certificate_issuer
    assert signer.certificate_serial == format(issued.certificate.serial_number, "X")
    der = issued.certificate.public_bytes(serialization.Encoding.DER)
    assert signer.certificate_sha256 == hashlib.sha256(der).hexdigest()
    assert signer.document_sha256 == frozen.frozen_sha256
    frozen.refresh_from_db()
    working = documents.working_pdf(frozen)
    assert working != documents.frozen_pdf(frozen) and working.startswith(documents.frozen_pdf(frozen))

    signing.signing_code_send(agreement=frozen, user=party_b, origin=ORIGIN)
    run_jobs()
    signing.agreement_sign(agreement=frozen, user=party_b, document_sha256=frozen.frozen_sha256, consent=True,
                           code=emailed_code(party_b), origin=ORIGIN)
    signing.agreement_sign(agreement=frozen, user=mediator, document_sha256=frozen.frozen_sha256, consent=True,
                           code=totp_code(mediator), origin=ORIGIN)
    run_jobs()

    frozen.refresh_from_db()
    assert frozen.status == AgreementStatus.SEALED
    sealed = issuing.sealed_pdf(frozen)
    assert sealed.startswith(working)
    report = verify_pdf(sealed)
    assert report.valid, report.reasons
    by_field = {item.field: item for item in report.signatures}
    assert list(by_field) == ["Signature1", "Signature2", "Signature3", "PlatformSeal"]
    own = by_field[signer.field_name]
    assert SIGNER_NAME in own.signer and CA_NAME in own.issuer
    assert own.serial == signer.certificate_serial
    assert own.intact and own.trusted and own.valid
    for field in ("Signature2", "Signature3", "PlatformSeal"):
        assert "ODR Mediation platform seal" in by_field[field].signer, field
    assert verify_file(sealed).valid


# --- Refused certificates -----------------------------------------------------------------------------------


def _wrong_password(ca, settings, tmp_path):
    return p12_of(personal(ca), ca), "not the password"


def _expired(ca, settings, tmp_path):
    return p12_of(personal(ca, not_before=now() - datetime.timedelta(days=400), days=30), ca), P12_PASSWORD


def _not_yet_valid(ca, settings, tmp_path):
    return p12_of(personal(ca, not_before=now() + datetime.timedelta(days=10)), ca), P12_PASSWORD


def _untrusted(ca, settings, tmp_path):
    stranger = pki.make_ca("Some other CA")
    return p12_of(personal(stranger), stranger), P12_PASSWORD


def _revoked(ca, settings, tmp_path):
    """Revoked in the configured list; the certificate itself names no CRL."""
    issued = personal(ca)
    settings.ODR_SIGNER_CRLS = [str(crl_file(ca, tmp_path / "ca.crl", [issued.certificate]))]
    return p12_of(issued, ca), P12_PASSWORD


def _revoked_declaring_its_crl(ca, settings, tmp_path):
    """Revoked in the configured list, which the certificate names as its CRL
    (fetching stays off: the configured copy is what is checked)."""
    issued = built(ca, SIGNER_NAME, crl_url="http://crl.example.kz/signers.crl")
    settings.ODR_SIGNER_CRLS = [str(crl_file(ca, tmp_path / "ca.crl", [issued.certificate], pem=True))]
    return p12_of(issued, ca), P12_PASSWORD


def _no_non_repudiation(ca, settings, tmp_path):
    return p12_of(built(ca, "Authentication only", non_repudiation=False), ca), P12_PASSWORD


def _garbage(ca, settings, tmp_path):
    return os.urandom(2048), P12_PASSWORD


def _too_large(ca, settings, tmp_path):
    return p12_of(personal(ca), ca) + b"\0" * (64 * 1024), P12_PASSWORD


REFUSALS = {
    "wrong password": (_wrong_password, "bad_password",
                       "The certificate file could not be opened: the password is wrong or the file is not a PKCS#12 file."),
    "expired": (_expired, "certificate_expired", "Your certificate has expired."),
    "not yet valid": (_not_yet_valid, "certificate_not_yet_valid", "Your certificate is not valid yet."),
    "untrusted CA": (_untrusted, "certificate_untrusted",
                     "Your certificate is not issued by a certification authority this platform trusts."),
    "revoked": (_revoked, "certificate_revoked", "Your certificate has been revoked."),
    "revoked, declaring its CRL": (_revoked_declaring_its_crl, "certificate_revoked", "Your certificate has been revoked."),
    "no non-repudiation": (_no_non_repudiation, "certificate_usage",
                           "Your certificate may not be used to sign documents (its key usage does not allow it)."),
    "garbage": (_garbage, "bad_password",
                "The certificate file could not be opened: the password is wrong or the file is not a PKCS#12 file."),
    "over 64 KiB": (_too_large, "bad_certificate", "This file is too large to be a certificate file."),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_when_the_certificate_is_not_acceptable_then_signing_is_refused_with_its_reason(
    case, signer_ca, settings, tmp_path, frozen, party_a
):
    make, code, message = REFUSALS[case]
    data, password = make(signer_ca, settings, tmp_path)

    with pytest.raises(ProcedureError) as error:
        sign_with(frozen, party_a, data, password)

    assert (error.value.code, error.value.message) == (code, message)
    signer = frozen.signers.get(user=party_a)
    assert signer.status == SignerStatus.PENDING and not signer.certificate_sha256
    frozen.refresh_from_db()
    assert frozen.working_pdf_sealed is None
    (refusal,) = AuditEvent.objects.filter(action=AuditAction.AGREEMENT_SIGNING_REFUSED)
    assert refusal.actor_id == party_a.pk and refusal.details["reason"] == code
    assert P12_PASSWORD not in str(refusal.details) and password not in str(refusal.details)
    assert not AuditEvent.objects.filter(action=AuditAction.AGREEMENT_SIGNED).exists()


# --- Neither the key nor the password is kept ---------------------------------------------------------------


def _pg_dump() -> bytes:
    params = connection.settings_dict
    command = [PG_DUMP, "--format=plain", "--no-owner", "--no-privileges", "--encoding=UTF8", "--dbname", params["NAME"]]
    for option, key in (("--host", "HOST"), ("--port", "PORT"), ("--username", "USER")):
        if params.get(key):
            command += [option, str(params[key])]
    env = {**os.environ}
    if params.get("PASSWORD"):
        env["PGPASSWORD"] = str(params["PASSWORD"])
    result = subprocess.run(command, check=False, env=env, capture_output=True, timeout=120)
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    return result.stdout


def _database_bytes() -> bytes:
    if connection.vendor == "postgresql":
        return _pg_dump()
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI must read a pg_dump of PostgreSQL, not a {connection.vendor} database")
    name = Path(connection.settings_dict["NAME"])
    return b"".join(Path(f"{name}{suffix}").read_bytes()
                    for suffix in ("", "-wal", "-journal") if Path(f"{name}{suffix}").exists())


def _needles(data: bytes, issued: pki.Issued) -> dict[str, bytes]:
    """The password, the PKCS#12 file and the private key in every form they
    could take in a dump or a log: text, raw bytes, hex (a bytea column) and
    base64 (JSON, PEM)."""
    key_der = issued.key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption())
    middle = len(data) // 2
    key_middle = len(key_der) // 2
    return {
        "password": P12_PASSWORD.encode(),
        "password (ASCII part)": P12_PASSWORD.split()[0].encode(),
        "password (Cyrillic part)": P12_PASSWORD.split()[1].encode(),
        "PKCS#12 bytes": data[middle:middle + 48],
        "PKCS#12 hex": data[middle:middle + 48].hex().encode(),
        "PKCS#12 HEX": data[middle:middle + 48].hex().upper().encode(),
        "PKCS#12 base64": base64.b64encode(data)[len(data) // 2:len(data) // 2 + 48],
        "key bytes": key_der[key_middle:key_middle + 48],
        "key hex": key_der[key_middle:key_middle + 48].hex().encode(),
        "key base64": base64.b64encode(key_der)[key_middle:key_middle + 48],
        "private exponent": format(issued.key.private_numbers().d, "x")[:48].encode(),
    }


@pytest.mark.django_db(transaction=True)
def test_when_a_signer_signs_with_a_certificate_then_neither_the_key_nor_the_password_is_stored_or_logged(
    signer_ca, frozen, party_a, caplog
):
    caplog.set_level(logging.DEBUG)
    issued = personal(signer_ca)
    data = p12_of(issued, signer_ca)
    client = reauthenticated(party_a)
    url = reverse("agreements:sign", args=[frozen.case.public_id, frozen.public_id])
    # A wrong password first (refused and audited), then the right one.
    client.post(url, certificate_form(frozen, data, P12_PASSWORD + "x"))
    response = client.post(url, certificate_form(frozen, data, P12_PASSWORD))
    assert response.status_code == 302
    signer = frozen.signers.get(user=party_a)
    assert signer.status == SignerStatus.SIGNED and signer.method == SignatureMethod.CERTIFICATE

    dump = _database_bytes()
    logs = caplog.text.encode()

    # The dump is of the database the signature was committed to.
    assert signer.certificate_sha256.encode() in dump
    assert AuditEvent.objects.filter(action=AuditAction.AGREEMENT_SIGNING_REFUSED).count() == 1
    found = {name for name, needle in _needles(data, issued).items() if needle in dump or needle in logs}
    assert not found


# --- Through the signing page -------------------------------------------------------------------------------


def test_when_the_certificate_form_is_posted_then_the_signer_signs_with_their_certificate(
    signer_ca, frozen, party_a
):
    client = reauthenticated(party_a)
    url = reverse("agreements:sign", args=[frozen.case.public_id, frozen.public_id])
    page = client.get(url)
    assert page.status_code == 200
    assert 'enctype="multipart/form-data"' in page.content.decode()

    response = client.post(url, certificate_form(frozen, p12_of(personal(signer_ca), signer_ca), P12_PASSWORD))

    assert response.status_code == 302
    assert response["Location"] == reverse("agreements:agreement", args=[frozen.case.public_id])
    signer = frozen.signers.get(user=party_a)
    assert signer.status == SignerStatus.SIGNED
    assert signer.method == SignatureMethod.CERTIFICATE
    assert SIGNER_NAME in signer.certificate_subject
    assert signer.ip == "127.0.0.1" and signer.user_agent == "Mozilla/5.0 (certificate test)"


def test_when_the_certificate_password_is_wrong_then_the_page_says_so_in_the_signers_language(
    signer_ca, frozen, party_b
):
    client = reauthenticated(party_b)
    url = reverse("agreements:sign", args=[frozen.case.public_id, frozen.public_id])
    data = p12_of(personal(signer_ca), signer_ca)

    response = client.post(url, certificate_form(frozen, data, "not the password"), follow=True)

    with translation.override(party_b.preferred_language):
        expected = gettext(
            "The certificate file could not be opened: the password is wrong or the file is not a PKCS#12 file."
        )
    assert response.status_code == 200
    assert expected in html.unescape(response.content.decode())
    too_large = client.post(url, certificate_form(frozen, data + b"\0" * (64 * 1024), P12_PASSWORD), follow=True)
    with translation.override(party_b.preferred_language):
        assert gettext("This file is too large to be a certificate file.") in html.unescape(too_large.content.decode())
    assert frozen.signers.get(user=party_b).status == SignerStatus.PENDING
