"""Schemathesis against the court API's own OpenAPI schema: generated
requests (valid and malformed) never get a server error or an answer the
schema does not describe (status code, content type, headers, body).

Schemathesis' opinions on which requests should have been accepted or
refused (its `positive_data_acceptance` / `negative_data_rejection` checks)
are left out: they flag requests it mutated in ways it does not report,
and tests/agreements/test_court_api.py asserts what is refused, and how."""

import json
import time

import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from hypothesis import HealthCheck, settings
from schemathesis import checks
from schemathesis.core import NotSet

from agreements import torelik
from agreements.models import Filing

from agreements.services import filing as filing_services
from agreements.services.court_tokens import court_token_create
from sessions.models import Case


@pytest.fixture(autouse=True)
def _keep_the_test_connection():
    """The WSGI handler closes the database connection after each request
    (Django's test client disconnects that, and so do we): the test's
    transaction lives on it."""
    from django.core import signals
    from django.db import close_old_connections

    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


# Loaded once, at collection, from the application itself (no database needed).
schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", get_wsgi_application())


@pytest.fixture
def court_token(active_case, court, sealed_agreement, party_a, admin_user, run_jobs, origin):
    """A filing delivered to the court, and that court's token."""
    Case.objects.filter(pk=active_case.pk).update(court=court, court_case_number="2-900/2026")
    sealed_agreement.refresh_from_db()
    filing_services.filing_submit(agreement=sealed_agreement, user=party_a, origin=origin)
    run_jobs()
    return court_token_create(court=court, name="Schemathesis", user=admin_user)[1]


@schema.parametrize()
@settings(max_examples=30, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@pytest.mark.django_db
def test_the_court_api_conforms_to_its_schema(case, court_token):
    case.call_and_validate(
        headers={"Authorization": f"Bearer {court_token}"},
        checks=[
            checks.not_a_server_error, checks.status_code_conformance, checks.content_type_conformance,
            checks.response_headers_conformance, checks.response_schema_conformance,
        ],
    )


# --- The Torelik callback, signed as the judicial system signs it ----------------------------------------

torelik_schema = schemathesis.openapi.from_wsgi("/api/torelik/schema/?format=json", get_wsgi_application())
TORELIK_SECRET = "schemathesis-shared-secret"


@pytest.fixture
def torelik_filing(filed, settings):
    """A filing delivered through the judicial system (the callback touches no other)."""
    settings.ODR_TORELIK_SECRET = TORELIK_SECRET
    Filing.objects.filter(pk=filed.pk).update(channel="torelik")
    return filed


@torelik_schema.parametrize()
@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@pytest.mark.django_db
def test_the_torelik_callback_conforms_to_its_schema_for_signed_fuzzed_bodies(case, torelik_filing):
    """Every body is correctly signed, so the fuzzing reaches past the
    signature check: parsing, validation, the filing's state machine."""
    body = case.body
    if isinstance(body, dict) and "filing_id" in body:
        body = {**body, "filing_id": str(torelik_filing.public_id)}  # reach a real filing
    if isinstance(body, NotSet):
        payload = b""
    elif isinstance(body, (bytes, str)):  # a negative case's raw body
        payload = body if isinstance(body, bytes) else body.encode("utf-8", "surrogatepass")
    else:
        payload = json.dumps(body).encode()
    timestamp = str(int(time.time()))
    case.call_and_validate(
        headers={torelik.TIMESTAMP_HEADER: timestamp, torelik.SIGNATURE_HEADER: torelik.sign(TORELIK_SECRET, timestamp, payload),
                 "Content-Type": "application/json"},
        data=payload,
        checks=[
            checks.not_a_server_error, checks.status_code_conformance, checks.content_type_conformance,
            checks.response_schema_conformance,
        ],
    )
