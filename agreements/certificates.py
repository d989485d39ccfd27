"""A signer's own certificate: a PKCS#12 file and its password (the form in
which Kazakhstan's national certification authority issues signature keys;
RSA keys here), opened in memory for one request and validated against
ODR_SIGNER_TRUST_ROOTS and the configured revocation lists.

The key and the password are never stored, logged or put in an exception:
the caller passes the bytes, gets a pyHanko signer back and drops both."""

import asyncio
import datetime
import hashlib
from dataclasses import dataclass
from pathlib import Path

from asn1crypto import keys as asn1_keys
from asn1crypto import pem
from cryptography import x509
from django.conf import settings
from django.utils.translation import gettext as _
from pyhanko.keys import load_cert_from_pemder
from pyhanko.sign import signers
from pyhanko_certvalidator import CertificateValidator, ValidationContext
from pyhanko_certvalidator import errors as cv_errors

from sessions.services.errors import ProcedureError

MAX_PKCS12_BYTES = 64 * 1024


@dataclass
class PersonalCertificate:
    signer: signers.SimpleSigner
    subject: str
    issuer: str
    serial: str
    sha256: str


def _crls() -> list[bytes]:
    """The configured revocation lists, DER (a PEM file is unarmoured)."""
    out = []
    for path in settings.ODR_SIGNER_CRLS:
        data = Path(path).read_bytes()
        if data.lstrip().startswith(b"-----"):
            _, _, data = pem.unarmor(data)
        out.append(data)
    return out


def _revoked_by_configured_list(personal: PersonalCertificate, roots: list, crls: list[bytes]) -> bool:
    """pyhanko-certvalidator consults a CRL only for a certificate that names
    a CRL distribution point; a list the operator configured must count for
    every certificate of its issuer. A list counts only if its issuer's key
    (a trusted root or a certificate of the chain) signed it."""
    certificate = x509.load_der_x509_certificate(personal.signer.signing_cert.dump())
    issuers = [
        x509.load_der_x509_certificate(c.dump())
        for c in [*roots, *personal.signer.cert_registry]
    ]
    for data in crls:
        crl = x509.load_der_x509_crl(data)
        if crl.issuer != certificate.issuer:
            continue
        if not any(i.subject == crl.issuer and crl.is_signature_valid(i.public_key()) for i in issuers):
            continue
        if crl.get_revoked_certificate_by_serial_number(certificate.serial_number) is not None:
            return True
    return False


def certificate_open(data: bytes, password: str) -> PersonalCertificate:
    """Open a PKCS#12 file, or raise ProcedureError with a translated reason."""
    if not data:
        raise ProcedureError(_("Choose your certificate file (.p12 or .pfx)."), code="no_certificate")
    if len(data) > MAX_PKCS12_BYTES:
        raise ProcedureError(_("This file is too large to be a certificate file."), code="bad_certificate")
    try:
        signer = signers.SimpleSigner.load_pkcs12_data(data, other_certs=[], passphrase=password.encode())
    except Exception:  # noqa: BLE001 — a wrong password and a damaged file look alike; say neither more
        signer = None
    if signer is None or signer.signing_cert is None:
        raise ProcedureError(
            _("The certificate file could not be opened: the password is wrong or the file is not a PKCS#12 file."),
            code="bad_password",
        )
    certificate = signer.signing_cert
    if not isinstance(certificate.public_key, asn1_keys.PublicKeyInfo) or certificate.public_key.algorithm != "rsa":
        raise ProcedureError(_("Only certificates with RSA keys can be used here."), code="bad_certificate")
    return PersonalCertificate(
        signer=signer,
        subject=certificate.subject.human_friendly,
        issuer=certificate.issuer.human_friendly,
        serial=format(certificate.serial_number, "X"),
        sha256=hashlib.sha256(certificate.dump()).hexdigest(),
    )


def certificate_check(personal: PersonalCertificate, *, at: datetime.datetime) -> None:
    """Refuse a certificate that is expired or not yet valid, revoked by a
    configured list, not issued under a trusted root, or not meant for
    signing documents."""
    certificate = personal.signer.signing_cert
    roots = [load_cert_from_pemder(path) for path in settings.ODR_SIGNER_TRUST_ROOTS]
    crls = _crls()
    context = ValidationContext(
        trust_roots=roots,
        crls=crls,
        allow_fetching=settings.ODR_SIGNER_ALLOW_FETCHING,
        revocation_mode="soft-fail",
        moment=at,
    )
    validator = CertificateValidator(
        certificate, intermediate_certs=list(personal.signer.cert_registry), validation_context=context
    )
    try:
        asyncio.run(validator.async_validate_usage(key_usage={"non_repudiation"}))
    except cv_errors.ExpiredError:
        raise ProcedureError(_("Your certificate has expired."), code="certificate_expired") from None
    except cv_errors.NotYetValidError:
        raise ProcedureError(_("Your certificate is not valid yet."), code="certificate_not_yet_valid") from None
    except cv_errors.RevokedError:
        raise ProcedureError(_("Your certificate has been revoked."), code="certificate_revoked") from None
    except cv_errors.PathBuildingError:
        raise ProcedureError(
            _("Your certificate is not issued by a certification authority this platform trusts."),
            code="certificate_untrusted",
        ) from None
    except cv_errors.InvalidCertificateError:
        raise ProcedureError(
            _("Your certificate may not be used to sign documents (its key usage does not allow it)."),
            code="certificate_usage",
        ) from None
    except cv_errors.PathValidationError:
        raise ProcedureError(_("Your certificate could not be validated."), code="certificate_invalid") from None
    if _revoked_by_configured_list(personal, roots, crls):
        raise ProcedureError(_("Your certificate has been revoked."), code="certificate_revoked")
