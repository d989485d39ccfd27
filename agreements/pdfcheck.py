"""The check of a PDF's signatures, as the sandbox process runs it
(agreements/sandbox.py): plain bytes in, plain data out.

It knows nothing of Django — no settings, no database, no translations — so
that the sandbox can preload it without setting Django up, and so that what
crosses the process boundary is data the parent can trust to be inert: reason
codes (the parent words them in the reader's language) and signature facts.

A file is valid only if it is a PDF, every signature in it is intact and
chains to a trusted root (pyHanko's `bottom_line`), and the last signature
covers the entire file: pyHanko's `valid` alone stays true for a tampered
byte, and bytes appended after the last signature are not covered by it."""

import hashlib
import io
import json
import logging
import os
import resource
import warnings

from asn1crypto import cms
from cryptography import x509
from cryptography.exceptions import InvalidSignature
import pyhanko.pdf_utils.filters  # noqa: F401 — the reader imports it on first use; the sandbox's server preloads it
from pyhanko.keys import load_certs_from_pemder_data
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko.sign.validation.status import SignatureCoverageLevel
from pyhanko_certvalidator import ValidationContext

PDF_MAGIC = b"%PDF-"

# Why a file is not valid. Every code has its sentence in
# agreements.verification.REASONS.
NOT_PDF = "not_pdf"
UNREADABLE = "unreadable"
UNSIGNED = "unsigned"
SIGNATURE_UNCHECKED = "signature_unchecked"
CONTAINER_ALTERED = "container_altered"
CHANGED = "changed"
UNTRUSTED = "untrusted"
SIGNATURE_INVALID = "signature_invalid"
CHANGED_AFTER_LAST = "changed_after_last"
REASONS = (NOT_PDF, UNREADABLE, UNSIGNED, SIGNATURE_UNCHECKED, CONTAINER_ALTERED, CHANGED, UNTRUSTED,
           SIGNATURE_INVALID, CHANGED_AFTER_LAST)


def check(data: bytes, roots_pem: bytes) -> dict:
    """The verdict on `data` against the roots in `roots_pem` (PEM or DER,
    concatenated): {"sha256", "reasons": [code, ...], "signatures": [facts]}.

    MemoryError is not caught here: running out of the sandbox's memory
    means the file could not be checked, not that it is damaged; the sandbox
    says so. (A reference loop or absurd nesting ends in RecursionError,
    which is the file's fault: damaged.)"""
    result = {"sha256": hashlib.sha256(data).hexdigest(), "reasons": [], "signatures": []}
    reasons = result["reasons"]
    if not data.startswith(PDF_MAGIC):
        reasons.append(NOT_PDF)
        return result
    try:
        signatures = PdfFileReader(io.BytesIO(data), strict=False).embedded_signatures
    except MemoryError:
        raise
    except Exception:  # noqa: BLE001 — the reader fails in many ways on a damaged file (even assert)
        reasons.append(UNREADABLE)
        return result
    if not signatures:
        reasons.append(UNSIGNED)
        return result
    roots = list(load_certs_from_pemder_data(roots_pem))
    for position, embedded in enumerate(signatures):
        try:
            status = validate_pdf_signature(embedded, ValidationContext(trust_roots=roots))
        except MemoryError:
            raise
        except Exception:  # noqa: BLE001 — any failure to validate is "not valid", with a reason
            reasons.append(SIGNATURE_UNCHECKED)
            continue
        if not _container_untouched(embedded, roots):
            reasons.append(CONTAINER_ALTERED)
        last = position == len(signatures) - 1
        whole = status.coverage == SignatureCoverageLevel.ENTIRE_FILE
        signed_at = getattr(status, "signer_reported_dt", None)
        certificate = status.signing_cert
        result["signatures"].append({
            "field": embedded.field_name,
            "signer": certificate.subject.human_friendly,
            "issuer": certificate.issuer.human_friendly,
            "serial": format(certificate.serial_number, "X"),
            "not_before": certificate.not_valid_before.isoformat(),
            "not_after": certificate.not_valid_after.isoformat(),
            "signed_at": signed_at.isoformat() if signed_at else None,
            "intact": bool(status.intact),
            "trusted": bool(status.trusted),
            "covers_whole_file": whole,
            "valid": bool(status.bottom_line) and (whole or not last),
        })
        if not status.intact:
            reasons.append(CHANGED)
        elif not status.trusted:
            reasons.append(UNTRUSTED)
        elif not status.bottom_line:
            reasons.append(SIGNATURE_INVALID)
        if last and not whole:
            reasons.append(CHANGED_AFTER_LAST)
    result["reasons"] = list(dict.fromkeys(reasons))
    return result


def _container_untouched(embedded, roots) -> bool:
    """What pyHanko does not judge: the signature container itself. The PDF
    reserves room for it and pads the rest with zeros, and it carries copies
    of certificates that need not be used for validation; a changed byte in
    either leaves pyHanko's verdict as it was. So: the padding is all zeros,
    and every embedded certificate is signed by its issuer (another embedded
    certificate or a trusted root)."""
    try:
        raw = bytes(embedded.sig_object["/Contents"])
        container = cms.ContentInfo.load(raw)
        if any(raw[len(container.dump()):]):
            return False
        embedded_certs = [
            x509.load_der_x509_certificate(choice.chosen.dump())
            for choice in embedded.signed_data["certificates"]
        ]
        issuers = embedded_certs + [x509.load_der_x509_certificate(root.dump()) for root in roots]
        for certificate in embedded_certs:
            candidates = [i for i in issuers if i.subject == certificate.issuer]
            if not any(_issued_by(certificate, issuer) for issuer in candidates):
                return False
    except MemoryError:
        raise
    except Exception:  # noqa: BLE001 — anything unreadable in the container is an alteration
        return False
    return True


def _issued_by(certificate, issuer) -> bool:
    try:
        certificate.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


# --- The sandbox process's side (agreements/sandbox.py starts it) ----------------------------

# The sandbox runs below the site's own processes: while it burns its CPU
# seconds, pages are served first.
NICENESS = 10


def serve(connection, cpu_seconds: int, memory_bytes: int) -> None:
    """One check in this process, then exit: limits first, then the file.

    The CPU limit is the kernel's (SIGXCPU at the soft limit, SIGKILL one
    second later), so it holds inside C code too. The memory limit is on the
    address space, on top of what the process already maps, so that it means
    the same on every machine. Nothing about the file reaches the logs: the
    parser's warnings are the attacker's words, and there may be millions."""
    try:
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        os.nice(NICENESS)
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 1))
        resource.setrlimit(resource.RLIMIT_AS, (_mapped_bytes() + memory_bytes,) * 2)
        logging.disable(logging.CRITICAL)
        warnings.simplefilter("ignore")
        quiet = os.open(os.devnull, os.O_WRONLY)
        os.dup2(quiet, 1)
        os.dup2(quiet, 2)
        roots_pem = connection.recv_bytes()
        data = connection.recv_bytes()
        try:
            answer = {"result": check(data, roots_pem)}
        except MemoryError:
            answer = {"unchecked": "memory"}
        connection.send_bytes(json.dumps(answer).encode())
    except MemoryError:
        _answer_quietly(connection, {"unchecked": "memory"})
    except BaseException as error:  # noqa: BLE001 — the parent says "could not be checked" and logs the kind
        _answer_quietly(connection, {"unchecked": "error", "error": type(error).__name__})
    finally:
        connection.close()


def _answer_quietly(connection, answer: dict) -> None:
    try:
        connection.send_bytes(json.dumps(answer).encode())
    except BaseException:  # noqa: BLE001 — the parent reads a silent exit as a crash
        pass


def _mapped_bytes() -> int:
    """This process's address space now (VmSize), before the file is read."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmSize in /proc/self/status")
