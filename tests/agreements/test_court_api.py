"""The court API: tokens per court, the cursor, the PDF, status changes,
and clear 4xx answers to bad requests."""

import pytest
from django.test import Client
from django.urls import reverse

from agreements.models import FilingStatus
from agreements.services.court_tokens import court_token_create, court_token_revoke
from odr.models import AuditAction, AuditEvent, Court


def api(token):
    return Client(headers={"Authorization": f"Bearer {token}"})


def test_when_a_court_polls_then_it_sees_its_filings_changed_since_the_cursor_and_answers(filed, court, admin_user):
    _, token = court_token_create(court=court, name="Case management system", user=admin_user)
    client = api(token)

    page = client.get(reverse("api_filings")).json()
    assert [f["id"] for f in page["results"]] == [str(filed.public_id)]
    assert page["results"][0]["status"] == "delivered"
    cursor = page["next_cursor"]
    assert client.get(reverse("api_filings"), {"since": cursor}).json()["results"] == []

    answer = client.post(reverse("api_filing_status", args=[filed.public_id]), {"status": "approved"},
                         content_type="application/json")
    assert answer.status_code == 200 and answer.json()["status"] == "approved"
    changed = client.get(reverse("api_filings"), {"since": cursor}).json()
    assert [f["status"] for f in changed["results"]] == ["approved"]

    report = client.get(reverse("api_filing_verification", args=[filed.public_id])).json()
    assert report["valid"] is True
    pdf = client.get(reverse("api_filing_pdf", args=[filed.public_id]))
    assert pdf["Content-Type"] == "application/pdf" and pdf.content.startswith(b"%PDF-")
    assert AuditEvent.objects.filter(action=AuditAction.AGREEMENT_DOWNLOADED, details__filing=str(filed.public_id)).exists()


def test_when_another_courts_token_asks_then_the_filing_does_not_exist_for_it(filed, court, admin_user):
    elsewhere = Court.objects.create(code="elsewhere", name="Another Court", region=court.region)
    _, token = court_token_create(court=elsewhere, name="Theirs", user=admin_user)
    client = api(token)
    assert client.get(reverse("api_filings")).json()["results"] == []
    for name in ("api_filing", "api_filing_verification", "api_filing_pdf"):
        assert client.get(reverse(name, args=[filed.public_id])).status_code == 404
    assert client.post(reverse("api_filing_status", args=[filed.public_id]), {"status": "approved"},
                       content_type="application/json").status_code == 404
    filed.refresh_from_db()
    assert filed.status == FilingStatus.DELIVERED


def test_when_a_token_is_revoked_or_missing_or_forged_then_it_is_refused(filed, court, admin_user):
    record, token = court_token_create(court=court, name="Old", user=admin_user)
    court_token_revoke(token=record, user=admin_user)
    for client in (api(token), api("odrc_forged"), Client(), Client(headers={"Authorization": "Token x"})):
        response = client.get(reverse("api_filings"))
        assert response.status_code in (401, 403)
        assert "detail" in response.json()


@pytest.mark.parametrize("body, content_type", [
    ({"status": "returned"}, "application/json"),              # no reason
    ({"status": "sealed"}, "application/json"),                 # not an answer
    ({}, "application/json"),
    ("{not json", "application/json"),
    ({"status": "approved", "reason": "x" * 3000}, "application/json"),
])
def test_when_a_status_change_is_malformed_then_it_is_a_400_with_a_clear_body(filed, court, admin_user, body,
                                                                               content_type):
    _, token = court_token_create(court=court, name="CMS", user=admin_user)
    response = api(token).post(reverse("api_filing_status", args=[filed.public_id]), body, content_type=content_type)
    assert response.status_code == 400
    assert response.json()["detail"]


def test_when_a_filing_is_approved_then_it_cannot_be_returned_any_more(filed, court, admin_user):
    _, token = court_token_create(court=court, name="CMS", user=admin_user)
    client = api(token)
    client.post(reverse("api_filing_status", args=[filed.public_id]), {"status": "approved"}, content_type="application/json")
    response = client.post(reverse("api_filing_status", args=[filed.public_id]),
                           {"status": "returned", "reason": "Changed our mind"}, content_type="application/json")
    assert response.status_code == 400 and response.json()["code"] == "bad_transition"


def test_when_the_schema_is_fetched_then_it_is_openapi_and_describes_the_token(db):
    schema = Client().get(reverse("api_schema"), headers={"Accept": "application/json"})
    assert schema.status_code == 200
    assert b"courtToken" in schema.content and b"/api/v1/filings/" in schema.content
