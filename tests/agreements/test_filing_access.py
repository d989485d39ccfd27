"""Who reaches filing and the court portal: as an attacker would try it."""

import pytest
from django.test import Client
from django.urls import reverse

from agreements.models import Filing, FilingStatus
from agreements.services import filing as filing_services
from odr.models import AuditAction, AuditEvent, Court, CourtUser
from sessions.models import Case
from tests.conftest import PASSWORD, enable_totp


@pytest.fixture
def filed(active_case, court, sealed_agreement, party_a, run_jobs, origin):
    Case.objects.filter(pk=active_case.pk).update(court=court, court_case_number="2-600/2026")
    sealed_agreement.refresh_from_db()
    filing = filing_services.filing_submit(agreement=sealed_agreement, user=party_a, origin=origin)
    run_jobs()
    filing.refresh_from_db()
    return filing


def client_for(user, *, reauth=False):
    client = Client()
    if user is not None:
        client.force_login(user)
        if reauth:
            client.post(reverse("account_reauthenticate"), {"password": PASSWORD})
    return client


def portal_urls(filing):
    return [
        reverse("agreements:court_filings"),
        reverse("agreements:court_filing", args=[filing.public_id]),
        reverse("agreements:court_filing_pdf", args=[filing.public_id]),
    ]


def test_when_someone_who_is_not_the_courts_user_tries_the_portal_then_it_does_not_exist_for_them(
    filed, party_a, mediator, admin_user, user_factory, court
):
    elsewhere = Court.objects.create(code="elsewhere", name="Another Court", region=court.region)
    other_clerk = enable_totp(user_factory("clerk@elsewhere.kz"))
    CourtUser.objects.create(user=other_clerk, court=elsewhere)
    for user in (party_a, mediator, admin_user, user_factory("stranger@example.kz")):
        for url in portal_urls(filed):
            assert client_for(user).get(url).status_code == 404, (user.email, url)
    other = client_for(other_clerk)
    assert str(filed.public_id) not in other.get(reverse("agreements:court_filings")).content.decode()
    for url in portal_urls(filed)[1:]:
        assert other.get(url).status_code == 404
    response = other.post(reverse("agreements:court_filing_answer", args=[filed.public_id]), {"status": "approved"})
    assert response.status_code == 404
    filed.refresh_from_db()
    assert filed.status == FilingStatus.DELIVERED
    assert not AuditEvent.objects.filter(action=AuditAction.AGREEMENT_DOWNLOADED, actor=other_clerk).exists()


def test_when_a_court_user_without_2fa_opens_the_portal_then_they_are_sent_to_set_it_up(filed, user_factory, court):
    clerk = user_factory("new.clerk@court.kz")
    CourtUser.objects.create(user=clerk, court=court)
    response = client_for(clerk).get(reverse("agreements:court_filings"))
    assert response.status_code in (302, 404)
    assert str(filed.public_id) not in response.content.decode()


@pytest.fixture
def representative_and_observer(active_case, one_user_per_role, origin):
    """Invited while the case is active (before the agreement is sealed)."""
    from sessions.models import Role
    from sessions.services import invitations
    from tests.case_fixtures import accept_undertaking

    people = one_user_per_role
    for who, role, actor in (("representative", Role.REPRESENTATIVE, "respondent"),
                             ("observer", Role.OBSERVER, "mediator")):
        invitation = invitations.invitation_create(case=active_case, actor=people[actor], role=role, name=who,
                                                   email=people[who].email, origin=origin)
        invitations.invitation_accept(invitation=invitation, user=people[who], origin=origin)
        accept_undertaking(active_case, people[who], origin)
    return people


@pytest.mark.parametrize("who", ["representative", "observer", "stranger", "other_mediator"])
def test_when_someone_other_than_a_party_or_the_mediator_files_then_nothing_is_filed(
    representative_and_observer, active_case, court, sealed_agreement, who
):
    Case.objects.filter(pk=active_case.pk).update(court=court, court_case_number="2-601/2026")
    client = client_for(representative_and_observer[who], reauth=True)
    response = client.post(reverse("agreements:file", args=[active_case.public_id, sealed_agreement.public_id]))
    assert response.status_code in (302, 404)
    assert not Filing.objects.exists()


def test_when_a_filing_url_of_another_case_is_forged_then_it_is_404(filed, party_a, active_case, sealed_agreement):
    import uuid

    client = client_for(party_a, reauth=True)
    forged = reverse("agreements:file", args=[active_case.public_id, uuid.uuid4()])
    assert client.post(forged).status_code == 404
    assert Filing.objects.count() == 1


def test_when_a_party_files_without_recent_reauthentication_then_they_are_asked_for_the_password(
    active_case, court, sealed_agreement, party_a
):
    Case.objects.filter(pk=active_case.pk).update(court=court, court_case_number="2-602/2026")
    response = client_for(party_a).post(reverse("agreements:file", args=[active_case.public_id,
                                                                          sealed_agreement.public_id]))
    assert response.status_code == 302 and "reauthenticate" in response["Location"]
    assert not Filing.objects.exists()


def test_when_the_court_returns_without_a_reason_then_it_is_refused_with_a_message(filed, court_user):
    client = client_for(court_user)
    response = client.post(reverse("agreements:court_filing_answer", args=[filed.public_id]),
                           {"status": "returned", "reason": ""}, follow=True)
    assert "Say why the agreement is returned" in response.content.decode()
    filed.refresh_from_db()
    assert filed.status == FilingStatus.DELIVERED


def test_when_a_court_user_searches_then_filters_narrow_the_list(filed, court_user):
    client = client_for(court_user)
    url = reverse("agreements:court_filings")
    assert "2-600/2026" in client.get(url, {"q": "600"}).content.decode()
    assert "2-600/2026" not in client.get(url, {"q": "999"}).content.decode()
    assert "2-600/2026" in client.get(url, {"status": "delivered"}).content.decode()
    assert "2-600/2026" not in client.get(url, {"status": "approved"}).content.decode()
    assert "2-600/2026" not in client.get(url, {"from": "2099-01-01"}).content.decode()
    assert client.get(url, {"from": "not-a-date", "page": "x"}).status_code == 200
