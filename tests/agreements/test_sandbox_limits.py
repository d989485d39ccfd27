"""The sandbox's limits hold: a file that needs more CPU, more memory or
more wall-clock time than a check may use is "could not be checked", its
process is gone, and the site's process checks the next file as usual. Past
the process's slots for uploads, /verify/ says to try again shortly (503)."""

import logging
import multiprocessing
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from agreements import sandbox
from agreements.verification import verify_pdf
from tests.agreements import hostile_pdfs

UNSIGNED = "The PDF carries no signature."


@pytest.fixture
def sandbox_settings(settings, dev_pki):
    """The settings, with a CA of the test's own as the trusted root."""
    return settings


def sandbox_children() -> list:
    return [child for child in multiprocessing.active_children() if child.name == "odr-verify"]


def assert_could_not_be_checked_because(caplog, data: bytes, cause: str) -> None:
    with caplog.at_level(logging.WARNING, logger="agreements.sandbox"):
        report = verify_pdf(data)
    assert not report.checked and not report.valid
    assert report.reasons and report.reasons[0].startswith("The file could not be checked")
    lines = [r.getMessage() for r in caplog.records if r.name == "agreements.sandbox"]
    assert len(lines) == 1 and re.search(rf"could not be checked: {cause} after \d+\.\d s$", lines[0]), lines
    assert not any(r.exc_info for r in caplog.records), "a traceback was logged"
    assert sandbox_children() == []
    # The next check is served as ever.
    assert verify_pdf(hostile_pdfs.minimal()).reasons == [UNSIGNED]


def test_when_a_file_needs_more_cpu_than_a_check_may_use_then_it_could_not_be_checked(sandbox_settings, caplog):
    sandbox_settings.ODR_VERIFY_CPU_SECONDS = 1
    sandbox_settings.ODR_VERIFY_MEMORY_MB = 2048  # so that the CPU limit is the one met
    sandbox_settings.ODR_VERIFY_TIMEOUT_SECONDS = 60
    assert_could_not_be_checked_because(caplog, hostile_pdfs.incremental_updates(), "cpu")


def test_when_a_file_needs_more_memory_than_a_check_may_use_then_it_could_not_be_checked(sandbox_settings, caplog):
    sandbox_settings.ODR_VERIFY_CPU_SECONDS = 60  # so that the memory limit is the one met
    sandbox_settings.ODR_VERIFY_MEMORY_MB = 64
    sandbox_settings.ODR_VERIFY_TIMEOUT_SECONDS = 60
    assert_could_not_be_checked_because(caplog, hostile_pdfs.flate_bomb(), "memory")


def test_when_a_check_outlives_the_timeout_then_its_process_is_killed(sandbox_settings, caplog):
    sandbox_settings.ODR_VERIFY_CPU_SECONDS = 60
    sandbox_settings.ODR_VERIFY_MEMORY_MB = 2048
    sandbox_settings.ODR_VERIFY_TIMEOUT_SECONDS = 0.5
    assert_could_not_be_checked_because(caplog, hostile_pdfs.incremental_updates(), "timeout")


def test_when_the_memory_limit_is_the_default_then_a_genuine_seal_has_room_to_spare(sandbox_settings, caplog):
    """The limits are for hostile files: a sealed PDF is checked well within
    a tenth of them."""
    from weasyprint import HTML

    from agreements import sealing

    sandbox_settings.ODR_VERIFY_CPU_SECONDS = 1
    sandbox_settings.ODR_VERIFY_MEMORY_MB = 26
    sealed = sealing.get_sealer().seal(HTML(string="<p>Келісім / Соглашение</p>").write_pdf(), reason="test")
    report = verify_pdf(sealed)
    assert report.checked and report.valid, report.reasons


def test_when_every_upload_slot_is_taken_then_verify_asks_to_try_again_shortly(sandbox_settings, db):
    sandbox_settings.ODR_VERIFY_CONCURRENCY = 1
    sandbox_settings.ODR_VERIFY_QUEUE_SECONDS = 0.2
    sandbox_settings.ODR_VERIFY_UPLOAD_RATE = "1000/m"

    def post():
        upload = SimpleUploadedFile("agreement.pdf", hostile_pdfs.minimal(), "application/pdf")
        return Client().post(reverse("agreements:verify"), {"file": upload})

    with sandbox.upload_slot():  # another upload being checked
        busy = post()
    assert busy.status_code == 503 and busy["Retry-After"] == "5"
    assert "Many files are being checked right now. Try again in a few seconds." in busy.content.decode()
    assert busy.context["result"] is None

    free = post()
    assert free.status_code == 200 and free.context["result"].report.reasons[0] == UNSIGNED
