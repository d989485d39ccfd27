"""The room in real browsers: a mediator and the parties, each in a browser
context of their own, talking through a real Daphne process (WebSockets).

The lobby, chat both ways, a caucus the other party cannot see, a message
body that looks like HTML, a dropped connection that delivers the message
typed while offline exactly once, and the room on a phone.
"""

import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pytest
from django.db import connection as db_connection
from playwright.sync_api import expect

from odr.models import Language, User
from sessions.models import EventKind, Participant, Room, RoomEvent, RoomKind
from sessions.services import rooms
from tests.asgi_server import DaphneProcess, free_port, server_env, session_cookie
from tests.e2e.conftest import DEFAULT_TIMEOUT_MS
from tests.sealed import messages_of, opened

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
XSS = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>'
# What the browser says when a socket cannot reach a server that is down on
# purpose (the dropped-connection test): expected there, a failure anywhere else.
SOCKET_REFUSED = r"^WebSocket connection to 'ws://127\.0\.0\.1:\d+/ws/rooms/[0-9a-f-]{36}/' failed"
# The client's backoff starts at 0.25-0.5 s and doubles; a few attempts fit in this.
RECONNECT_MS = 12_000
# How long a message that must not arrive is given to arrive anyway.
QUIET_MS = 1_500
LOBBY_SHOT = "/tmp/e2e-room-lobby.png"
PHONE_SHOT = "/tmp/e2e-room-phone.png"


# --- Servers -------------------------------------------------------------------------


class Server:
    """One Daphne process on a fixed port that can be stopped and started
    again on the same port (same database, channel layer and cache prefix),
    so that the browsers' sockets drop and their reconnects reach it again."""

    def __init__(self, tmp_path):
        self.tmp_path = tmp_path
        self.env = server_env()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.starts = 0
        self.process = None
        self.start()

    def start(self):
        self.starts += 1
        self.process = DaphneProcess(
            self.port, self.env, self.tmp_path / f"daphne-{self.starts}.log"
        )

    def stop(self):
        """SIGKILL, as in a crash: no close frame reaches the browsers."""
        self.process.kill()
        self.process.stop()


@pytest.fixture
def server(tmp_path):
    server = Server(tmp_path)
    yield server
    server.stop()


# --- People in browsers -----------------------------------------------------------------


@dataclass
class Person:
    user: User
    page: object
    problems: list = field(default_factory=list)
    allowed: list = field(default_factory=list)  # console errors expected by the test

    def allow(self, pattern: str):
        self.allowed.append(re.compile(pattern))

    def open(self, room: Room, server: Server):
        self.page.goto(f"{server.url}/rooms/{room.public_id}/")
        expect(self.connection).to_have_text("Connected", timeout=DEFAULT_TIMEOUT_MS)

    @property
    def log(self):
        return self.page.locator("#log")

    @property
    def connection(self):
        return self.page.locator("#connection")

    def messages(self, text: str):
        return self.page.locator("#log li.msg", has=self.page.locator("p.body", has_text=text))

    def say(self, text: str):
        body = self.page.locator("#body")
        body.fill(text)
        body.press("Enter")


@pytest.fixture
def people(browser, server):
    """Opens a browser context per user, signed in on the server. A script
    error or a console error fails the test, as with the `page` fixture."""
    contexts, persons = [], []

    def open_as(user, viewport=DESKTOP):
        context = browser.new_context(locale="en-US", viewport=viewport)
        context.set_default_timeout(DEFAULT_TIMEOUT_MS)
        context.add_cookies(
            [{"name": "sessionid", "value": session_cookie(user), "url": server.url}]
        )
        contexts.append(context)
        person = Person(user, context.new_page())

        def on_console(msg):
            url = msg.location.get("url", "")
            if msg.type != "error" or url.endswith("/favicon.ico"):
                return
            if any(pattern.search(msg.text) for pattern in person.allowed):
                return
            person.problems.append(f"{user.display_name}: console error: {msg.text} ({url})")

        person.page.on("console", on_console)
        person.page.on(
            "pageerror",
            lambda error: person.problems.append(f"{user.display_name}: script error: {error}"),
        )
        persons.append(person)
        return person

    yield open_as
    for context in contexts:
        context.close()
    problems = [p for person in persons for p in person.problems]
    if problems:
        pytest.fail("The browsers reported problems:\n" + "\n".join(problems))


# --- The case ----------------------------------------------------------------------------


@dataclass
class Setting:
    case: object
    joint: Room
    mediator: User
    party_a: User
    party_b: User

    def participant(self, user: User) -> Participant:
        return Participant.objects.get(case=self.case, user=user)


def english(user: User) -> User:
    """The platform's own English wording: a user's language wins over the browser's."""
    User.objects.filter(pk=user.pk).update(preferred_language=Language.ENGLISH)
    return User.objects.get(pk=user.pk)


@pytest.fixture
def setting(active_case, party_a, party_b, mediator) -> Setting:
    return Setting(
        case=active_case,
        joint=rooms.room_joint(active_case),
        mediator=english(mediator),
        party_a=english(party_a),
        party_b=english(party_b),
    )


def off_the_loop(function, *args, **kwargs):
    """Run a service in a thread of its own. Services queue channel-layer sends
    with `on_commit`, through async_to_sync, which refuses to run in this thread:
    Playwright's event loop is running here. The thread's database connection
    is closed when it is done."""

    def run():
        try:
            return function(*args, **kwargs)
        finally:
            db_connection.close()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(run).result()


@pytest.fixture
def in_session(setting) -> Setting:
    """The mediator has started the sitting (as the button would)."""
    off_the_loop(rooms.session_start, room=setting.joint, user=setting.mediator)
    return setting


def admit(mediator: Person, party: Person):
    """The party waits in the lobby until the mediator lets them in."""
    expect(party.page.locator("#lobby")).to_be_visible()
    waiting = mediator.page.locator("#waiting li", has_text=party.user.display_name)
    expect(waiting).to_contain_text("in the lobby")
    waiting.get_by_role("button", name="Admit").click()
    expect(party.page.locator("#lobby")).to_be_hidden()
    expect(party.page.locator("#room-body")).to_be_visible()
    expect(party.page.locator("#composer")).to_be_visible()


def no_script_ran(person: Person):
    assert person.page.evaluate("typeof window.__xss") == "undefined"
    expect(person.page.locator("#log img")).to_have_count(0)
    expect(person.page.locator("#log script")).to_have_count(0)


# --- The tests ---------------------------------------------------------------------------


def test_when_mediator_admits_party_from_lobby_then_they_chat_both_ways_and_html_is_text(
    setting, server, people
):
    mediator = people(setting.mediator)
    mediator.open(setting.joint, server)
    start = mediator.page.locator("#session-start")
    expect(start).to_have_text("Start the session")
    start.click()
    expect(
        mediator.log.locator("li.event", has_text="Marat Mediator (you) started the session")
    ).to_be_visible()
    expect(start, "“Start the session” is still shown once the session has started").to_be_hidden()

    party = people(setting.party_a)
    party.open(setting.joint, server)
    lobby = party.page.locator("#lobby")
    expect(lobby).to_be_visible()
    expect(lobby).to_contain_text("The mediator will let you in")
    party.page.screenshot(path=LOBBY_SHOT, full_page=True)
    # The lobby is a waiting room: no conversation, no composer until admitted.
    expect(
        party.page.locator("#room-body"), "the conversation is shown in the lobby"
    ).to_be_hidden()
    expect(party.log.locator("li")).to_have_count(0)

    admit(mediator, party)
    expect(mediator.page.locator("#waiting li", has_text="Aliya Claimant")).to_contain_text(
        "online"
    )
    expect(
        mediator.log.locator("li.event", has_text="Marat Mediator (you) admitted Aliya Claimant")
    ).to_be_visible()

    # Mediator → party.
    mediator.say("Good morning. Shall we start with the rent?")
    mine = mediator.messages("Good morning. Shall we start with the rent?")
    expect(mine).to_have_count(1)
    expect(mine).not_to_have_class(re.compile(r"\bpending\b"))
    theirs = party.messages("Good morning. Shall we start with the rent?")
    expect(theirs).to_have_count(1)
    expect(theirs.locator(".author")).to_have_text("Marat Mediator")
    expect(theirs.locator(".role")).to_have_text("Mediator")

    # Party → mediator.
    party.say("Yes, the rent first.")
    received = mediator.messages("Yes, the rent first.")
    expect(received).to_have_count(1)
    expect(received.locator(".author")).to_have_text("Aliya Claimant")
    expect(received.locator(".role")).to_have_text("Claimant")
    expect(party.messages("Yes, the rent first.").locator(".author")).to_have_text(
        "Aliya Claimant (you)"
    )

    # A body that looks like HTML is shown as the text it is, on both sides.
    party.say(XSS)
    for person in (party, mediator):
        shown = person.messages("window.__xss=2")
        expect(shown).to_have_count(1)
        expect(shown.locator("p.body")).to_have_text(XSS)
        no_script_ran(person)

    stored = opened(RoomEvent.objects.filter(room=setting.joint, kind=EventKind.MESSAGE).order_by("seq"))
    assert [(e.actor.user_id, e.text) for e in stored] == [
        (setting.mediator.pk, "Good morning. Shall we start with the rent?"),
        (setting.party_a.pk, "Yes, the rent first."),
        (setting.party_a.pk, XSS),
    ]


def test_when_mediator_opens_caucus_then_only_that_party_sees_what_is_said_there(
    in_session, server, people
):
    setting = in_session
    party_b_id = str(setting.participant(setting.party_b).public_id)
    mediator = people(setting.mediator)
    mediator.open(setting.joint, server)
    claimant = people(setting.party_a)
    claimant.open(setting.joint, server)
    admit(mediator, claimant)
    respondent = people(setting.party_b)
    respondent.open(setting.joint, server)
    admit(mediator, respondent)

    mediator.page.locator(f"button.caucus-open[data-party='{party_b_id}']").click()

    expect(mediator.page).to_have_url(re.compile(r"/rooms/[0-9a-f-]{36}/$"))
    expect(mediator.page).not_to_have_url(re.compile(str(setting.joint.public_id)))
    caucus = Room.objects.get(case=setting.case, kind=RoomKind.CAUCUS)
    assert caucus.party == setting.participant(setting.party_b)
    expect(mediator.page).to_have_url(f"{server.url}/rooms/{caucus.public_id}/")
    expect(mediator.page.get_by_role("heading", level=1)).to_contain_text(
        "Caucus with Bolat Respondent"
    )
    expect(mediator.connection).to_have_text("Connected")
    secret = "Between us: what is the least you would accept?"
    mediator.say(secret)
    expect(mediator.messages(secret)).to_have_count(1)
    expect(mediator.messages(secret)).not_to_have_class(re.compile(r"\bpending\b"))

    # The party of the caucus is told and can go in; the message is there.
    invite = respondent.page.locator("#notice")
    expect(invite).to_contain_text("The mediator opened a private caucus with you.")
    invite.get_by_role("link", name="Go to the caucus").click()
    expect(respondent.page).to_have_url(f"{server.url}/rooms/{caucus.public_id}/")
    expect(respondent.connection).to_have_text("Connected")
    heard = respondent.messages(secret)
    expect(heard).to_have_count(1)
    expect(heard.locator(".author")).to_have_text("Marat Mediator")

    # The other party, still in the joint room, hears nothing of it.
    claimant.page.wait_for_timeout(QUIET_MS)
    expect(claimant.page).to_have_url(f"{server.url}/rooms/{setting.joint.public_id}/")
    assert secret not in claimant.log.inner_text()
    expect(claimant.page.locator("#notice")).to_be_hidden()
    expect(claimant.page.locator("main")).not_to_contain_text(re.compile("caucus", re.IGNORECASE))
    assert [e.room_id for e in messages_of(setting.case) if e.text == secret] == [caucus.pk]
    # Nor can they open the caucus by its address.
    claimant.allow(r"status of 404 \(Not Found\)")
    response = claimant.page.goto(f"{server.url}/rooms/{caucus.public_id}/")
    assert response.status == 404
    expect(claimant.page.locator("#log")).to_have_count(0)
    assert secret not in claimant.page.content()


def test_when_connection_drops_then_message_typed_offline_is_delivered_once(
    in_session, server, people
):
    setting = in_session
    mediator = people(setting.mediator)
    mediator.open(setting.joint, server)
    party = people(setting.party_a)
    party.open(setting.joint, server)
    admit(mediator, party)
    party.say("Before the drop.")
    expect(mediator.messages("Before the drop.")).to_have_count(1)

    # Offline. Chromium's offline emulation refuses new connections but leaves
    # an open WebSocket alone, so the server goes down as well: the sockets drop.
    mediator.allow(SOCKET_REFUSED)
    party.allow(SOCKET_REFUSED)
    party.page.context.set_offline(True)
    server.stop()
    for person in (party, mediator):
        expect(person.connection).to_contain_text("Connection lost", timeout=RECONNECT_MS)

    text = "Typed while the connection was down."
    party.say(text)
    pending = party.log.locator("li.pending", has_text=text)
    expect(pending).to_have_count(1)
    expect(pending).to_contain_text("sending…")
    assert not [e for e in messages_of(setting.case) if e.text == text]

    # Back online: the client reconnects by itself and sends what was waiting.
    server.start()
    party.page.context.set_offline(False)
    for person in (party, mediator):
        expect(person.connection).to_have_text("Connected", timeout=RECONNECT_MS)
        expect(person.messages(text)).to_have_count(1, timeout=RECONNECT_MS)
    expect(party.log.locator("li.pending")).to_have_count(0)
    expect(party.messages(text).locator(".author")).to_have_text("Aliya Claimant (you)")
    expect(mediator.messages(text).locator(".author")).to_have_text("Aliya Claimant")
    # Still exactly once a moment later (no late duplicate from a second flush).
    party.page.wait_for_timeout(QUIET_MS)
    for person in (party, mediator):
        expect(person.messages(text)).to_have_count(1)
        expect(person.messages("Before the drop.")).to_have_count(1)
    assert len([e for e in messages_of(setting.case) if e.text == text and e.room_id == setting.joint.pk]) == 1

    # And the conversation goes on over the new sockets.
    mediator.say("Welcome back.")
    expect(party.messages("Welcome back.")).to_have_count(1)


def test_when_room_is_opened_on_a_phone_then_log_and_composer_are_usable(
    in_session, server, people
):
    setting = in_session
    mediator = people(setting.mediator)
    mediator.open(setting.joint, server)
    party = people(setting.party_a, viewport=PHONE)
    party.open(setting.joint, server)
    admit(mediator, party)
    mediator.say("Can you read this on your phone?")

    page = party.page
    expect(party.messages("Can you read this on your phone?")).to_be_visible()
    for selector in ("#log", "#body", "#composer button[type='submit']"):
        expect(page.locator(selector)).to_be_visible()
        box = page.locator(selector).bounding_box()
        assert box is not None and box["width"] > 0, selector
        assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"] + 0.5, (selector, box)
    # Nothing wider than the screen: no sideways scrolling.
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

    page.locator("#body").click()
    page.locator("#body").fill("Yes, perfectly.")
    page.get_by_role("button", name="Send").click()
    expect(mediator.messages("Yes, perfectly.")).to_have_count(1)
    expect(party.messages("Yes, perfectly.")).to_be_in_viewport()
    page.screenshot(path=PHONE_SHOT)
