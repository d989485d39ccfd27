"""The issue's "done when", over HTTP: application → invitation by email →
sign-up through the link → mediator accepts → agreement to mediate → active."""

import re

from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext

from odr.models import AuditAction, AuditEvent, User
from sessions.models import Case, CaseStatus
from tests.conftest import PASSWORD


def _links(outbox, email, pattern):
    bodies = [m.body for m in outbox if email in m.to]
    return [link for body in bodies for link in re.findall(pattern, body)]


def _accept_atm_page(client, case):
    url = reverse("mediation:agreement_to_mediate", args=[case.public_id])
    page = client.get(url)
    assert page.status_code == 200
    sha = re.search(r'name="text_sha256" value="([0-9a-f]{64})"', page.content.decode()).group(1)
    return client.post(url, {"text_sha256": sha, "consent": "1"})


def test_when_newcomer_runs_the_whole_intake_then_the_case_is_active(client, party_a, mediator, run_jobs, outbox):
    # The claimant signs in and files an application against a new person.
    response = client.post(reverse("account_login"), {"login": party_a.email, "password": PASSWORD})
    assert response.status_code == 302
    response = client.post(reverse("mediation:case_new"), {
        "category": "family", "description": "Child support arrangements", "language": "ru",
        "court": "", "court_case_number": "", "mediator": str(mediator.pk),
        "parties-TOTAL_FORMS": "1", "parties-INITIAL_FORMS": "0",
        "parties-MIN_NUM_FORMS": "1", "parties-MAX_NUM_FORMS": "20",
        "parties-0-name": "Newcomer Respondent", "parties-0-email": "newcomer@example.kz",
        "file": "",
    })
    case = Case.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/cases/{case.public_id}/"
    assert case.status == CaseStatus.INVITED
    client.post(reverse("account_logout"))

    # The invited person opens the emailed link, signs up, confirms, accepts.
    run_jobs()
    invite_path = _links(outbox, "newcomer@example.kz", r"https?://[^/\s]+(/invitations/\S+/)")[0]
    page = client.get(invite_path)
    assert page.status_code == 200 and "Child support" in page.content.decode()
    response = client.post(reverse("account_signup") + f"?next={invite_path}", {
        "email": "newcomer@example.kz", "password1": PASSWORD, "password2": PASSWORD,
        "display_name": "Newcomer Respondent", "preferred_language": "kk", "next": invite_path,
    })
    assert response.status_code == 302
    run_jobs()
    confirm_path = _links(outbox, "newcomer@example.kz", r"https?://[^/\s]+(/accounts/confirm-email/\S+/)")[0]
    response = client.post(confirm_path)
    assert response.status_code == 302
    newcomer = User.objects.get(email="newcomer@example.kz")
    assert newcomer.preferred_language == "kk"
    response = client.post(invite_path, {"answer": "accept"})
    assert response.status_code == 302, response.content.decode()[:500]
    client.post(reverse("account_logout"))

    # The mediator accepts the case.
    client.force_login(mediator)
    client.post(reverse("mediation:mediator_answer", args=[case.public_id]), {"answer": "accept"})
    case.refresh_from_db()
    assert case.status == CaseStatus.ACCEPTED

    # Everyone accepts the agreement to mediate.
    for user in (mediator, party_a, newcomer):
        client.force_login(user)
        assert _accept_atm_page(client, case).status_code == 302
    case.refresh_from_db()
    assert case.status == CaseStatus.ACTIVE
    page = client.get(reverse("mediation:case_detail", args=[case.public_id])).content.decode()
    with translation.override("kk"):  # the newcomer chose Kazakh at sign-up
        expected = f"{gettext('Case state changed')}: {gettext('Mediation in progress')}"
    assert expected in page
    assert AuditEvent.objects.filter(action=AuditAction.AGREEMENT_TO_MEDIATE_ACCEPTED).count() == 3


def test_when_form_is_invalid_then_errors_are_shown_and_nothing_is_created(client, party_a):
    client.force_login(party_a)
    response = client.post(reverse("mediation:case_new"), {
        "category": "nonsense", "description": "", "language": "xx",
        "parties-TOTAL_FORMS": "1", "parties-INITIAL_FORMS": "0",
        "parties-MIN_NUM_FORMS": "1", "parties-MAX_NUM_FORMS": "20",
        "parties-0-name": "", "parties-0-email": "not-an-email", "file": "",
    })
    assert response.status_code == 200
    assert response.context["form"].errors and response.context["formset"].errors
    assert not Case.objects.exists()


def test_when_service_refuses_then_form_shows_the_reason(client, party_a, mediator):
    client.force_login(party_a)
    response = client.post(reverse("mediation:case_new"), {
        "category": "civil", "description": "x", "language": "ru", "mediator": str(mediator.pk),
        "parties-TOTAL_FORMS": "1", "parties-INITIAL_FORMS": "0",
        "parties-MIN_NUM_FORMS": "1", "parties-MAX_NUM_FORMS": "20",
        "parties-0-name": "Me", "parties-0-email": party_a.email, "file": "",
    })
    assert response.status_code == 200
    assert "cannot name yourself" in response.content.decode()
    assert not Case.objects.exists()


def test_when_dashboard_is_opened_then_it_shows_the_next_action(client, invited_case, party_a, mediator):
    client.force_login(mediator)
    page = client.get(reverse("mediation:dashboard")).content.decode()
    assert invited_case.reference in page and "Accept or decline the case" in page
    client.force_login(party_a)
    page = client.get(reverse("mediation:dashboard")).content.decode()
    assert invited_case.reference in page and "Parties invited" in page


def test_when_someone_posts_an_action_they_may_not_take_then_nothing_changes(client, active_case, party_a):
    client.force_login(party_a)
    response = client.post(reverse("mediation:close", args=[active_case.public_id]), {"outcome": "settled"})
    assert response.status_code == 302
    active_case.refresh_from_db()
    assert active_case.status == CaseStatus.ACTIVE
