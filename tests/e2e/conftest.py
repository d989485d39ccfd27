"""Browser tests: Debian's chromium driven by Playwright against pytest-django's live_server.

Never downloads a browser: the executable is /usr/bin/chromium.
"""

import copy
import os
import uuid
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
E2E_DIR = Path(__file__).parent
DEFAULT_TIMEOUT_MS = 15_000


def pytest_collection_modifyitems(config, items):
    """Every test under tests/e2e is an e2e test (select with -m e2e, skip with -m 'not e2e')."""
    for item in items:
        if E2E_DIR in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="package", autouse=True)
def _async_unsafe_allowed():
    """Playwright's sync API keeps an asyncio loop running in this thread while
    the browser is open, so Django's async-unsafe guard would refuse every ORM
    call the tests and fixtures make. Allow it for this package only: set at
    import time, the variable would stay set for the rest of the run, switch the
    guard off for every other test, and leak into subprocesses (the deployment
    check in tests/odr/test_settings_deploy.py then fails with async.E001)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        yield


@pytest.fixture(scope="package")
def browser(_async_unsafe_allowed):
    """One chromium for all the browser tests. Scoped to this package rather
    than the session, so that Playwright's loop is stopped (and the variable
    above restored) before the rest of the suite runs in the same process."""
    from playwright.sync_api import sync_playwright

    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is not installed: `make test` installs Debian's chromium", pytrace=False)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    """A fresh context (no cookies) per test; English browser, desktop size by default.

    A script error or a console error (a CSP refusal, a missing asset) fails
    the test at teardown. The browser's own request for /favicon.ico is let
    through: the site has no icon."""
    context = browser.new_context(locale="en-US", viewport={"width": 1280, "height": 900})
    context.set_default_timeout(DEFAULT_TIMEOUT_MS)
    page = context.new_page()
    problems = []

    def on_console(msg):
        url = msg.location.get("url", "")
        if msg.type == "error" and not url.endswith("/favicon.ico"):
            problems.append(f"console error: {msg.text} ({url})")

    page.on("console", on_console)
    page.on("pageerror", lambda error: problems.append(f"script error: {error}"))
    yield page
    context.close()
    if problems:
        pytest.fail("The browser reported problems:\n" + "\n".join(problems))


@pytest.fixture(autouse=True)
def _e2e_settings(settings):
    """allauth's login rate limits count in the default cache, per IP (always
    127.0.0.1 here) and per email. With Redis that cache outlives the run and is
    shared with any other run on the machine, so give each test its own key
    prefix instead of flushing a shared database.

    A fast password hasher: the fixtures create users and every test signs in,
    and the production hasher costs about half a second each time."""
    caches = copy.deepcopy(settings.CACHES)
    caches["default"]["KEY_PREFIX"] = f"e2e-{uuid.uuid4().hex}"
    settings.CACHES = caches
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
