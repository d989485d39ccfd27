"""Hostile PDFs (tests/agreements/hostile_pdfs.py) through /verify/ and
`verify_agreement`: each gets a clear verdict — damaged, unsigned, not valid,
or could not be checked — never a server error or a traceback, within the
sandbox's limits (the documented defaults, pinned here). A genuine sealed
agreement still verifies valid the same way."""

import functools
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from agreements.services import issuing
from tests.agreements import hostile_pdfs

DAMAGED = "The PDF is damaged or was changed: it cannot be read."
UNSIGNED = "The PDF carries no signature."
CHANGED_AFTER_LAST = "The document was changed after the last signature."
COULD_NOT = "The file could not be checked within the time and memory a check may use."
NOT_IN_REGISTER = "its fingerprint is not in the register"
UNCHECKED = "unchecked"  # the verdict "Could not be checked.", with its reason

# What each file of the corpus is, as the reader is told.
EXPECTED = {
    "truncated": DAMAGED,
    "xref loop": DAMAGED,
    "reference loop": DAMAGED,
    "page tree loop": DAMAGED,
    "deep nesting": DAMAGED,
    "200k pages": UNSIGNED,
    "20k signature fields": DAMAGED,
    "flate bomb": UNCHECKED,  # the memory limit
    "100k incremental updates": UNCHECKED,  # the CPU limit
    "20 MB junk": DAMAGED,
    "20 MB junk objects": DAMAGED,
}


@pytest.fixture
def default_limits(settings, dev_pki):
    """The limits deploy/env.example documents, whatever this machine's environment says."""
    settings.ODR_VERIFY_CPU_SECONDS = 3
    settings.ODR_VERIFY_MEMORY_MB = 256
    settings.ODR_VERIFY_TIMEOUT_SECONDS = 15
    settings.ODR_VERIFY_CONCURRENCY = 2
    settings.ODR_VERIFY_UPLOAD_RATE = "1000/m"  # not under test here


@functools.cache
def hostile(name: str) -> bytes:
    return hostile_pdfs.CORPUS[name]()


def test_when_the_corpus_is_listed_then_every_file_has_an_expected_verdict():
    assert set(EXPECTED) == set(hostile_pdfs.CORPUS)


def upload(data: bytes, client: Client | None = None):
    return (client or Client()).post(
        reverse("agreements:verify"), {"file": SimpleUploadedFile("agreement.pdf", data, "application/pdf")}
    )


def assert_verdict(response, expected: str) -> None:
    html = response.content.decode()
    assert response.status_code == 200, html[:500]
    assert "Traceback" not in html
    result = response.context["result"]
    assert result is not None and not result.valid
    if expected == UNCHECKED:
        assert not result.report.checked
        assert "Could not be checked." in html and "Not valid." not in html
        assert [r for r in result.report.reasons if r.startswith(COULD_NOT)] == result.report.reasons
        assert result.agreement is None
    else:
        assert result.report.checked
        assert "Not valid." in html and "Could not be checked." not in html
        assert result.report.reasons[0] == expected, result.report.reasons
        assert any(NOT_IN_REGISTER in reason for reason in result.report.reasons)


@pytest.mark.parametrize("name", list(EXPECTED))
def test_when_a_hostile_pdf_is_uploaded_then_verify_gives_a_clear_verdict(
    name, default_limits, db, django_assert_num_queries
):
    # A file that was checked is looked up in the register; one that could
    # not be checked is not.
    with django_assert_num_queries(0 if EXPECTED[name] == UNCHECKED else 1):
        response = upload(hostile(name))
    assert_verdict(response, EXPECTED[name])


@pytest.mark.parametrize("name", list(EXPECTED))
def test_when_verify_agreement_reads_a_hostile_pdf_then_it_exits_1_with_a_clear_verdict(
    name, default_limits, db, tmp_path
):
    path = tmp_path / "agreement.pdf"
    path.write_bytes(hostile(name))
    out = io.StringIO()
    with pytest.raises(SystemExit) as exit_info:
        call_command("verify_agreement", str(path), stdout=out)
    assert exit_info.value.code == 1
    lines = out.getvalue().splitlines()
    if EXPECTED[name] == UNCHECKED:
        assert lines[0] == f"{path}: COULD NOT BE CHECKED"
        assert [line for line in lines if line.startswith("! ")] == [lines[-1]]
        assert lines[-1].startswith(f"! {COULD_NOT}")
    else:
        assert lines[0] == f"{path}: NOT VALID"
        assert f"! {EXPECTED[name]}" in lines


def test_when_a_sealed_agreement_is_attacked_then_verify_says_not_valid_or_could_not_be_checked(
    sealed_agreement, default_limits
):
    sealed = issuing.sealed_pdf(sealed_agreement)

    assert_verdict(upload(hostile_pdfs.truncated_agreement(sealed)), DAMAGED)
    # Updates appended after the seal: a catalog without the form hides the
    # signatures; a page written over leaves them covering what they covered.
    assert_verdict(upload(hostile_pdfs.catalog_swapped_over(sealed)), UNSIGNED)
    response = upload(hostile_pdfs.page_added_to(sealed))
    assert_verdict(response, response.context["result"].report.reasons[0])
    assert CHANGED_AFTER_LAST in response.context["result"].report.reasons
    # 20,000 fields that each carry the genuine seal: 20,000 real validations.
    assert_verdict(upload(hostile_pdfs.seal_copies(sealed, 20_000)), UNCHECKED)


def test_when_the_sealed_agreement_is_checked_in_the_sandbox_then_it_is_valid_every_way(
    sealed_agreement, default_limits, django_assert_num_queries, tmp_path
):
    sealed = issuing.sealed_pdf(sealed_agreement)
    # The register, then its signers.
    with django_assert_num_queries(2):
        response = upload(sealed)
    assert response.status_code == 200
    result = response.context["result"]
    assert result.valid and result.report.checked, result.report.reasons
    assert result.agreement == sealed_agreement
    assert "Valid: this is the agreement the platform sealed" in response.content.decode()

    by_code = Client().get(reverse("agreements:verify"), {"code": sealed_agreement.verification_code})
    assert by_code.status_code == 200 and by_code.context["result"].valid

    path = tmp_path / "agreement.pdf"
    path.write_bytes(sealed)
    out = io.StringIO()
    call_command("verify_agreement", str(path), stdout=out)
    assert out.getvalue().startswith(f"{path}: VALID")
