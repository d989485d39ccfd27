"""Administrators create a court's API token in the admin (shown once, only
its hash kept) and revoke it; both audited."""

import re

from django.test import Client
from django.urls import reverse

from agreements.models import CourtApiToken
from agreements.services.court_tokens import token_digest
from odr.models import AuditAction, AuditEvent


def test_when_an_admin_adds_a_token_then_it_is_shown_once_works_and_can_be_revoked(admin_user, court):
    admin = Client()
    admin.force_login(admin_user)

    response = admin.post(reverse("admin:agreements_courtapitoken_add"), {"court": court.pk, "name": "CMS"},
                          follow=True)

    page = response.content.decode()
    token = re.search(r"(odrc_[A-Za-z0-9_\-]+)", page).group(1)
    record = CourtApiToken.objects.get()
    assert record.key_sha256 == token_digest(token) and token not in str(CourtApiToken.objects.values().get())
    api = Client(headers={"Authorization": f"Bearer {token}"})
    assert api.get(reverse("api_filings")).status_code == 200
    assert token not in admin.get(reverse("admin:agreements_courtapitoken_change", args=[record.pk])).content.decode()

    admin.post(reverse("admin:agreements_courtapitoken_changelist"),
               {"action": "revoke", "_selected_action": [record.pk]}, follow=True)

    assert api.get(reverse("api_filings")).status_code == 401
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {AuditAction.COURT_TOKEN_CREATED, AuditAction.COURT_TOKEN_REVOKED} <= actions


def test_when_someone_who_is_not_staff_opens_the_token_admin_then_they_cannot(party_a):
    client = Client()
    client.force_login(party_a)
    response = client.get(reverse("admin:agreements_courtapitoken_add"))
    assert response.status_code == 302 and "login" in response["Location"]
