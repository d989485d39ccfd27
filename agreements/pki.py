"""Development and test PKI: a CA and the certificates it issues, made with
`cryptography`. Production uses a certificate from a real CA (or an HSM, or
the national signature service) through the pluggable sealer; this module
only makes the development CA (`manage.py make_dev_ca`) and test fixtures."""

import datetime
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class Issued:
    key: rsa.RSAPrivateKey
    certificate: x509.Certificate

    def pkcs12(self, passphrase: str, *, chain: list[x509.Certificate] = (), name: str = "signer") -> bytes:
        return pkcs12.serialize_key_and_certificates(
            name.encode(), self.key, self.certificate, list(chain) or None,
            serialization.BestAvailableEncryption(passphrase.encode()),
        )

    def pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)


def _name(common_name: str, organisation: str = "ODR Mediation (development)") -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "KZ"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
    ])


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def make_ca(common_name: str = "ODR Development CA", *, days: int = 3650,
            not_before: datetime.datetime | None = None) -> Issued:
    key = _key()
    start = not_before or datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=5)
    name = _name(common_name)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                          data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                          encipher_only=False, decipher_only=False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return Issued(key, certificate)


def issue_signing_certificate(ca: Issued, common_name: str, *, days: int = 825,
                              not_before: datetime.datetime | None = None,
                              organisation: str = "ODR Mediation (development)") -> Issued:
    """A document-signing certificate (non-repudiation, as PAdES validators expect)."""
    key = _key()
    start = not_before or datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=5)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name, organisation))
        .issuer_name(ca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(digital_signature=True, content_commitment=True, key_encipherment=False,
                          data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
                          encipher_only=False, decipher_only=False),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False
        )
        .sign(ca.key, hashes.SHA256())
    )
    return Issued(key, certificate)


# A personal signing certificate for trying "sign with your own certificate"
# in the demo (issued by the development CA to the demo claimant).
DEMO_SIGNER_FILE = "demo-signer.p12"
DEMO_SIGNER_PASSWORD = "demo-signer-2026"


def write_dev_pki(directory: Path, passphrase: str) -> tuple[Path, Path]:
    """The development CA (`ca.pem`), the platform's sealing certificate
    (`seal.p12`, with the CA in its chain) and a demo signer's PKCS#12
    (`demo-signer.p12`) in `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    ca = make_ca()
    seal = issue_signing_certificate(ca, "ODR Mediation platform seal (development)")
    ca_path, p12_path = directory / "ca.pem", directory / "seal.p12"
    ca_path.write_bytes(ca.pem())
    p12_path.write_bytes(seal.pkcs12(passphrase, chain=[ca.certificate], name="odr-seal"))
    p12_path.chmod(0o600)
    demo = issue_signing_certificate(ca, "Dana Omarova (demo signer)", organisation="Demo")
    demo_path = directory / DEMO_SIGNER_FILE
    demo_path.write_bytes(demo.pkcs12(DEMO_SIGNER_PASSWORD, chain=[ca.certificate], name="demo-signer"))
    demo_path.chmod(0o600)
    return ca_path, p12_path
