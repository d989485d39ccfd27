"""Hostile input never reaches a traceback: the safe JSON reader, error pages
that show no secret (under DEBUG, as `make run` serves them), API errors in
JSON, refusals logged in one line, secrets compared on bytes."""

import logging
import sys
import uuid

import pytest
from django.test import Client
from django.urls import reverse
from django.views.debug import ExceptionReporter

from odr import safejson
from odr.crypto import secrets_equal

LIMIT = 64 * 1024

REFUSED = [  # (input, code)
    ("[" * 5_000 + "]" * 5_000, "too_deep"),
    ('{"a":' * 40 + "1" + "}" * 40, "too_deep"),
    ("[" * 33 + "]" * 33, "too_deep"),
    ('{"type": "\\ud800"}', "bad_text"),
    ('{"type": "\\udc00\\ud800"}', "bad_text"),
    ('{"\\ud83d": "key"}', "bad_text"),
    ('["ok", ["\\udfff"]]', "bad_text"),
    ('{"type": "\ud800"}', "bad_text"),  # the surrogate itself in the text, not escaped
    ("1" * 50, "bad_number"),
    ("-" + "1" * 50, "bad_number"),
    ("1e400", "bad_number"),
    ("NaN", "bad_number"),
    ("[Infinity]", "bad_number"),
    ("0." + "1" * 60, "bad_number"),
    ("{", "not_json"),
    ("", "not_json"),
    ("\ufeff{}", "not_json"),
    ('{"a": 1} trailing', "not_json"),
    ("x" * (LIMIT + 1), "too_large"),
    ("ж" * (LIMIT // 2 + 1), "too_large"),  # 2 bytes each in UTF-8
]


@pytest.mark.parametrize("text, code", REFUSED)
def test_when_json_is_hostile_then_it_is_refused_with_a_code_and_a_detail_that_does_not_echo_it(text, code):
    with pytest.raises(safejson.JSONRefused) as refused:
        safejson.loads(text, max_bytes=LIMIT)

    assert refused.value.code == code
    detail = refused.value.detail
    assert detail and detail.encode("utf-8")  # always encodable
    assert "\ud800" not in detail
    assert not text.strip() or text[:20] not in detail


def test_when_bytes_are_not_utf8_or_too_many_then_they_are_refused():
    with pytest.raises(safejson.JSONRefused) as refused:
        safejson.loads(b'{"a": "\xff"}', max_bytes=LIMIT)
    assert refused.value.code == "not_utf8"
    with pytest.raises(safejson.JSONRefused) as refused:
        safejson.loads(b" " * (LIMIT + 1), max_bytes=LIMIT)
    assert refused.value.code == "too_large"


@pytest.mark.parametrize("text, value", [
    ('{"type": "message.send", "body": "Сәлем 👋"}', {"type": "message.send", "body": "Сәлем 👋"}),
    ('{"type": "\\ud83d\\udc4b"}', {"type": "👋"}),  # a surrogate pair is a character
    ("[" * 32 + "]" * 32, None),  # exactly the depth allowed
    ('{"n": 12345678901234567890, "f": -1.5e10}', {"n": 12345678901234567890, "f": -1.5e10}),
    ("null", None),
])
def test_when_json_is_ordinary_then_it_reads_as_json_loads_would(text, value):
    import json

    assert safejson.loads(text, max_bytes=LIMIT) == json.loads(text)
    if value is not None:
        assert safejson.loads(text, max_bytes=LIMIT) == value


def test_when_a_secret_is_compared_with_non_ascii_text_then_it_is_unequal_not_an_error():
    assert secrets_equal("v1=é", "v1=abc") is False
    assert secrets_equal("\udc80", "abc") is False
    assert secrets_equal(b"abc", "abc") is True
    assert secrets_equal("ключ", "ключ") is True


# --- Error pages and reports ---------------------------------------------------------------------------


def _report_of_a_failure(settings) -> str:
    settings.ODR_TORELIK_SECRET = f"torelik-{uuid.uuid4().hex}"  # made here: not in any source line shown

    def fail():
        torelik_secret = settings.ODR_TORELIK_SECRET  # noqa: F841 — a local the page would list
        holder = {"innocent_name": settings.SECRET_KEY}  # noqa: F841 — a secret inside an ordinary value
        count_of_things = 42  # noqa: F841
        raise RuntimeError("boom")

    try:
        fail()
    except RuntimeError:
        return ExceptionReporter(None, *sys.exc_info()).get_traceback_html()
    raise AssertionError("did not fail")


@pytest.mark.parametrize("debug", [True, False])
def test_when_an_error_report_is_made_then_no_secret_setting_or_variable_is_in_it(settings, debug):
    settings.DEBUG = debug
    settings.ODR_SEAL_PASSPHRASE = f"seal-{uuid.uuid4().hex}"

    page = _report_of_a_failure(settings)

    for secret in (settings.ODR_TORELIK_SECRET, settings.SECRET_KEY, settings.ODR_MASTER_KEY,
                   settings.ODR_SEAL_PASSPHRASE):
        assert secret not in page
    assert "torelik_secret" in page and "holder" in page  # the variables are listed, their values not
    assert "count_of_things" in page and "42" in page  # ordinary values are still shown


@pytest.mark.django_db
def test_when_make_run_serves_an_error_page_then_it_shows_no_secret(settings):
    settings.DEBUG = True
    settings.ROOT_URLCONF = "tests.odr.failing_urls"
    settings.ODR_TORELIK_SECRET = f"torelik-{uuid.uuid4().hex}"

    response = Client(raise_request_exception=False).get("/failure/")

    assert response.status_code == 500
    page = response.content.decode()
    assert "RuntimeError" in page  # the technical page, as DEBUG shows it
    assert settings.ODR_TORELIK_SECRET not in page and settings.SECRET_KEY not in page


@pytest.mark.django_db
@pytest.mark.parametrize("debug", [True, False])
def test_when_an_api_view_fails_then_the_answer_is_a_json_500_without_the_debug_page(settings, debug):
    settings.DEBUG = debug
    settings.ROOT_URLCONF = "tests.odr.failing_urls"
    settings.ODR_TORELIK_SECRET = f"torelik-{uuid.uuid4().hex}"

    response = Client(raise_request_exception=False).get("/api/v1/failure/")

    assert response.status_code == 500
    assert response["Content-Type"] == "application/json"
    assert response.json()["code"] == "server_error"
    assert b"RuntimeError" not in response.content
    assert settings.ODR_TORELIK_SECRET.encode() not in response.content


@pytest.mark.django_db
def test_when_a_request_is_refused_then_it_is_logged_in_one_line_without_a_traceback(
    active_case, party_a, caplog
):
    client = Client()
    client.force_login(party_a)
    caplog.set_level(logging.INFO)

    response = client.post(reverse("mediation:invite", args=[active_case.public_id, "mediator"]))

    assert response.status_code == 403
    (record,) = [r for r in caplog.records if r.name == "django.request"]
    assert record.getMessage().startswith("Forbidden")
    assert record.exc_info is None and "Traceback" not in caplog.text


@pytest.mark.django_db
def test_when_a_view_fails_then_its_traceback_is_still_logged(settings, caplog):
    settings.ROOT_URLCONF = "tests.odr.failing_urls"
    caplog.set_level(logging.INFO)

    Client(raise_request_exception=False).get("/failure/")

    (record,) = [r for r in caplog.records if r.name == "django.request"]
    assert record.exc_info is not None  # a real error keeps what is needed to fix it
