"""A party signs in and files an application for mediation, in a real browser."""

import re

import pytest
from playwright.sync_api import expect

from odr.models import Language, User
from sessions.models import Case, CaseStatus, Invitation, Participant, ParticipantStatus, Role
from tests.conftest import PASSWORD

pytestmark = pytest.mark.e2e

PHONE = {"width": 390, "height": 844}
APPLICATION_SHOT = "/tmp/e2e-application.png"
CASE_SHOT = "/tmp/e2e-case.png"
CASE_URL = r"/cases/[0-9a-f-]{36}/$"
WRONG_CREDENTIALS = "The email address and/or password you specified are not correct."


@pytest.fixture
def claimant(party_a):
    """party_a, reading the site in English so that the assertions read the
    platform's own wording (the user's language wins over the browser's)."""
    User.objects.filter(pk=party_a.pk).update(preferred_language=Language.ENGLISH)
    return User.objects.get(pk=party_a.pk)


def url(live_server, pattern):
    return re.compile("^" + re.escape(live_server.url) + pattern)


def field(page, tag, name):
    """A field of the page's main form (the header has a select named "language" too)."""
    return page.locator(f"main {tag}[name='{name}']")


def sign_in(page, live_server, email, password=PASSWORD):
    page.goto(live_server.url + "/accounts/login/")
    form = page.locator("form:has(input[name='login'])")
    form.locator("input[name='login']").fill(email)
    form.locator("input[name='password']").fill(password)
    form.locator("button[type='submit']").click()


def open_application(page, live_server):
    page.get_by_role("link", name="New application").click()
    expect(page).to_have_url(live_server.url + "/cases/new/")
    expect(page.get_by_role("heading", name="Application for mediation")).to_be_visible()


def fill_dispute(page):
    field(page, "select", "category").select_option("family")
    field(page, "textarea", "description").fill(
        "The flat we share after the divorce: who pays the rent."
    )
    field(page, "select", "language").select_option("ru")


def fill_party(page, index, name, email):
    field(page, "input", f"parties-{index}-name").fill(name)
    field(page, "input", f"parties-{index}-email").fill(email)


def file_application(page):
    page.get_by_role("button", name="File the application").click()


def test_when_party_logs_in_and_files_application_then_case_is_invited(
    page, live_server, claimant, mediator
):
    page.set_viewport_size(PHONE)

    sign_in(page, live_server, claimant.email)
    expect(page).to_have_url(live_server.url + "/dashboard/")
    expect(page.get_by_role("heading", name="My cases")).to_be_visible()

    open_application(page, live_server)
    fill_dispute(page)
    fill_party(page, 0, "Bolat Respondent", "respondent@example.kz")
    field(page, "select", "mediator").select_option(str(mediator.pk))
    page.screenshot(path=APPLICATION_SHOT, full_page=True)

    file_application(page)

    expect(page).to_have_url(url(live_server, CASE_URL))
    expect(page.locator("main span.status")).to_have_text("Parties invited")
    expect(page.locator("table").get_by_text("Bolat Respondent")).to_be_visible()
    expect(page.locator(".messages")).to_contain_text("Your application was filed.")
    page.screenshot(path=CASE_SHOT, full_page=True)

    case = Case.objects.get()
    assert str(case.public_id) in page.url
    assert (case.status, case.category, case.language) == (CaseStatus.INVITED, "family", "ru")
    assert Participant.objects.get(case=case, role=Role.CLAIMANT).user == claimant
    invitation = Invitation.objects.get(case=case)
    assert (invitation.email, invitation.name, invitation.role) == (
        "respondent@example.kz", "Bolat Respondent", Role.RESPONDENT,
    )
    assert invitation.sent_at is not None
    proposed = Participant.objects.get(case=case, role=Role.MEDIATOR)
    assert (proposed.user, proposed.status) == (mediator, ParticipantStatus.PROPOSED)


def test_when_application_is_incomplete_then_browser_shows_errors_and_nothing_is_created(
    page, live_server, claimant, mediator
):
    sign_in(page, live_server, claimant.email)
    open_application(page, live_server)
    field(page, "select", "category").select_option("family")
    fill_party(page, 0, "Bolat Respondent", "not-an-email")

    file_application(page)

    expect(page).to_have_url(live_server.url + "/cases/new/")
    description = field(page, "textarea", "description")
    email = field(page, "input", "parties-0-email")
    expect(page.locator("#id_description_error")).to_contain_text("This field is required.")
    expect(description).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#id_parties-0-email_error")).to_contain_text(
        "Enter a valid email address."
    )
    expect(email).to_have_attribute("aria-invalid", "true")
    # What the party typed is kept; the field that was right shows no error.
    expect(field(page, "input", "parties-0-name")).to_have_value("Bolat Respondent")
    expect(email).to_have_value("not-an-email")
    expect(page.locator("#id_parties-0-name_error")).to_have_count(0)
    assert not Case.objects.exists()
    assert not Invitation.objects.exists()


def test_when_add_another_party_is_clicked_then_two_parties_are_invited(
    page, live_server, claimant, mediator
):
    sign_in(page, live_server, claimant.email)
    open_application(page, live_server)
    fill_dispute(page)
    fill_party(page, 0, "Bolat Respondent", "respondent@example.kz")
    parties = page.locator("#parties-list .party")
    rows_before = parties.count()

    add = page.get_by_role("button", name="Add another party")
    expect(add).to_be_visible()  # hidden until site.js enhances the form
    add.click()

    expect(parties).to_have_count(rows_before + 1)
    new_name = parties.last.locator("input[name$='-name']")
    expect(new_name).to_be_focused()
    expect(new_name).to_have_attribute("name", f"parties-{rows_before}-name")
    expect(field(page, "input", "parties-TOTAL_FORMS")).to_have_value(str(rows_before + 1))
    fill_party(page, rows_before, "Dana Second", "dana@example.kz")
    # The mediator is left to the platform.
    mediator_choice = field(page, "select", "mediator").locator("option:checked")
    expect(mediator_choice).to_have_text("Assign one for me")

    file_application(page)

    expect(page).to_have_url(url(live_server, CASE_URL))
    expect(page.locator("main span.status")).to_have_text("Parties invited")
    expect(page.locator("table").get_by_text("Bolat Respondent")).to_be_visible()
    expect(page.locator("table").get_by_text("Dana Second")).to_be_visible()
    case = Case.objects.get()
    assert case.status == CaseStatus.INVITED
    emails = sorted(case.invitations.values_list("email", flat=True))
    assert emails == ["dana@example.kz", "respondent@example.kz"]
    proposed = Participant.objects.get(case=case, role=Role.MEDIATOR)
    assert (proposed.user, proposed.status) == (mediator, ParticipantStatus.PROPOSED)


def test_when_password_is_wrong_then_login_page_shows_error(page, live_server, claimant):
    sign_in(page, live_server, claimant.email, password="not-the-password")

    expect(page).to_have_url(live_server.url + "/accounts/login/")
    expect(page.get_by_text(WRONG_CREDENTIALS)).to_be_visible()
    expect(page.locator("input[name='login']")).to_have_value(claimant.email)
    expect(page.get_by_role("button", name="Sign out")).to_have_count(0)
    page.goto(live_server.url + "/dashboard/")
    expect(page).to_have_url(url(live_server, r"/accounts/login/\?next=/dashboard/$"))
