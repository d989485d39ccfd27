"""Filing a sealed agreement with the court, and the court portal, in real
browsers against pytest-django's live server.

* A party presses "File with the court" on the agreement page, gives the
  password again (the suspended POST is replayed: the agreement is filed
  once), sees the filing queued, then delivered once the job queue has run.
* The court's clerk, in a browser of their own, finds the filing in the
  portal (filtered by status and case number), sees the agreement verify,
  downloads the sealed PDF and records "received", then "approved".
* The party sees the court's answer on the agreement page, with its history,
  and by email.
* A clerk of another court gets 404 for the filing and does not see it in
  their list.

Every browser context fails the test on a console or script error, and
records its requests and the page's CSP violations: none, and nothing leaves
the site.
"""

import re

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import translation
from playwright.sync_api import expect

from agreements.models import DeliveryState, Filing, FilingStatus, SignatureMethod
from agreements.services import filing as filing_services
from agreements.services import issuing
from odr.models import Court, CourtUser, Region, User
from sessions.models import Case
from tests.agreements import conftest as agreement_fixtures
from tests.conftest import enable_totp
from tests.e2e import test_browser_agreement as agreement_e2e
from tests.e2e.test_browser_agreement import (
    messages_of,
    reauthenticate_if_asked,
    stayed_on_the_site,
)
from tests.e2e.test_browser_room import english, off_the_loop

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

# The agreements' own fixtures: a development CA and seal of the test's own,
# a complete Kazakh–Russian draft, the agreement frozen, signed by all three
# and sealed. `people` opens a recorded browser context per user.
dev_pki, draft_factory, frozen, sealed_agreement = (
    agreement_fixtures.dev_pki,
    agreement_fixtures.draft_factory,
    agreement_fixtures.frozen,
    agreement_fixtures.sealed_agreement,
)
people = agreement_e2e.people

COURT_CASE_NUMBER = "2-321/2026"
PORTAL_SHOT = "/tmp/e2e-court-portal-filing.png"


def en(text) -> str:
    """The platform's English wording of a (lazy) text."""
    with translation.override("en"):
        return str(text)


QUEUED, DELIVERED, RECEIVED, APPROVED = (
    en(FilingStatus.QUEUED.label),
    en(FilingStatus.DELIVERED.label),
    en(FilingStatus.RECEIVED.label),
    en(FilingStatus.APPROVED.label),
)


@pytest.fixture
def run_jobs(run_jobs, monkeypatch):
    """The real worker (tests.conftest.run_jobs), off Playwright's loop, as
    tests.e2e.test_browser_agreement's `jobs`: sealing (in `sealed_agreement`,
    set up after the browser) settles the case, which closes its rooms and
    tells their sockets through async_to_sync, refused in this thread. In a
    thread of its own the worker may not install its signal handlers."""
    worker = "django_tasks_db.management.commands.db_worker.Worker"
    monkeypatch.setattr(f"{worker}.configure_signals", lambda self: None)
    monkeypatch.setattr(f"{worker}.reset_signals", lambda self: None)
    return lambda: off_the_loop(run_jobs)


@pytest.fixture
def court_case(active_case, court, party_a, sealed_agreement):
    """The sealed agreement's case is linked to a case of the court; its
    claimant reads the platform in English."""
    Case.objects.filter(pk=active_case.pk).update(court=court, court_case_number=COURT_CASE_NUMBER)
    english(party_a)
    active_case.refresh_from_db()
    return active_case


def agreement_url(live_server, case) -> str:
    return live_server.url + reverse("agreements:agreement", args=[case.public_id])


def portal_url(live_server, *args) -> str:
    name = "agreements:court_filing" if args else "agreements:court_filings"
    return live_server.url + reverse(name, args=args)


def history(section) -> list[str]:
    """The statuses of a filing's history on the agreement page, in order."""
    return [item.split(" · ", 1)[1] for item in section.locator("ol li").all_inner_texts()]


def test_when_a_party_files_the_sealed_agreement_then_the_court_verifies_downloads_and_approves_it_in_the_portal(
    court_case, sealed_agreement, party_a, court_user, court, live_server, people, run_jobs, outbox,
    tmp_path,
):
    case = court_case
    party_a = User.objects.get(pk=party_a.pk)
    urls = {"agreement": agreement_url(live_server, case), "portal": portal_url(live_server)}

    # The claimant: "File with the court", the password again, and it is filed.
    claimant = people(party_a)
    page = claimant.page
    page.goto(urls["agreement"])
    section = page.locator("#filing")
    expect(section.get_by_role("heading", level=2)).to_have_text(f"Filing with {court.name}")
    expect(section).to_contain_text("Not filed yet.")
    expect(page.get_by_label("Court case number")).to_have_value(COURT_CASE_NUMBER)
    page.get_by_role("button", name="File with the court").click()
    # allauth keeps the POST while it asks for the password and replays it
    # after: the party lands on the agreement page, filed, without pressing again.
    assert reauthenticate_if_asked(page, urls["agreement"]), "filing did not ask for the password"
    expect(messages_of(page)).to_contain_text(f"The agreement is filed with {court.name}.")
    filing = Filing.objects.get(agreement=sealed_agreement)
    assert (
        filing.status, filing.court_id, filing.court_case_number, filing.filed_by_id, filing.channel
    ) == (FilingStatus.QUEUED, court.pk, COURT_CASE_NUMBER, party_a.pk, "portal")
    expect(page.locator("#filing-status-1")).to_have_text(QUEUED)
    expect(section).to_contain_text(f"court case {COURT_CASE_NUMBER}, filed")
    # One open filing at a time: the form is gone.
    expect(page.get_by_role("button", name=re.compile("^File"))).to_have_count(0)

    # The queue delivers it to the portal.
    run_jobs()
    filing.refresh_from_db()
    assert filing.status == FilingStatus.DELIVERED
    assert filing.delivery.state == DeliveryState.DELIVERED
    page.reload()
    expect(page.locator("#filing-status-1")).to_have_text(DELIVERED)
    assert history(section) == [QUEUED, DELIVERED]

    # The court's clerk finds it in the portal.
    clerk = people(court_user)
    portal = clerk.page
    portal.goto(urls["portal"])
    expect(portal.get_by_role("heading", level=1)).to_have_text(f"Filings to {court.name}")
    filters, rows = portal.locator("#filters"), portal.locator("#filings tbody tr")

    def search(status_label: str, number: str):
        filters.get_by_label("Status").select_option(label=status_label)
        filters.get_by_label("Case number").fill(number)
        filters.get_by_role("button", name="Search").click()

    # A status it does not have, a number it does not have: nothing.
    search(RECEIVED, COURT_CASE_NUMBER)
    expect(portal).to_have_url(re.compile(r"[?&]status=received(&|$)"))
    expect(rows).to_have_text(["No filings match."])
    search(DELIVERED, "2-999/2026")
    expect(rows).to_have_text(["No filings match."])
    # Its status and its number: the filing.
    search(DELIVERED, COURT_CASE_NUMBER)
    expect(portal).to_have_url(re.compile(r"[?&]status=delivered(&|$)"))
    expect(filters.get_by_label("Status")).to_have_value("delivered")
    expect(filters.get_by_label("Case number")).to_have_value(COURT_CASE_NUMBER)
    expect(rows).to_have_count(1)
    expect(rows.locator("td")).to_have_text(
        [COURT_CASE_NUMBER, case.reference, re.compile(r"\S"), DELIVERED]
    )
    rows.get_by_role("link", name=COURT_CASE_NUMBER).click()

    filing_url = portal_url(live_server, filing.public_id)
    expect(portal).to_have_url(filing_url)
    expect(portal.get_by_role("heading", level=1)).to_have_text(
        f"Mediation agreement in court case {COURT_CASE_NUMBER}"
    )
    expect(portal.locator("#filing-status")).to_have_text(DELIVERED)
    card = portal.locator("dl.card")
    expect(card).to_contain_text(case.reference)
    expect(card).to_contain_text(sealed_agreement.verification_code)
    expect(card.locator(".fingerprint")).to_have_text(sealed_agreement.sealed_sha256)
    verification = portal.locator(
        "section.card", has=portal.get_by_role("heading", name="Verification")
    )
    expect(verification.locator(".verdict")).to_have_text(
        "Valid: this is the agreement the platform sealed, and it is unchanged."
    )
    signers = verification.locator("tbody tr")
    expect(signers.locator("td:nth-child(1)")).to_have_text(
        ["Aliya Claimant", "Bolat Respondent", "Marat Mediator"]
    )
    expect(signers.locator("td:nth-child(4)")).to_have_text(
        [en(SignatureMethod.EMAIL_CODE.label), en(SignatureMethod.EMAIL_CODE.label),
         en(SignatureMethod.TOTP.label)]
    )
    portal.screenshot(path=PORTAL_SHOT, full_page=True)

    # The sealed PDF, as the platform sealed it.
    with portal.expect_download() as download_info:
        portal.get_by_role("link", name="Download the sealed agreement (PDF)").click()
    download = download_info.value
    assert download.suggested_filename == f"mediation-agreement-{case.reference}.pdf"
    downloaded = tmp_path / download.suggested_filename
    download.save_as(downloaded)
    data = downloaded.read_bytes()
    assert data.startswith(b"%PDF")
    assert data == issuing.sealed_pdf(sealed_agreement)

    # The clerk answers: received, then approved.
    answer = portal.locator("#answer")
    for status in (RECEIVED, APPROVED):
        answer.get_by_label("New status").select_option(label=status)
        answer.get_by_role("button", name="Record the answer").click()
        expect(portal).to_have_url(filing_url)
        expect(messages_of(portal)).to_contain_text(f"The filing is now “{status}”.")
        expect(portal.locator("#filing-status")).to_have_text(status)
    events = portal.locator("main > ol li")
    expect(events).to_have_count(4)
    expect(events.nth(2)).to_contain_text(f"{RECEIVED} · Court portal ({court_user.display_name})")
    expect(events.nth(3)).to_contain_text(f"{APPROVED} · Court portal ({court_user.display_name})")
    filing.refresh_from_db()
    assert filing.status == FilingStatus.APPROVED
    assert [(e.status, e.source, e.actor_id) for e in filing.events.all()] == [
        (FilingStatus.QUEUED, "participant", party_a.pk),
        (FilingStatus.DELIVERED, "system", None),
        (FilingStatus.RECEIVED, "portal", court_user.pk),
        (FilingStatus.APPROVED, "portal", court_user.pk),
    ]

    # The claimant sees the court's answer, and its history…
    page.reload()
    expect(page.locator("#filing-status-1")).to_have_text(APPROVED)
    assert history(section) == [QUEUED, DELIVERED, RECEIVED, APPROVED]
    expect(page.get_by_role("button", name=re.compile("^File"))).to_have_count(0)

    # …and by email.
    run_jobs()
    subjects = [m.subject for m in mail.outbox if party_a.email in m.to]
    assert f"Case {case.reference}: the filing is now “{APPROVED}”" in subjects, subjects

    stayed_on_the_site([claimant, clerk], live_server)


def test_when_a_clerk_of_another_court_opens_the_filing_then_404_and_their_list_does_not_show_it(
    court_case, sealed_agreement, party_a, court_user, court, user_factory, live_server, people,
    run_jobs, origin,
):
    filing = filing_services.filing_submit(agreement=sealed_agreement, user=party_a, origin=origin)
    run_jobs()
    filing.refresh_from_db()
    assert filing.status == FilingStatus.DELIVERED
    filing_url = portal_url(live_server, filing.public_id)
    pdf_url = live_server.url + reverse("agreements:court_filing_pdf", args=[filing.public_id])

    elsewhere = Court.objects.create(
        code="almaty-civil", name="Almaty City Civil Court", region=Region.ALMATY_CITY
    )
    other_clerk = enable_totp(user_factory("clerk@almaty-court.kz"))
    CourtUser.objects.create(user=other_clerk, court=elsewhere)
    other_clerk = User.objects.get(pk=other_clerk.pk)

    # The filing's own court sees it (so the refusal below is about the court).
    own = people(court_user)
    assert own.page.goto(filing_url).status == 200
    expect(own.page.locator("#filing-status")).to_have_text(DELIVERED)

    other = people(other_clerk)
    stranger = other.page
    stranger.goto(portal_url(live_server))
    expect(stranger.get_by_role("heading", level=1)).to_have_text(f"Filings to {elsewhere.name}")
    expect(stranger.locator("#filings tbody tr")).to_have_text(["No filings match."])
    expect(stranger.locator(f"a[href*='{filing.public_id}']")).to_have_count(0)
    # Searching for it by its number finds nothing either.
    stranger.locator("#filters").get_by_label("Case number").fill(COURT_CASE_NUMBER)
    stranger.locator("#filters").get_by_role("button", name="Search").click()
    expect(stranger.locator("#filings tbody tr")).to_have_text(["No filings match."])

    # The filing and its PDF by their addresses: not found, and nothing of the case shown.
    for url in (filing_url, pdf_url):
        assert stranger.goto(url).status == 404, url
        expect(stranger.locator("body")).not_to_contain_text(court_case.reference)
        expect(stranger.locator("body")).not_to_contain_text(COURT_CASE_NUMBER)
    # Chromium reports each 404 document on the console: those two, and only
    # those, are what the test asked for.
    not_found = "Failed to load resource: the server responded with a status of 404 (Not Found)"
    for url in (filing_url, pdf_url):
        problem = f"{other_clerk.display_name}: console error: {not_found} ({url})"
        assert problem in other.problems, other.problems
        other.problems.remove(problem)

    stayed_on_the_site([own, other], live_server)
