"""The court API and the Torelik callback against hostile requests: bodies
nested deeper than any parser's stack, lone surrogates, numbers of
thousands of digits, non-ASCII signatures, bodies over the limit. Each gets
a 4xx with a JSON body that names the problem, never a 500 — under DEBUG
(make run) as well, where Django would otherwise answer with its technical
error page."""

import json
import time

import pytest
from django.test import Client
from django.urls import reverse

from agreements import torelik
from agreements.api.torelik_views import MAX_BODY
from agreements.services.court_tokens import court_token_create

SECRET = "hostile-test-secret"


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


HOSTILE_BODIES = [  # (label, body, code the safe parser gives)
    ("5,000 nested arrays", nested(5_000), "too_deep"),
    ("30,000 nested arrays", nested(30_000), "too_deep"),
    ("100,000 nested arrays", nested(100_000), "too_deep"),
    ("nested objects", b'{"a":' * 5_000 + b"1" + b"}" * 5_000, "too_deep"),
    ("a lone surrogate, escaped", b'{"event_id": "\\ud800", "status": "approved"}', "bad_text"),
    ("a lone surrogate as a key", b'{"\\udfff": 1}', "bad_text"),
    ("invalid UTF-8", b'{"event_id": "\xff\xfe"}', "not_utf8"),
    ("a 5,000-digit number", b'{"n": ' + b"9" * 5_000 + b"}", "bad_number"),
    ("NaN", b'{"n": NaN}', "bad_number"),
    ("Infinity", b'{"n": -Infinity}', "bad_number"),
    ("1e999", b'{"n": 1e999}', "bad_number"),
    ("not JSON", b"{nope", "not_json"),
]


def _signed(body: bytes, *, secret: str = SECRET, signature: str | None = None) -> dict:
    timestamp = str(int(time.time()))
    return {
        torelik.TIMESTAMP_HEADER: timestamp,
        torelik.SIGNATURE_HEADER: signature if signature is not None else torelik.sign(secret, timestamp, body),
    }


@pytest.fixture
def callback_secret(settings):
    settings.ODR_TORELIK_SECRET = SECRET
    return SECRET


@pytest.fixture(params=[False, True], ids=["production", "debug"])
def debug(request, settings):
    settings.DEBUG = request.param
    return request.param


@pytest.mark.django_db
@pytest.mark.parametrize("signature", ["v1=é", "v1=\u0416\u0416", "v1=" + "ф" * 64, "\x80\xff", "v1=\u2028"])
def test_when_the_signature_header_is_not_ascii_then_the_callback_answers_401_not_500(
    callback_secret, debug, signature
):
    client = Client(raise_request_exception=False)
    body = b'{"event_id": "e1", "filing_id": "00000000-0000-4000-8000-000000000000", "status": "approved"}'

    response = client.post(reverse("torelik_callback"), data=body, content_type="application/json",
                           headers=_signed(body, signature=signature))

    assert response.status_code == 401
    assert response.json()["code"] == "bad_signature"


@pytest.mark.django_db
@pytest.mark.parametrize("label, body, _code", HOSTILE_BODIES, ids=[b[0] for b in HOSTILE_BODIES])
def test_when_a_correctly_signed_callback_body_is_hostile_then_it_is_refused_as_malformed_or_too_large(
    callback_secret, debug, label, body, _code
):
    client = Client(raise_request_exception=False)

    response = client.post(reverse("torelik_callback"), data=body, content_type="application/json",
                           headers=_signed(body))

    answer = response.json()
    if len(body) > MAX_BODY:
        assert (response.status_code, answer["code"]) == (413, "too_large"), label
    else:
        assert (response.status_code, answer["code"]) == (400, "malformed"), (label, answer)
    assert answer["detail"]
    assert "\\ud800" not in response.content.decode()  # the input is never echoed back


@pytest.mark.django_db
def test_when_a_signed_callback_body_is_over_the_limit_then_it_is_413(callback_secret):
    body = json.dumps({"event_id": "e", "padding": "x" * 70_000}).encode()

    response = Client().post(reverse("torelik_callback"), data=body, content_type="application/json",
                             headers=_signed(body))

    assert response.status_code == 413 and response.json()["code"] == "too_large"


@pytest.fixture
def court_api(filed, court, admin_user):
    _record, token = court_token_create(court=court, name="Hostile tests", user=admin_user)
    client = Client(raise_request_exception=False, headers={"Authorization": f"Bearer {token}"})
    return client, reverse("api_filing_status", args=[filed.public_id])


@pytest.mark.parametrize("label, body, code", HOSTILE_BODIES, ids=[b[0] for b in HOSTILE_BODIES])
def test_when_the_court_api_gets_a_hostile_body_then_it_answers_4xx_in_json_and_nothing_changes(
    court_api, filed, debug, settings, label, body, code
):
    client, url = court_api
    before = (filed.status, filed.events.count())

    response = client.post(url, data=body, content_type="application/json")

    answer = response.json()
    if len(body) > settings.ODR_API_MAX_BODY_BYTES:
        assert (response.status_code, answer["code"]) == (413, "too_large"), label
    else:
        assert (response.status_code, answer["code"]) == (400, code), (label, answer)
    assert answer["detail"]
    filed.refresh_from_db()
    assert (filed.status, filed.events.count()) == before


def test_when_the_court_api_body_is_over_the_limit_then_it_answers_413_in_json(court_api, settings):
    client, url = court_api
    body = json.dumps({"status": "received", "reason": "x" * (settings.ODR_API_MAX_BODY_BYTES + 1)})

    response = client.post(url, data=body, content_type="application/json")

    assert response.status_code == 413
    assert response.json()["code"] == "too_large"


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/v1/no-such-thing/", "/api/torelik/nope", "/api/v1/filings/x/y/z/"])
def test_when_an_api_url_does_not_exist_then_the_answer_is_json_even_under_debug(settings, path):
    settings.DEBUG = True

    response = Client().get(path)

    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"detail": "Not Found", "code": "not_found"}


@pytest.mark.django_db
def test_when_the_callback_is_asked_with_get_then_the_answer_is_json(callback_secret):
    response = Client().get(reverse("torelik_callback"))

    assert response.status_code == 405
    assert response.json()["detail"]
