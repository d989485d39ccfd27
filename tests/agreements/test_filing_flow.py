"""Filing a sealed agreement with the court through the built-in portal."""

import pytest
from django.urls import reverse

from agreements.models import DeliveryState, FilingEvent, FilingStatus
from agreements.services import filing as filing_services
from sessions.models import Case
from tests.conftest import PASSWORD


@pytest.fixture
def court_case(active_case, court):
    Case.objects.filter(pk=active_case.pk).update(court=court, court_case_number="2-777/2026")
    active_case.refresh_from_db()
    return active_case


def test_when_a_party_files_then_the_court_approves_in_the_portal_and_the_parties_see_it(
    court_case, sealed_agreement, party_a, court_user, run_jobs, outbox, client, origin
):
    client.force_login(party_a)
    client.post(reverse("account_reauthenticate"), {"password": PASSWORD})
    response = client.post(reverse("agreements:file", args=[court_case.public_id, sealed_agreement.public_id]))
    assert response.status_code == 302
    filing = sealed_agreement.filings.get()
    assert filing.status == FilingStatus.QUEUED

    run_jobs()
    filing.refresh_from_db()
    assert filing.status == FilingStatus.DELIVERED
    assert filing.delivery.state == DeliveryState.DELIVERED

    court = client.__class__()
    court.force_login(court_user)
    page = court.get(reverse("agreements:court_filings"))
    assert "2-777/2026" in page.content.decode()
    detail = court.get(reverse("agreements:court_filing", args=[filing.public_id]))
    assert detail.status_code == 200 and "Valid" in detail.content.decode()
    pdf = court.get(reverse("agreements:court_filing_pdf", args=[filing.public_id]))
    assert pdf["Content-Type"] == "application/pdf"
    court.post(reverse("agreements:court_filing_answer", args=[filing.public_id]), {"status": "received"})
    court.post(reverse("agreements:court_filing_answer", args=[filing.public_id]), {"status": "approved"})
    filing.refresh_from_db()
    assert filing.status == FilingStatus.APPROVED
    assert [e.status for e in filing.events.all()] == ["queued", "delivered", "received", "approved"]

    page = client.get(reverse("agreements:agreement", args=[court_case.public_id])).content.decode()
    assert "Approved by the court" in page
    run_jobs()
    assert any("Approved by the court" in m.subject for m in outbox if party_a.email in m.to)


def test_when_the_court_returns_a_filing_then_it_can_be_filed_again_with_a_corrected_number(
    court_case, sealed_agreement, party_a, court_user, run_jobs, outbox, origin
):
    first = filing_services.filing_submit(agreement=sealed_agreement, user=party_a, origin=origin)
    run_jobs()
    with pytest.raises(Exception):
        filing_services.filing_status_set(filing=first, status="returned", source=FilingEvent.Source.PORTAL,
                                          actor=court_user)
    filing_services.filing_status_set(filing=first, status="returned", reason="Wrong case number.",
                                      source=FilingEvent.Source.PORTAL, actor=court_user)
    second = filing_services.filing_submit(agreement=sealed_agreement, user=party_a, court_case_number="2-778/2026",
                                           origin=origin)
    assert second.replaces == first and second.court_case_number == "2-778/2026"
