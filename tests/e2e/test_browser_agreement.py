"""The mediation agreement in real browsers, against pytest-django's live server.

* The mediator writes the draft (Kazakh–Russian layout, every section) from
  the case page; a party reads version 1 and proposes new wording for a
  section; the mediator starts a revision from the proposal, saves version 2,
  compares the versions (<ins>/<del>) and freezes version 2.
* A party re-authenticates, reads the frozen document and its SHA-256, asks
  for a one-time code by email, is refused a wrong code, signs with the right
  one; the other party signs through the service, the mediator in the browser
  with the code of the authenticator app. Once the job queue has sealed it,
  the party downloads the sealed PDF, which verifies; the public /verify/
  page, logged out, judges the code, the file, a one-byte-changed copy and a
  text file.

Every browser context fails the test on a console or script error, and
records its requests and the page's CSP violations: none, and nothing leaves
the site.
"""

import hashlib
import re
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import pytest
from django.core import mail
from django.utils import translation
from playwright.sync_api import expect

from agreements.models import Agreement, AgreementStatus, Draft, SignatureMethod, SignerStatus
from agreements.services import documents, drafts, issuing, signing
from agreements.verification import verify_pdf
from odr.audit import Origin
from odr.models import User
from sessions.models import CaseStatus
from tests.agreements import conftest as agreement_fixtures
from tests.agreements.conftest import KK_TERMS, RU_TERMS, complete_fields, emailed_code, totp_code
from tests.asgi_server import session_cookie
from tests.conftest import PASSWORD
from tests.e2e.conftest import DEFAULT_TIMEOUT_MS
from tests.e2e.test_browser_confidentiality import Traffic, record
from tests.e2e.test_browser_room import english, off_the_loop

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

# The agreements' own fixtures: a development CA and seal of the test's own,
# a complete Kazakh–Russian draft, an agreement frozen for signing.
dev_pki, draft_factory, frozen = (
    agreement_fixtures.dev_pki,
    agreement_fixtures.draft_factory,
    agreement_fixtures.frozen,
)

DESKTOP = {"width": 1280, "height": 900}
DRAFT_SHOT = "/tmp/e2e-agreement-draft.png"
COMPARE_SHOT = "/tmp/e2e-agreement-compare.png"
SIGN_SHOT = "/tmp/e2e-agreement-sign.png"
VERIFY_SHOT = "/tmp/e2e-agreement-verify.png"

PROPOSED_RU = "Ответчик выплачивает истцу 500 000 тенге двумя платежами до 1 марта 2027 года."
KK_TERMS_V2 = (
    "Жауапкер талапкерге 2027 жылғы 1 наурызға дейін екі төлеммен 500 000 теңге төлейді. "
    "ә ғ қ ң ө ұ ү һ і"
)
PARTY_COMMENT = "I cannot pay it all by December: two payments, by March, please."


# --- People in browsers -----------------------------------------------------------------


@dataclass
class Person:
    user: User | None
    page: object
    traffic: Traffic | None = None
    problems: list = field(default_factory=list)


@pytest.fixture
def people(browser, live_server):
    """Opens a browser context per user, signed in on the live server (no
    user: a visitor who is not signed in). Each records its requests and the
    page's CSP violations (tests.e2e.test_browser_confidentiality.record); a
    script error or a console error fails the test, as with the `page` fixture."""
    contexts, persons = [], []

    def open_as(user: User | None = None) -> Person:
        context = browser.new_context(locale="en-US", viewport=DESKTOP)
        context.set_default_timeout(DEFAULT_TIMEOUT_MS)
        if user is not None:
            context.add_cookies(
                [{"name": "sessionid", "value": session_cookie(user), "url": live_server.url}]
            )
        contexts.append(context)
        person = Person(user, context.new_page())
        name = user.display_name if user is not None else "visitor"

        def on_console(msg):
            url = msg.location.get("url", "")
            if msg.type == "error" and not url.endswith("/favicon.ico"):
                person.problems.append(f"{name}: console error: {msg.text} ({url})")

        person.page.on("console", on_console)
        person.page.on(
            "pageerror", lambda error: person.problems.append(f"{name}: script error: {error}")
        )
        person.traffic = record(person)
        persons.append(person)
        return person

    yield open_as
    for context in contexts:
        context.close()
    problems = [p for person in persons for p in person.problems]
    if problems:
        pytest.fail("The browsers reported problems:\n" + "\n".join(problems))


def stayed_on_the_site(persons, live_server):
    """No CSP violation reported by any page, and every request to the site."""
    for person in persons:
        assert person.traffic.violations == [], person.traffic.violations
        outside = [
            url for url in person.traffic.urls()
            if f"{urlsplit(url).scheme}://{urlsplit(url).netloc}" != live_server.url
        ]
        assert outside == [], outside
        assert "/static/odr/site.css" in person.traffic.paths("GET")  # the whole page was seen


# --- The case ----------------------------------------------------------------------------


@dataclass
class Setting:
    case: object
    mediator: User
    party_a: User
    party_b: User
    urls: dict


@pytest.fixture
def setting(active_case, party_a, party_b, mediator, live_server, outbox) -> Setting:
    """An active case (Russian) whose members read the platform in English."""
    base = f"{live_server.url}/cases/{active_case.public_id}"
    return Setting(
        case=active_case,
        mediator=english(mediator),
        party_a=english(party_a),
        party_b=english(party_b),
        urls={
            "case": f"{base}/",
            "agreement": f"{base}/agreement/",
            "draft": f"{base}/agreement/draft/",
            "compare": f"{base}/agreement/compare/",
            "verify": f"{live_server.url}/verify/",
        },
    )


def en(text) -> str:
    """The platform's English wording of a (lazy) text: this thread's language
    is the site's default, Russian, and the people read English."""
    with translation.override("en"):
        return str(text)


def label(key: str) -> str:
    """The label the drafting form and the proposal form give a section."""
    with translation.override("en"):
        return str(drafts.section_label(key))


def messages_of(page):
    return page.locator(".messages")


def reauthenticate_if_asked(page, next_url: str) -> bool:
    """Signing asks for the password again unless the user has just given it
    (a session opened by force_login has not). True if it was asked."""
    page.wait_for_load_state()
    asked = "/accounts/reauthenticate/" in page.url
    if asked:
        page.locator("main input[name='password']").fill(PASSWORD)
        page.locator("main form:has(input[name='password']) button[type='submit']").click()
    expect(page).to_have_url(next_url)
    return asked


@pytest.fixture
def jobs(run_jobs, monkeypatch):
    """Runs the due jobs with the real worker (tests.conftest.run_jobs), off
    Playwright's loop: sealing settles the case, which closes its rooms and
    tells their sockets through async_to_sync, refused in this thread. In a
    thread of its own the worker may not install its signal handlers (only
    the main thread may); it has no use for them here."""
    worker = "django_tasks_db.management.commands.db_worker.Worker"
    monkeypatch.setattr(f"{worker}.configure_signals", lambda self: None)
    monkeypatch.setattr(f"{worker}.reset_signals", lambda self: None)
    return lambda: off_the_loop(run_jobs)


def without(locator, tag: str) -> str:
    """The text of an element with every `tag` inside it removed."""
    return locator.evaluate(
        "(el, tag) => { const c = el.cloneNode(true);"
        " c.querySelectorAll(tag).forEach((n) => n.remove()); return c.textContent; }",
        tag,
    )


def fresh_totp_code(page, user) -> str:
    """The authenticator's code, not about to roll over (allauth allows no drift)."""
    if time.time() % 30 > 26:
        page.wait_for_timeout((30 - time.time() % 30) * 1000 + 200)
    return totp_code(user)


# --- Drafting ----------------------------------------------------------------------------


def test_when_party_proposes_wording_then_mediator_revises_compares_and_freezes_version_2(
    setting, live_server, people
):
    case, urls = setting.case, setting.urls
    values = complete_fields("kk-ru")
    keys = drafts.section_keys("kk-ru")
    assert len(keys) == 10

    # The mediator goes from the case page to the agreement and writes version 1.
    mediator = people(setting.mediator)
    page = mediator.page
    page.goto(urls["case"])
    page.get_by_role("link", name="Mediation agreement").click()
    expect(page).to_have_url(urls["agreement"])
    expect(page.get_by_role("heading", level=1)).to_have_text("Mediation agreement")
    expect(page.locator("#draft")).to_contain_text("The mediator has not written a draft yet.")
    page.get_by_role("link", name="Write the draft").click()
    expect(page).to_have_url(urls["draft"])
    # The case is in Russian: the editor starts in Russian, one language a section.
    expect(page.locator("#layout-switch")).to_have_value("ru")
    expect(page.locator("#draft-form textarea")).to_have_count(5)

    page.locator("#layout-switch").select_option("kk-ru")
    page.get_by_role("button", name="Switch").click()

    expect(page).to_have_url(urls["draft"] + "?layout=kk-ru")
    expect(page.locator("#draft-form textarea")).to_have_count(10)
    # The template's own wording is there to start from.
    expect(page.get_by_label(label("kk.place"), exact=True)).to_have_value(
        "Онлайн, ODR платформасы"
    )
    expect(page.get_by_label(label("ru.terms"), exact=True)).to_have_value("")
    for key in keys:
        page.get_by_label(label(key), exact=True).fill(values[key])
    page.screenshot(path=DRAFT_SHOT, full_page=True)
    page.get_by_role("button", name="Save as a new version").click()

    expect(messages_of(page)).to_contain_text("The draft was saved as a new version.")
    expect(page.locator("main")).to_contain_text("Version 1 by Marat Mediator")
    first = Draft.objects.get(case=case)
    assert (first.version, first.layout, first.created_by_id) == (1, "kk-ru", setting.mediator.pk)
    assert drafts.draft_content(first) == values

    # The claimant reads version 1 and proposes new wording for the Russian terms.
    claimant = people(setting.party_a)
    party = claimant.page
    party.goto(urls["agreement"])
    draft_section = party.locator("#draft")
    expect(draft_section).to_contain_text("Version 1 by Marat Mediator")
    expect(draft_section).to_contain_text("(Kazakh and Russian, side by side)")
    expect(party.locator("#draft-text")).to_contain_text(KK_TERMS)
    expect(party.locator("#draft-text")).to_contain_text(RU_TERMS)
    expect(party.get_by_role("link", name="Revise the draft")).to_have_count(0)
    expect(party.locator("#freeze")).to_have_count(0)
    party.get_by_label("Your comment").fill(PARTY_COMMENT)
    party.locator("summary", has_text="Propose new wording for a section").click()
    party.get_by_label("Section", exact=True).select_option(label=label("ru.terms"))
    party.get_by_label("Proposed wording").fill(PROPOSED_RU)
    party.get_by_role("button", name="Send", exact=True).click()

    expect(messages_of(party)).to_contain_text("Your comment was added.")
    card = party.locator(".comment", has_text=PARTY_COMMENT)
    expect(card).to_contain_text(f"proposes new wording for “{label('ru.terms')}”")
    expect(card.locator("blockquote")).to_have_text(PROPOSED_RU)
    expect(card.get_by_role("link", name="Start a revision from this proposal")).to_have_count(0)

    # The mediator starts a revision from the proposal and saves version 2.
    page.goto(urls["agreement"])
    card = page.locator(".comment", has_text=PARTY_COMMENT)
    expect(card).to_contain_text("Aliya Claimant · Claimant")
    card.get_by_role("link", name="Start a revision from this proposal").click()
    expect(page).to_have_url(re.compile(re.escape(urls["draft"]) + r"\?proposal=[0-9a-f-]{36}$"))
    expect(page.get_by_label(label("ru.terms"), exact=True)).to_have_value(PROPOSED_RU)
    expect(page.get_by_label(label("kk.terms"), exact=True)).to_have_value(KK_TERMS)
    expect(page.get_by_label(label("ru.subject"), exact=True)).to_have_value(values["ru.subject"])
    page.get_by_label(label("kk.terms"), exact=True).fill(KK_TERMS_V2)
    page.get_by_role("button", name="Save as a new version").click()

    expect(messages_of(page)).to_contain_text("The draft was saved as a new version.")
    second = Draft.objects.get(case=case, version=2)
    assert drafts.draft_content(second) == {
        **values, "ru.terms": PROPOSED_RU, "kk.terms": KK_TERMS_V2
    }

    # Version 1 → version 2, word by word.
    page.get_by_role("link", name="Back to the agreement").click()
    expect(page.locator("#draft")).to_contain_text("Version 2 by Marat Mediator")
    page.get_by_role("link", name="Compare versions").click()
    expect(page).to_have_url(urls["compare"])
    expect(page.get_by_role("heading", level=1)).to_have_text("Version 1 → version 2")
    expect(page.locator("main")).to_contain_text("2 sections changed.")
    changed = page.locator("section.section.changed")
    expect(changed).to_have_count(2)
    expect(page.locator("section.section:not(.changed)")).to_have_count(8)
    expect(page.locator("section.section:not(.changed) .diff")).to_have_count(0)
    for key, old, new, gone, added in (
        ("ru.terms", RU_TERMS, PROPOSED_RU, "декабря", "двумя платежами"),
        ("kk.terms", KK_TERMS, KK_TERMS_V2, "желтоқсанға", "екі төлеммен"),
    ):
        section = changed.filter(has=page.get_by_role("heading", name=label(key)))
        expect(section).to_have_count(1)
        diff = section.locator(".diff")
        expect(diff.locator("del").filter(has_text=gone)).to_have_count(1)
        expect(diff.locator("ins").filter(has_text=added)).to_have_count(1)
        # Read without the deletions, it is the new wording; without the insertions, the old.
        assert without(diff, "del") == new
        assert without(diff, "ins") == old
        # Words both versions share are neither deleted nor inserted.
        assert "500 000" not in " ".join(diff.locator("del, ins").all_inner_texts())
    page.screenshot(path=COMPARE_SHOT, full_page=True)

    # Version 2 is frozen for signing.
    page.get_by_role("link", name="Back to the agreement").click()
    page.get_by_role("button", name="Freeze version 2 for signing").click()

    expect(messages_of(page)).to_contain_text(
        "The version is frozen. The parties and you can now sign it."
    )
    signing_section = page.locator("#signing")
    expect(signing_section.get_by_role("heading", level=2)).to_contain_text(
        "Version 2 is being signed"
    )
    expect(signing_section.locator("tr.signer-row td:first-child")).to_have_text(
        ["Aliya Claimant", "Bolat Respondent", "Marat Mediator"]
    )
    expect(signing_section.locator("tr.signer-row .status")).to_have_text(
        [en(SignerStatus.PENDING.label)] * 3
    )
    expect(page.get_by_role("link", name="Revise the draft")).to_have_count(0)
    agreement = Agreement.objects.get(case=case)
    assert (agreement.status, agreement.draft_id, agreement.layout) == (
        AgreementStatus.SIGNING, second.pk, "kk-ru"
    )
    expect(signing_section).to_contain_text(agreement.frozen_sha256)
    stayed_on_the_site([mediator, claimant], live_server)


# --- Signing, sealing, verification ----------------------------------------------------------


def test_when_everyone_signs_with_one_time_codes_then_the_sealed_pdf_downloads_and_verifies(
    frozen, setting, live_server, people, jobs, tmp_path
):
    case, urls = setting.case, setting.urls
    sign_url = f"{urls['agreement']}{frozen.public_id}/sign/"

    # The claimant: "Read and sign", the password again, the document and its fingerprint.
    claimant = people(setting.party_a)
    page = claimant.page
    page.goto(urls["agreement"])
    expect(page.locator("#signing")).to_contain_text(frozen.frozen_sha256)
    page.get_by_role("link", name="Read and sign").click()
    assert reauthenticate_if_asked(page, sign_url), "signing did not ask for the password again"
    expect(page.locator("main > h1")).to_have_text("Sign the mediation agreement")
    expect(page.locator("#document-sha256")).to_have_text(f"SHA-256: {frozen.frozen_sha256}")
    expect(page.locator("#document")).to_contain_text(KK_TERMS)
    expect(page.locator("#document")).to_contain_text(RU_TERMS)
    with translation.override("en"):
        expect(page.locator("#consent-statement")).to_have_text(signing.consent_statement())
    expect(page.get_by_label("One-time code from the email")).to_be_visible()
    page.screenshot(path=SIGN_SHOT, full_page=True)

    page.get_by_role("button", name="Email me a one-time code").click()
    expect(messages_of(page)).to_contain_text(
        f"A one-time code was sent to {setting.party_a.email}."
    )
    jobs()
    code = emailed_code(setting.party_a)
    wrong = f"{(int(code) + 1) % 10**6:06d}"

    def sign_with(typed: str):
        page.get_by_label("One-time code from the email").fill(typed)
        page.get_by_label("I confirm the statement above.").first.check()
        page.locator("#sign").click()

    sign_with(wrong)
    expect(page).to_have_url(sign_url)
    expect(messages_of(page)).to_have_text(
        re.compile(r"^\s*The code is wrong\. Tries left: 4\.\s*$")
    )
    assert frozen.signers.get(user=setting.party_a).status == SignerStatus.PENDING

    sign_with(code)
    expect(page).to_have_url(urls["agreement"])
    expect(messages_of(page)).to_contain_text("You signed the mediation agreement.")
    expect(page.locator("tr.signer-row", has_text="Aliya Claimant")).to_contain_text(
        en(SignatureMethod.EMAIL_CODE.label)
    )
    expect(page.get_by_role("link", name="Read and sign")).to_have_count(0)
    signed = frozen.signers.get(user=setting.party_a)
    assert (signed.status, signed.method, signed.document_sha256, signed.ip) == (
        SignerStatus.SIGNED, SignatureMethod.EMAIL_CODE, frozen.frozen_sha256, "127.0.0.1"
    )
    assert "Chrome" in signed.user_agent

    # The respondent signs through the service, with the code emailed to them.
    origin = Origin(ip="198.51.100.4", user_agent="pytest")
    signing.signing_code_send(agreement=frozen, user=setting.party_b, origin=origin)
    jobs()
    signing.agreement_sign(
        agreement=frozen, user=setting.party_b, document_sha256=frozen.frozen_sha256,
        consent=True, code=emailed_code(setting.party_b), origin=origin,
    )

    # The mediator signs last, in the browser, with the authenticator app's code.
    mediator = people(setting.mediator)
    own = mediator.page
    own.goto(urls["agreement"])
    own.get_by_role("link", name="Read and sign").click()
    assert reauthenticate_if_asked(own, sign_url), "signing did not ask for the password again"
    expect(own.get_by_role("button", name="Email me a one-time code")).to_have_count(0)
    own.get_by_label("Code from your authenticator app").fill(
        fresh_totp_code(own, setting.mediator)
    )
    own.get_by_label("I confirm the statement above.").first.check()
    own.locator("#sign").click()
    expect(own).to_have_url(urls["agreement"])
    expect(messages_of(own)).to_contain_text("You signed the mediation agreement.")
    expect(own.locator("#signing")).to_contain_text(
        "Everyone has signed. The platform is sealing the agreement"
    )
    frozen.refresh_from_db()
    assert frozen.status == AgreementStatus.SEALING

    # The queue seals it; the claimant downloads the sealed PDF.
    jobs()
    frozen.refresh_from_db()
    assert frozen.status == AgreementStatus.SEALED
    case.refresh_from_db()
    assert case.status == CaseStatus.SETTLED
    page.reload()
    sealed_section = page.locator("#sealed")
    expect(sealed_section).to_contain_text(f"Verification code: {frozen.verification_code}")
    expect(sealed_section).to_contain_text(f"SHA-256: {frozen.sealed_sha256}")
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download the sealed agreement (PDF)").click()
    download = download_info.value
    assert download.suggested_filename == f"mediation-agreement-{case.reference}.pdf"
    downloaded = tmp_path / download.suggested_filename
    download.save_as(downloaded)
    data = downloaded.read_bytes()
    assert hashlib.sha256(data).hexdigest() == frozen.sealed_sha256
    assert data == issuing.sealed_pdf(frozen)
    # pyHanko validates with an asyncio loop of its own: not in Playwright's thread.
    report = off_the_loop(verify_pdf, data)
    assert report.valid, report.reasons
    assert [s.field for s in report.signatures] == [
        "Signature1", "Signature2", "Signature3", "PlatformSeal"
    ]
    # Sealed emails went to all three.
    sealed_to = {to for m in mail.outbox if case.reference in m.subject for to in m.to}
    assert {setting.party_a.email, setting.party_b.email, setting.mediator.email} <= sealed_to

    # On /verify/, signed out: the code…
    visitor = people()
    check = visitor.page
    check.goto(urls["verify"])
    expect(check.get_by_role("heading", level=1)).to_have_text("Verify a mediation agreement")
    check.get_by_label("Verification code").fill(frozen.verification_code.lower())
    check.get_by_role("button", name="Check the code").click()
    result = check.locator("#result")
    expect(result.locator(".verdict")).to_have_text(
        "Valid: this is the agreement the platform sealed, and it is unchanged."
    )
    expect(result.locator("dd").first).to_have_text(case.reference)
    expect(result.locator("table").first.locator("tbody tr")).to_have_count(3)
    rows = result.locator("table").first.locator("tbody tr")
    expect(rows.locator("td:nth-child(1)")).to_have_text(
        ["Aliya Claimant", "Bolat Respondent", "Marat Mediator"]
    )
    expect(rows.locator("td:nth-child(4)")).to_have_text(
        [en(SignatureMethod.EMAIL_CODE.label), en(SignatureMethod.EMAIL_CODE.label),
         en(SignatureMethod.TOTP.label)]
    )
    expect(result).to_contain_text(frozen.sealed_sha256)
    # Nothing of the case's content is shown to the public.
    expect(check.locator("main")).not_to_contain_text("500 000")

    def upload(files):
        check.goto(urls["verify"])
        check.get_by_label("PDF file").set_input_files(files)
        check.get_by_role("button", name="Check the file").click()

    # …the downloaded file…
    upload(str(downloaded))
    expect(result.locator(".verdict")).to_have_text(
        "Valid: this is the agreement the platform sealed, and it is unchanged."
    )
    expect(result).to_contain_text(f"SHA-256 of the file checked: {frozen.sealed_sha256}")
    expect(result.locator("dd").first).to_have_text(case.reference)
    expect(result.locator("table").first.locator("tbody tr")).to_have_count(3)
    check.screenshot(path=VERIFY_SHOT, full_page=True)

    # …a copy with one byte changed in the signed document…
    tampered = bytearray(data)
    tampered[len(documents.frozen_pdf(frozen)) // 2] ^= 0x01
    upload({"name": "agreement.pdf", "mimeType": "application/pdf", "buffer": bytes(tampered)})
    expect(result.locator(".verdict")).to_have_text("Not valid.")
    reasons = result.locator("#reasons li")
    expect(
        reasons.filter(has_text="The document was changed after it was signed.")
    ).to_have_count(1)
    expect(
        reasons.filter(has_text="This file is not an agreement sealed by this platform")
    ).to_have_count(1)
    expect(result).not_to_contain_text(case.reference)

    # …and a text file.
    upload({"name": "agreement.txt", "mimeType": "text/plain", "buffer": b"The agreement.\n"})
    expect(messages_of(check)).to_contain_text("This is not a PDF file.")
    expect(result).to_have_count(0)

    stayed_on_the_site([claimant, mediator, visitor], live_server)
