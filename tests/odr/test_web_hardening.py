"""Web hardening (issue 4, §7).

* Every page carries a strict Content-Security-Policy (nothing inline, nothing
  from elsewhere), `X-Frame-Options: DENY`, `Referrer-Policy: no-referrer`,
  `X-Content-Type-Options: nosniff`; and no page has an inline script, style
  or event handler the policy would refuse (json_script data is allowed).
* Production: HSTS, secure and HttpOnly cookies, HTTPS only.
* A session ends after SESSION_IDLE_SECONDS of inactivity; activity renews it.
* CSRF under no-referrer: `Origin: null` passes only with the browser's
  `Sec-Fetch-Site: same-origin` and a valid token.
* What is said in a room reaches no log line (in process, every logger at
  DEBUG; and a real Daphne's whole output) and no URL.
"""

import asyncio
import datetime
import json
import logging
import re
import subprocess
import sys
import traceback
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import pytest
import time_machine
import websockets
from channels.db import database_sync_to_async
from django.conf import settings
from django.contrib.sessions.models import Session
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from agreements.services import drafts as agreements
from sessions.models import CaseStatus, EventKind, Participant, RoomEvent
from sessions.services import documents, intake, procedure, rooms
from tests.asgi_server import DAPHNE, ROOT, DaphneProcess, free_port, server_env, session_cookie
from tests.sealed import document_bytes, document_name, messages_of
from tests.sessions.room_fixtures import *

HTML_BODY = '</script><style>body{display:none}</style><script>alert(1)</script> "quoted"'
EVIL = "http://evil.example"

# --- The pages --------------------------------------------------------------------------------


@dataclass
class Site:
    """An active case in session (a message that looks like HTML, a caucus, a
    shared document, a draft agreement), a case whose undertaking is still to
    accept, and a closed case's room."""

    users: dict
    urls: dict = field(default_factory=dict)

    def client(self, who: str | None, **kwargs) -> Client:
        client = Client(**kwargs)
        if who is not None:
            client.force_login(self.users[who])
        return client


@pytest.fixture
def site(cast, admitted, admin_user, other_case, application_factory, origin) -> Site:
    case, joint_room = cast.case, admitted
    rooms.message_post(room=joint_room, user=cast.party_a, client_id=uuid.uuid4(), body=HTML_BODY)
    document = documents.document_share(
        room=joint_room,
        user=cast.mediator,
        upload=SimpleUploadedFile("fence-plan.txt", b"The fence plan.", "text/plain"),
        origin=origin,
    )
    caucus = rooms.caucus_open(room=joint_room, user=cast.mediator, party_id=cast.b.public_id)
    agreements.draft_save(
        case=case, user=cast.mediator, terms="The fence stays where it is.", origin=origin
    )
    pending = intake.case_file(
        claimant=cast.party_a,
        application=application_factory(cast.party_b, mediator=cast.mediator),
        origin=origin,
    )
    closed_joint = rooms.room_joint(other_case.case)
    procedure.case_close(
        case=other_case.case,
        user=other_case.mediator,
        outcome=CaseStatus.NOT_SETTLED,
        origin=origin,
    )
    users = {
        "party_a": cast.party_a,
        "party_b": cast.party_b,
        "mediator": cast.mediator,
        "admin": admin_user,
        "other_claimant": other_case.party_a,
    }
    urls = {
        "case": reverse("mediation:case_detail", args=[case.public_id]),
        "joint": reverse("mediation:room", args=[joint_room.public_id]),
        "caucus": reverse("mediation:room", args=[caucus.public_id]),
        "document": reverse(
            "mediation:room_document", args=[joint_room.public_id, document.public_id]
        ),
        "draft": reverse("agreements:draft", args=[case.public_id]),
        "agreement": reverse("agreements:agreement", args=[case.public_id]),
        "legal_hold": reverse("mediation:legal_hold", args=[case.public_id]),
        "undertaking": reverse("mediation:undertaking", args=[pending.public_id]),
        "closed_room": reverse("mediation:room", args=[closed_joint.public_id]),
        "contacts": reverse("mediation:contacts_sharing", args=[case.public_id]),
    }
    return Site(users, urls)


@dataclass(frozen=True)
class Page:
    who: str | None
    url: object  # a path, or a function of the site's urls
    status: int = 200
    html: bool = True

    def path(self, site: Site) -> str:
        return self.url(site.urls) if callable(self.url) else self.url


PAGES = {
    "home": Page(None, "/"),
    "login": Page(None, "/accounts/login/"),
    "signup": Page(None, "/accounts/signup/"),
    "dashboard": Page("party_a", "/dashboard/"),
    "application form": Page("party_a", "/cases/new/"),
    "profile": Page("party_a", "/profile/"),
    "case page, party": Page("party_a", lambda u: u["case"]),
    "case page, mediator": Page("mediator", lambda u: u["case"]),
    "undertaking to accept": Page("party_a", lambda u: u["undertaking"]),
    "joint room, party": Page("party_a", lambda u: u["joint"]),
    "joint room, mediator": Page("mediator", lambda u: u["joint"]),
    "caucus, party": Page("party_b", lambda u: u["caucus"]),
    "draft agreement, mediator": Page("mediator", lambda u: u["draft"]),
    "agreement, party": Page("party_a", lambda u: u["agreement"]),
    "legal hold, admin": Page("admin", lambda u: u["legal_hold"]),
    "room of a closed case": Page("other_claimant", lambda u: u["closed_room"]),
    "room of a guessed id": Page("party_a", f"/rooms/{uuid.UUID(int=7)}/", 404),
    "admin index": Page("admin", "/admin/"),
    "admin: cases": Page("admin", "/admin/mediation/case/"),
    "admin: new user form": Page("admin", "/admin/odr/user/add/"),
    "admin: audit log": Page("admin", "/admin/odr/auditevent/"),
    "document download": Page("mediator", lambda u: u["document"], html=False),
    "session keepalive": Page("party_a", "/session/keepalive", 204, html=False),
}
HTML_PAGES = [name for name, page in PAGES.items() if page.html]


def fetch(site: Site, name: str):
    page = PAGES[name]
    response = site.client(page.who).get(page.path(site))
    assert response.status_code == page.status, (
        name,
        response.status_code,
        response.get("Location"),
    )
    return response


def csp_directives(response) -> dict[str, list[str]]:
    assert "Content-Security-Policy" in response, "no enforced Content-Security-Policy header"
    directives = {}
    for part in response["Content-Security-Policy"].split(";"):
        name, *sources = part.split()
        assert name not in directives, f"{name} twice"
        directives[name] = sources
    return directives


# Every source any directive may list; data: only for images.
ALLOWED_SOURCES = {"'self'", "'none'"}
# The site's own WebSocket origin (from SITE_URL), named beside 'self' for
# browsers older than CSP 3; nothing else may be connected to.
SITE_WS_ORIGIN = settings.SITE_URL.replace("https://", "wss://", 1).replace("http://", "ws://", 1)
DIRECTIVES_REQUIRED = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "style-src": ["'self'"],
    "connect-src": ["'self'", SITE_WS_ORIGIN],
    "frame-ancestors": ["'none'"],
    "object-src": ["'none'"],
    "base-uri": ["'self'"],
    "form-action": ["'self'"],
}


@pytest.mark.parametrize("name", PAGES)
def test_when_page_is_served_then_csp_and_security_headers_are_strict(site, name):
    response = fetch(site, name)

    directives = csp_directives(response)
    for directive, sources in DIRECTIVES_REQUIRED.items():
        assert directives.get(directive) == sources, (
            directive,
            response["Content-Security-Policy"],
        )
    for directive, sources in directives.items():
        allowed = ALLOWED_SOURCES | ({"data:"} if directive == "img-src" else set())
        allowed |= {SITE_WS_ORIGIN} if directive == "connect-src" else set()
        assert set(sources) <= allowed, f"{directive} allows {set(sources) - allowed}"
    header = response["Content-Security-Policy"]
    for loophole in ("unsafe-inline", "unsafe-eval", "unsafe-hashes"):
        assert loophole not in header
    tokens = set(header.replace(";", " ").split())
    for scheme_or_wildcard in ("*", "http:", "https:", "ws:", "wss:"):  # whole schemes, not origins
        assert scheme_or_wildcard not in tokens
    assert "Content-Security-Policy-Report-Only" not in response
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "no-referrer"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"


@pytest.mark.parametrize("name", PAGES)
def test_when_page_is_served_then_no_browser_or_proxy_keeps_a_copy(site, name):
    """Rooms hold what was said, agreement pages the draft: none of it may be
    read back from a shared computer's cache or an intermediary's."""
    response = fetch(site, name)

    directives = {part.strip() for part in response["Cache-Control"].split(",")}
    assert {"no-store", "private"} <= directives, response["Cache-Control"]


# --- No inline script or style -------------------------------------------------------------------


def own(url: str) -> bool:
    """A path on this site (not `//host/…`, not `scheme:…`)."""
    return url.startswith("/") and not url.startswith("//")


class InlineFinder(HTMLParser):
    """What a `script-src 'self'; style-src 'self'` policy would refuse:
    inline scripts, <style> blocks, style= attributes, on…= handlers,
    javascript: URLs, and scripts or stylesheets from another site."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []
        self.scripts: list[str] = []  # src of every external script
        self.data_blocks: list[str] = []  # id of every <script type="application/json">
        self._script: str | None = None  # "external" / "data" while inside a <script>

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        for name, value in attrs:
            if name == "style":
                self.problems.append(f"style attribute on <{tag}>: {value!r}")
            if name.startswith("on"):
                self.problems.append(f"event handler {name}= on <{tag}>")
            if name in ("href", "src", "action", "formaction") and (
                value or ""
            ).strip().lower().startswith("javascript:"):
                self.problems.append(f"javascript: URL in <{tag} {name}>")
        if tag == "style":
            self.problems.append("<style> block")
        elif tag == "script":
            src = attributes.get("src")
            if src:
                self.scripts.append(src)
                if not own(src):
                    self.problems.append(f"script from elsewhere: {src}")
                self._script = "external"
            elif attributes.get("type") == "application/json":
                self.data_blocks.append(attributes.get("id", ""))
                self._script = "data"
            else:
                self.problems.append(f"inline <script {attributes}>")
                self._script = "inline"
        elif (
            tag == "link"
            and "stylesheet" in (attributes.get("rel") or "").split()
            and not own(attributes.get("href") or "")
        ):
            self.problems.append(f"stylesheet from elsewhere: {attributes.get('href')}")

    def handle_data(self, data):
        if self._script == "external" and data.strip():
            self.problems.append(f"code inside an external <script>: {data.strip()[:60]!r}")

    def handle_endtag(self, tag):
        if tag == "script":
            self._script = None


def inline_content(html: str) -> InlineFinder:
    finder = InlineFinder()
    finder.feed(html)
    finder.close()
    return finder


@pytest.mark.parametrize(
    "html, problem",
    [
        ("<p>ok</p><script>alert(1)</script>", "inline <script"),
        ('<script type="module">import x from "/static/x.js"</script>', "inline <script"),
        ("<style>p{color:red}</style>", "<style> block"),
        ('<p style="color:red">x</p>', "style attribute"),
        ('<button onclick="go()">x</button>', "event handler onclick="),
        ('<a href=" javascript:go()">x</a>', "javascript: URL"),
        ('<script src="https://cdn.example/x.js"></script>', "script from elsewhere"),
        ('<script src="/static/x.js">alert(1)</script>', "code inside an external"),
        ('<link rel="stylesheet" href="//cdn.example/x.css">', "stylesheet from elsewhere"),
    ],
)
def test_when_html_has_inline_code_then_the_checker_reports_it(html, problem):
    problems = inline_content(html).problems
    assert len(problems) == 1 and problem in problems[0], problems


def test_when_html_has_only_data_blocks_and_own_assets_then_the_checker_reports_nothing():
    found = inline_content(
        '<link rel="stylesheet" href="/static/a.css"><script src="/static/a.js" defer></script>'
        '<script id="cfg" type="application/json">{"a": "\\u003C/script\\u003E"}</script>'
    )
    assert found.problems == []
    assert found.scripts == ["/static/a.js"] and found.data_blocks == ["cfg"]


@pytest.mark.parametrize("name", HTML_PAGES)
def test_when_page_is_rendered_then_it_has_no_inline_script_style_or_handler(site, name):
    html = fetch(site, name).content.decode()

    found = inline_content(html)
    assert found.problems == []
    # The checker did read the page's scripts.
    if name.startswith("admin"):
        assert "/static/admin/js/theme.js" in found.scripts
    else:
        assert "/static/odr/site.js" in found.scripts
    if name.startswith(("joint room", "caucus")):
        assert found.data_blocks == ["room-config", "room-strings"]
        assert "/static/mediation/room.js" in found.scripts


def test_when_message_looks_like_html_then_the_room_page_carries_it_only_as_escaped_json(site):
    html = fetch(site, "joint room, party").content.decode()

    assert HTML_BODY not in html
    assert "<style>body{display:none}</style>" not in html
    assert "\\u003C/script\\u003E\\u003Cstyle\\u003E" in html
    assert inline_content(html).problems == []


# --- Production settings -------------------------------------------------------------------------

# Variables odr/settings.py reads that could change the outcome; the parent's
# values must not leak into the child.
_SETTINGS_VARS = {
    "DEBUG",
    "SECRET_KEY",
    "ALLOWED_HOSTS",
    "CSRF_TRUSTED_ORIGINS",
    "SITE_URL",
    "ODR_ENV_FILE",
    "ODR_MASTER_KEY",
    "ODR_DEMO_MODE",
    "EMAIL_URL",
    "SESSION_IDLE_SECONDS",
    "LOG_LEVEL",
    "DJANGO_SETTINGS_MODULE",
    "DJANGO_ALLOW_ASYNC_UNSAFE",
}
ONE_YEAR = 60 * 60 * 24 * 365
_PRODUCTION = {
    "DEBUG": "false",
    "SECRET_KEY": "production-" + "k3y-" * 16,
    "ALLOWED_HOSTS": "odr.example.kz",
    "ODR_MASTER_KEY": "A" * 43 + "=",
}
_PROBE = """
import json, django
django.setup()
from django.conf import settings as s
from django.test import Client
names = ("DEBUG", "SECURE_HSTS_SECONDS", "SECURE_HSTS_INCLUDE_SUBDOMAINS", "SECURE_SSL_REDIRECT",
         "SESSION_COOKIE_SECURE", "SESSION_COOKIE_HTTPONLY", "SESSION_COOKIE_SAMESITE", "CSRF_COOKIE_SECURE",
         "CSRF_COOKIE_HTTPONLY", "SESSION_COOKIE_AGE", "SESSION_SAVE_EVERY_REQUEST", "SESSION_EXPIRE_AT_BROWSER_CLOSE",
         "SECURE_REFERRER_POLICY", "X_FRAME_OPTIONS", "SECURE_CONTENT_TYPE_NOSNIFF", "CONTENT_SECURITY_POLICY")
out = {"settings": {n: getattr(s, n, None) for n in names}}
client = Client(HTTP_HOST="odr.example.kz")
https = client.get("/healthz", headers={"X-Forwarded-Proto": "https"})
plain = client.get("/accounts/login/")
out["https"] = {"status": https.status_code, "headers": dict(https.headers)}
out["http"] = {"status": plain.status_code, "location": plain.get("Location")}
print(json.dumps(out))
"""


def _settings_probe(**overrides) -> dict:
    import os

    env = {
        k: v
        for k, v in os.environ.items()
        if k not in _SETTINGS_VARS and not k.startswith("SECURE_")
    }
    env.update({"DJANGO_SETTINGS_MODULE": "odr.settings", **overrides})
    result = subprocess.run(
        [sys.executable, "-c", _PROBE],
        check=False,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_when_debug_is_off_then_cookies_are_secure_and_httponly_and_https_is_enforced():
    probe = _settings_probe(**_PRODUCTION)
    values = probe["settings"]

    assert values["DEBUG"] is False
    assert values["SESSION_COOKIE_SECURE"] is True
    assert values["SESSION_COOKIE_HTTPONLY"] is True
    assert values["CSRF_COOKIE_SECURE"] is True
    assert values["CSRF_COOKIE_HTTPONLY"] is True
    assert values["SESSION_COOKIE_SAMESITE"] in ("Lax", "Strict")
    assert values["SECURE_HSTS_SECONDS"] >= ONE_YEAR
    assert values["SECURE_HSTS_INCLUDE_SUBDOMAINS"] is True
    assert values["SECURE_REFERRER_POLICY"] == "no-referrer"
    assert values["X_FRAME_OPTIONS"] == "DENY"
    assert values["SECURE_CONTENT_TYPE_NOSNIFF"] is True
    directives = values["CONTENT_SECURITY_POLICY"]["DIRECTIVES"]
    for directive, sources in DIRECTIVES_REQUIRED.items():
        assert directives[directive] == sources, directive
    # A real response over HTTPS (behind the proxy) carries HSTS and the policy…
    https = probe["https"]
    assert https["status"] == 200
    hsts = https["headers"]["Strict-Transport-Security"]
    assert re.fullmatch(r"max-age=(\d+); includeSubDomains(; preload)?", hsts), hsts
    assert int(re.match(r"max-age=(\d+)", hsts).group(1)) >= ONE_YEAR
    assert "'unsafe-inline'" not in https["headers"]["Content-Security-Policy"]
    assert https["headers"]["Referrer-Policy"] == "no-referrer"
    # …and a plain-HTTP request is sent to HTTPS.
    assert probe["http"]["status"] == 301
    assert probe["http"]["location"] == "https://odr.example.kz/accounts/login/"


@pytest.mark.parametrize(
    "environment, idle_seconds",
    [
        ({}, 3600),
        ({"SESSION_IDLE_SECONDS": "900"}, 900),
        ({**_PRODUCTION}, 3600),
        ({**_PRODUCTION, "SESSION_IDLE_SECONDS": "1200"}, 1200),
    ],
    ids=["development default", "development 15 min", "production default", "production 20 min"],
)
def test_when_session_idle_seconds_is_set_then_sessions_last_that_long_renewed_by_every_request(
    environment, idle_seconds
):
    values = _settings_probe(**environment)["settings"]

    assert values["SESSION_COOKIE_AGE"] == idle_seconds
    assert values["SESSION_SAVE_EVERY_REQUEST"] is True
    assert values["SESSION_EXPIRE_AT_BROWSER_CLOSE"] is False


# --- Sessions that expire after inactivity -------------------------------------------------------

START = datetime.datetime(2026, 3, 2, 9, 0, tzinfo=datetime.UTC)


@pytest.mark.parametrize(
    "idle, signed_in",
    [(datetime.timedelta(seconds=-60), True), (datetime.timedelta(seconds=60), False)],
    ids=["a minute before the idle limit", "a minute after it"],
)
def test_when_session_is_left_idle_then_it_ends_at_the_idle_limit(
    active_case, party_a, settings, idle, signed_in
):
    case_page = reverse("mediation:case_detail", args=[active_case.public_id])
    age = datetime.timedelta(seconds=settings.SESSION_COOKIE_AGE)
    with time_machine.travel(START, tick=False) as clock:
        client = Client()
        client.force_login(party_a)
        assert client.get(case_page).status_code == 200

        clock.move_to(START + age + idle)
        response = client.get(case_page)
        keepalive = client.get("/session/keepalive")

    if signed_in:
        assert response.status_code == 200
        assert keepalive.status_code == 204
    else:
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("account_login"))
        assert keepalive.status_code == 401


@pytest.mark.parametrize("renew_with", ["page", "keepalive"])
def test_when_session_is_used_then_every_request_renews_it_well_past_the_idle_limit(
    active_case, party_a, settings, renew_with
):
    case_page = reverse("mediation:case_detail", args=[active_case.public_id])
    renew = case_page if renew_with == "page" else "/session/keepalive"
    age = settings.SESSION_COOKIE_AGE
    step = datetime.timedelta(seconds=age * 3 // 4)
    with time_machine.travel(START, tick=False) as clock:
        client = Client()
        client.force_login(party_a)
        for n in range(1, 6):  # 3¾ idle limits in all
            clock.move_to(START + n * step)
            response = client.get(renew)
            assert response.status_code in (200, 204), (n, response.status_code)
            cookie = response.cookies["sessionid"]
            assert int(cookie["max-age"]) == age
            assert cookie["httponly"]
            stored = Session.objects.get(session_key=cookie.value)
            assert stored.expire_date == timezone.now() + datetime.timedelta(seconds=age)
        assert client.get(case_page).status_code == 200


# --- CSRF under Referrer-Policy: no-referrer -----------------------------------------------------

SAME_ORIGIN = {"Sec-Fetch-Site": "same-origin"}


@pytest.mark.parametrize(
    "secure, headers, token, allowed",
    [
        (False, {"Origin": "null", **SAME_ORIGIN}, "page", True),
        (False, {"Origin": "null", "Sec-Fetch-Site": "cross-site"}, "page", False),
        (False, {"Origin": "null", "Sec-Fetch-Site": "same-site"}, "page", False),
        (False, {"Origin": "null", "Sec-Fetch-Site": "none"}, "page", False),
        (False, {"Origin": "null"}, "page", False),
        (False, {"Origin": EVIL, **SAME_ORIGIN}, "page", False),
        (False, {"Origin": "http://testserver"}, "page", True),
        (False, {"Origin": "null", **SAME_ORIGIN}, None, False),
        (False, {"Origin": "null", **SAME_ORIGIN}, "forged", False),
        (True, SAME_ORIGIN, "page", True),
        (True, {"Origin": "null", **SAME_ORIGIN}, "page", True),
        (True, {}, "page", False),
        (True, {"Sec-Fetch-Site": "cross-site"}, "page", False),
        (True, {"Referer": f"{EVIL}/form", **SAME_ORIGIN}, "page", False),
        (True, {"Origin": "https://evil.example", **SAME_ORIGIN}, "page", False),
        (True, {"Referer": "https://testserver/cases/", **SAME_ORIGIN}, "page", True),
    ],
    ids=[
        "http no-referrer same-origin form",
        "http origin null cross-site",
        "http origin null same-site",
        "http origin null typed by the user",
        "http origin null without fetch metadata",
        "http foreign origin claiming same-origin",
        "http own origin (browser sending Origin)",
        "http same-origin without token",
        "http same-origin with a forged token",
        "https no origin no referer same-origin",
        "https origin null same-origin",
        "https no origin no referer no fetch metadata",
        "https no referer cross-site",
        "https foreign referer claiming same-origin",
        "https foreign origin claiming same-origin",
        "https own referer",
    ],
)
def test_when_form_is_posted_then_csrf_accepts_only_same_origin_requests_with_a_token(
    active_case, party_a, secure, headers, token, allowed
):
    participant = Participant.objects.get(case=active_case, user=party_a)
    assert participant.shares_contacts is False
    client = Client(enforce_csrf_checks=True)
    client.force_login(party_a)
    page = client.get(reverse("mediation:case_detail", args=[active_case.public_id]), secure=secure)
    page_token = re.search(
        r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode()
    ).group(1)
    data = {"share": "1"}
    if token is not None:
        data["csrfmiddlewaretoken"] = page_token if token == "page" else "x" * len(page_token)

    response = client.post(
        reverse("mediation:contacts_sharing", args=[active_case.public_id]),
        data,
        secure=secure,
        headers=headers,
    )

    participant.refresh_from_db()
    if allowed:
        assert response.status_code == 302, response.content[:300]
        assert participant.shares_contacts is True
    else:
        assert response.status_code == 403
        assert participant.shares_contacts is False
        assert [t.name for t in response.templates][:2] == ["403_csrf.html", "base.html"]
        html = response.content.decode()
        assert "The form has expired" in html
        assert inline_content(html).problems == []
        assert csp_directives(response)["style-src"] == ["'self'"]


def test_when_csrf_refuses_a_signed_in_user_then_the_page_is_in_their_language(
    active_case, party_a
):
    party_a.preferred_language = "ru"
    party_a.save(update_fields=["preferred_language"])
    client = Client(enforce_csrf_checks=True)
    client.force_login(party_a)

    response = client.post(
        reverse("mediation:contacts_sharing", args=[active_case.public_id]),
        {"share": "1"},
        headers={"Origin": "null", "Sec-Fetch-Site": "cross-site", "Accept-Language": "en"},
    )

    assert response.status_code == 403
    assert '<html lang="ru">' in response.content.decode()


# --- Nothing said in a room reaches a log or a URL ----------------------------------------------


def _canary() -> str:
    return f"CANARY{uuid.uuid4().hex}"


@pytest.fixture
def every_log(caplog):
    """Every logger at DEBUG into caplog, the quiet ones (explicit levels)
    and the ones that do not propagate included. Returns a function that
    gives all that was logged: messages, arguments, tracebacks, extras."""
    root = logging.getLogger()
    loggers = [root] + [
        logger
        for logger in logging.root.manager.loggerDict.values()
        if isinstance(logger, logging.Logger)
    ]
    attached = []
    for logger in loggers:
        caplog.set_level(logging.DEBUG, logger=None if logger is root else logger.name)
        if not logger.propagate:
            logger.addHandler(caplog.handler)
            attached.append(logger)

    def everything() -> str:
        parts = [caplog.text]
        for record in caplog.records:
            parts.append(record.getMessage())
            parts.append(repr(record.args))
            if record.exc_info:
                parts.append("".join(traceback.format_exception(*record.exc_info)))
        return "\n".join(parts)

    everything.records = lambda: caplog.records
    yield everything
    for logger in attached:
        logger.removeHandler(caplog.handler)


@pytest.mark.django_db(transaction=True)
async def test_when_messages_pass_through_the_room_socket_then_no_body_reaches_any_log(
    cast, admitted, every_log, settings
):
    canary = _canary()
    too_long = canary + "x" * settings.ODR_MESSAGE_MAX_CHARS
    refused = [
        (json.dumps(send_frame(too_long)), "too_large"),
        (json.dumps(send_frame(canary + "y" * settings.ODR_WS_MAX_FRAME_BYTES)), "too_large"),
        ("{" + canary, "bad_request"),
        (json.dumps({"type": "message.send", "client_id": canary, "body": canary}), "bad_request"),
        (
            json.dumps({"type": "message.send", "client_id": str(uuid.uuid4()), "body": [canary]}),
            "bad_request",
        ),
        (json.dumps({"type": "typing", "active": canary}), "bad_request"),
        (json.dumps({"type": "mute", "participant": canary}), "bad_request"),
    ]

    async with enter_all(admitted, cast.mediator, cast.party_a, cast.party_b) as (m, a, b):
        await a.send(send_frame(f"{canary} said in the joint room"))
        await a.expect("ack")
        await a.wait_for(lambda f: f["type"] == "message")  # their own, as everyone hears it
        heard = await b.expect("message")
        assert heard["body"] == f"{canary} said in the joint room"
        await m.expect("message")
        for text, code in refused:
            await a.send_text(text)
            await a.expect_error(code)

    stored = await database_sync_to_async(lambda: [e.text for e in messages_of(cast.case)])()
    assert stored == [f"{canary} said in the joint room"]
    # A DEBUG line of the consumer's own logger would have been captured.
    logging.getLogger("sessions.consumers").debug("capture control")
    assert "capture control" in every_log()
    assert canary not in every_log()


@pytest.mark.django_db(transaction=True)
async def test_when_message_body_is_not_valid_unicode_then_it_is_refused_as_bad_input_and_not_logged(
    cast, admitted, every_log
):
    """JSON can carry a lone surrogate (\\ud800), which no UTF-8 text holds. That
    is the client's mistake, to refuse like any other invalid body; not an
    internal error logged with a traceback whose exception object (what an
    error tracker keeps) holds the whole message."""
    canary = _canary()
    async with enter_all(admitted, cast.party_a) as (a,):
        await a.send(send_frame(f"\ud800 {canary}"))
        refusal = await a.next()

    assert refusal["type"] == "error"
    assert refusal["code"] == "bad_request", refusal
    assert [r.getMessage() for r in every_log.records() if r.levelno >= logging.ERROR] == []
    assert canary not in repr([vars(record) for record in every_log.records()])


def test_when_document_is_uploaded_then_neither_its_name_nor_its_content_reaches_any_log_or_query(
    cast, admitted, every_log
):
    canary = _canary()
    client = Client()
    client.force_login(cast.party_a)
    upload_url = reverse("mediation:room_documents", args=[admitted.public_id])

    with CaptureQueriesContext(connection) as queries:
        shared = client.post(
            upload_url,
            {
                "file": SimpleUploadedFile(
                    f"{canary}-offer.txt",
                    f"{canary}: we offer 100 000 tenge".encode(),
                    "text/plain",
                )
            },
        )
        refused = client.post(
            upload_url,
            {
                "file": SimpleUploadedFile(
                    f"{canary}-tool.exe", b"MZ\x90\x00\x03" + canary.encode(), "text/plain"
                )
            },
        )

    assert shared.status_code == 201
    assert refused.status_code == 400
    document = RoomEvent.objects.get(room=admitted, kind=EventKind.DOCUMENT).document
    assert document_name(document) == f"{canary}-offer.txt"
    assert document_bytes(document).startswith(canary.encode())
    logged = every_log()
    assert f"Bad Request: {upload_url}" in logged  # the refusal was logged: the capture works
    assert any("INSERT" in q["sql"] and "roomdocument" in q["sql"] for q in queries)  # captured
    assert canary not in logged
    for query in queries:  # as text, or as the hex of a bytea parameter
        assert canary not in query["sql"] and canary.encode().hex() not in query["sql"], query[
            "sql"
        ][:200]


# A real Daphne, as production runs it, at its most talkative.


class TalkativeDaphne(DaphneProcess):
    """`daphne -v 2` (its own debug lines, and the access log on stdout) with
    the project's root logger at DEBUG; everything goes to one file."""

    def __init__(self, port: int, env: dict[str, str], log_path: Path):
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.ws_url = f"ws://127.0.0.1:{port}"
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed by stop()
        self.process = subprocess.Popen(
            [str(DAPHNE), "-v", "2", "-b", "127.0.0.1", "-p", str(port), "odr.asgi:application"],
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self._wait_until_listening()


async def _converse(server, room_id: str, cookies: dict, canary: str, max_chars: int) -> dict:
    """A and B in the joint room: A says something, B hears it; A also sends
    frames the server refuses, each carrying the canary."""

    async def socket(who):
        ws = await websockets.connect(
            f"{server.ws_url}/ws/rooms/{room_id}/",
            additional_headers={"Cookie": f"sessionid={cookies[who]}", "Origin": server.url},
            open_timeout=5,
        )
        await ws.send(json.dumps({"type": "resume", "after_seq": 0}))
        return ws

    async def until(ws, match):
        while True:
            frame = json.loads(await asyncio.wait_for(ws.recv(), 5))
            if match(frame):
                return frame

    a, b = await socket("a"), await socket("b")
    try:
        for ws in (a, b):
            await until(ws, lambda f: f["type"] == "welcome")
        body = f"{canary}: the least I would accept"
        await a.send(json.dumps(send_frame(body)))
        ack = await until(a, lambda f: f["type"] in ("ack", "error"))
        heard = await until(b, lambda f: f["type"] == "message" and f.get("body") == body)
        errors = []
        for text in ("{" + canary, json.dumps(send_frame(canary * (max_chars // len(canary) + 1)))):
            await a.send(text)
            errors.append(await until(a, lambda f: f["type"] == "error"))
        return {"ack": ack, "heard": heard, "errors": errors}
    finally:
        await a.close()
        await b.close()


def _http(url: str, *, cookie: str, data: bytes | None = None, headers: dict | None = None):
    request = urllib.request.Request(url, data=data, headers={"Cookie": cookie, **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def _upload_over_http(
    server, room_url: str, upload_url: str, session: str, name: str, content: bytes
) -> int:
    """As the room page's script does: the page's CSRF token, multipart POST."""
    status, headers, html = _http(server.url + room_url, cookie=f"sessionid={session}")
    assert status == 200, status
    token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1).decode()
    csrf_cookie = re.search(r"csrftoken=([^;]+)", headers.get("Set-Cookie", "")).group(1)
    boundary = uuid.uuid4().hex
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
            "Content-Type: text/plain\r\n\r\n"
        ).encode()
        + content
        + f"\r\n--{boundary}--\r\n".encode()
    )
    status, _headers, _body = _http(
        server.url + upload_url,
        cookie=f"sessionid={session}; csrftoken={csrf_cookie}",
        data=body,
        headers={
            "Content-Type": f"multipart/form-data; boundary={boundary}",
            "X-CSRFToken": token,
            "Origin": "null",
            "Sec-Fetch-Site": "same-origin",
        },
    )
    return status


ACCESS_LINE = re.compile(r'"(GET|POST|HEAD|WSCONNECTING|WSCONNECT|WSDISCONNECT|WSREJECT) ([^" ]*)"')


@pytest.mark.django_db(transaction=True)
def test_when_a_conversation_goes_through_a_real_daphne_then_no_log_line_and_no_url_holds_what_was_said(
    cast, admitted, tmp_path, settings
):
    canary = _canary()
    room_id = str(admitted.public_id)
    room_url = reverse("mediation:room", args=[room_id])
    upload_url = reverse("mediation:room_documents", args=[room_id])
    cookies = {"a": session_cookie(cast.party_a), "b": session_cookie(cast.party_b)}
    server = TalkativeDaphne(free_port(), server_env(LOG_LEVEL="DEBUG"), tmp_path / "daphne.log")
    try:
        talk = asyncio.run(
            _converse(server, room_id, cookies, canary, settings.ODR_MESSAGE_MAX_CHARS)
        )
        upload = _upload_over_http(
            server,
            room_url,
            upload_url,
            cookies["a"],
            f"{canary}.txt",
            f"{canary} in a file".encode(),
        )
    finally:
        server.stop()
    log = server.log()

    # It all happened, through that process…
    assert talk["ack"]["type"] == "ack", talk["ack"]
    assert [e["code"] for e in talk["errors"]] == ["bad_request", "too_large"]
    assert upload == 201
    assert [e.text for e in messages_of(cast.case)] == [f"{canary}: the least I would accept"]
    # …the process logged at length (access log, Daphne's and Django's debug lines)…
    requests = ACCESS_LINE.findall(log)
    assert ("WSCONNECT", f"/ws/rooms/{room_id}/") in requests
    assert ("GET", room_url) in requests and ("POST", upload_url) in requests
    assert "WebSocket incoming frame on" in log
    # …and nowhere said what was said, nor put it in a URL.
    assert canary not in log
    assert canary.lower() not in log.lower()
    for method, path in requests:
        assert "?" not in path, path
        if method.startswith("WS"):
            assert path == f"/ws/rooms/{room_id}/"
