"""Shared fixtures and helpers for the room WebSocket tests.

Sockets go through `odr.asgi.application`, the stack production runs
(AllowedHostsOriginValidator + AuthMiddlewareStack + URLRouter), logged in
with a real session cookie. Rooms are put in a known state through the real
services. Test modules import this with `from tests.sessions.room_fixtures import *`.
"""

import asyncio
import contextlib
import json
import uuid
from dataclasses import dataclass

import pytest
from channels.db import database_sync_to_async
from channels.layers import channel_layers
from channels.testing import WebsocketCommunicator

from odr.asgi import application
from odr.models import AuditEvent, User
from sessions.models import Admission, Case, Participant, Room, RoomEvent
from sessions.services import intake, mediators, rooms
from tests.asgi_server import session_cookie
from tests.case_fixtures import accept_all_invitations, accept_atm, accept_undertaking

__all__ = [
    "AMBIENT",
    "ARRIVES",
    "CLOSE",
    "SAME_SITE",
    "SILENCE",
    "Cast",
    "Socket",
    "admitted",
    "audit_actions",
    "cast",
    "connect",
    "db",
    "enter",
    "enter_all",
    "fresh_channel_layer",
    "joint",
    "login",
    "new_client_id",
    "other_case",
    "room_state",
    "send_frame",
    "sequenced",
    "session_open",
    "stored_events",
]

ARRIVES = 2.0  # seconds a frame that must arrive may take
SILENCE = 0.4  # seconds we listen to show that a frame does not arrive
AMBIENT = frozenset({"presence", "typing", "members"})  # unsequenced, arrive whenever
SAME_SITE = b"http://127.0.0.1"
CLOSE = "websocket.close"

db = database_sync_to_async


def new_client_id() -> str:
    return str(uuid.uuid4())


def send_frame(body, client_id: str | None = None) -> dict:
    """A `message.send` frame (a new client_id unless one is given)."""
    return {"type": "message.send", "client_id": client_id or new_client_id(), "body": body}


def sequenced(frame: dict) -> bool:
    return frame.get("type") in ("message", "event")


class Socket:
    """One browser tab's socket: send frames, read them, see it closed."""

    def __init__(
        self, room_id, *, session_key: str | None = None, origin: bytes | None = SAME_SITE
    ):
        path = room_id if str(room_id).startswith("/") else f"/ws/rooms/{room_id}/"
        headers = []
        if origin is not None:
            headers.append((b"origin", origin))
        if session_key is not None:
            headers.append((b"cookie", f"sessionid={session_key}".encode()))
        self.communicator = WebsocketCommunicator(application, path, headers=headers)
        self.received: list[dict] = []  # every frame, ambient ones included
        self.close_code: int | None = None
        self.last_seq = 0  # the highest seq of a room event received

    async def connect(self) -> tuple[bool, int | None]:
        return await self.communicator.connect(timeout=ARRIVES)

    async def send(self, frame: dict) -> None:
        await self.communicator.send_json_to(frame)

    async def send_text(self, text: str) -> None:
        await self.communicator.send_to(text_data=text)

    async def receive(self, timeout: float = ARRIVES) -> dict:
        """The next output: a JSON frame, or {"type": "websocket.close", "code": ...}."""
        message = await self.communicator.receive_output(timeout)
        if message["type"] == CLOSE:
            self.close_code = message.get("code")
            return {"type": CLOSE, "code": message.get("code")}
        assert message["type"] == "websocket.send", message
        frame = json.loads(message["text"])
        self.received.append(frame)
        if sequenced(frame):
            self.last_seq = max(self.last_seq, frame["seq"])
        return frame

    async def next(self, *, skip=AMBIENT, timeout: float = ARRIVES) -> dict:
        """The next frame whose type is not in `skip` (a close included)."""
        return await self.wait_for(
            lambda f: f["type"] not in skip or f["type"] == CLOSE, timeout=timeout
        )

    async def wait_for(self, match, *, timeout: float = ARRIVES) -> dict:
        """Read frames until one matches; the ones before are kept in `skipped`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        self.skipped: list[dict] = []
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0 or await self.communicator.receive_nothing(timeout=remaining):
                raise AssertionError(f"no matching frame within {timeout} s; got {self.skipped!r}")
            frame = await self.receive(ARRIVES)
            if match(frame):
                return frame
            if frame["type"] == CLOSE:
                raise AssertionError(
                    f"socket closed ({frame['code']}) while waiting; got {self.skipped!r}"
                )
            self.skipped.append(frame)

    async def expect(self, type_: str, *, timeout: float = ARRIVES, **fields) -> dict:
        """The next non-ambient frame is `type_` (with these field values)."""
        frame = await self.next(timeout=timeout)
        assert frame["type"] == type_, f"expected {type_}, got {frame!r}"
        for name, value in fields.items():
            assert frame.get(name) == value, f"{name}: expected {value!r} in {frame!r}"
        return frame

    async def expect_error(self, code: str, **fields) -> dict:
        frame = await self.expect("error", code=code, **fields)
        assert isinstance(frame["detail"], str) and frame["detail"], frame
        return frame

    async def closed(self, *, timeout: float = ARRIVES) -> int:
        """Read (and keep) frames until the server closes the socket; its code."""
        frame = await self.wait_for(lambda f: f["type"] == CLOSE, timeout=timeout)
        return frame["code"]

    async def listen(self, seconds: float = SILENCE) -> list[dict]:
        """Every frame arriving within `seconds` (the app keeps running)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        frames = []
        while (remaining := deadline - loop.time()) > 0:
            if not await self.communicator.receive_nothing(timeout=remaining):
                frames.append(await self.receive(ARRIVES))
        return frames

    async def assert_no_content(self, seconds: float = SILENCE) -> None:
        """Nothing but presence/typing/members frames within `seconds`."""
        content = [f for f in await self.listen(seconds) if f["type"] not in AMBIENT]
        assert content == [], content

    async def assert_silent(self, seconds: float = SILENCE) -> None:
        """Nothing at all within `seconds`."""
        assert await self.communicator.receive_nothing(timeout=seconds), await self.listen(0.05)

    async def resume(self, after_seq: int, until_seq: int) -> list[dict]:
        """`resume`, then the sequenced frames up to `until_seq`, in arrival order."""
        await self.send({"type": "resume", "after_seq": after_seq})
        return await self.read_sequenced(until_seq)

    async def read_sequenced(self, until_seq: int) -> list[dict]:
        frames = []
        while not frames or frames[-1]["seq"] < until_seq:
            frame = await self.next()
            assert sequenced(frame), f"expected a room event, got {frame!r} after {frames!r}"
            frames.append(frame)
        return frames

    async def settle(self, room) -> list[dict]:
        """Read the room events up to the room's last seq in the database."""
        last = await db(lambda: Room.objects.get(pk=room.pk).last_seq)()
        return await self.read_sequenced(last) if self.last_seq < last else []

    async def disconnect(self) -> None:
        # The consumer's own `disconnect` (room_leave) is done in milliseconds;
        # what now and then lingers is the Redis layer's cancelled receive
        # (a blocking BZPOPMIN in redis-py), so the app is not waited on longer.
        try:
            await self.communicator.disconnect(timeout=0.5)
        except asyncio.CancelledError:
            pass  # a receive already timed out and stopped the app; that failure is reported


async def login(user) -> str:
    return await db(session_cookie)(user)


@contextlib.asynccontextmanager
async def connect(user, room, *, origin: bytes | None = SAME_SITE):
    """A socket to `room` (a Room or a path/id) as `user` (None: anonymous);
    not checked: the caller asserts what happened. Always disconnected."""
    key = await login(user) if user is not None else None
    room_id = room.public_id if isinstance(room, Room) else room
    socket = Socket(room_id, session_key=key, origin=origin)
    socket.connected, socket.connect_code = await socket.connect()
    try:
        yield socket
    finally:
        await socket.disconnect()


@contextlib.asynccontextmanager
async def enter(user, room, *, resume: bool = True):
    """An accepted socket past its `welcome` (and the backlog when admitted
    and `resume`); the welcome frame is `socket.welcome`."""
    async with connect(user, room) as socket:
        assert socket.connected, socket.connect_code
        socket.welcome = await socket.expect("welcome")
        if resume and socket.welcome["you"]["admitted"]:
            last = await db(lambda: Room.objects.get(pk=room.pk).last_seq)()
            socket.backlog = await socket.resume(0, last) if last else []
            if not last:
                await socket.send({"type": "resume", "after_seq": 0})
        yield socket


@contextlib.asynccontextmanager
async def enter_all(room, *users):
    """`enter` for each user in turn, then every socket read up to the room's
    last event (the later arrivals' `joined` included)."""
    async with contextlib.AsyncExitStack() as stack:
        sockets = [await stack.enter_async_context(enter(user, room)) for user in users]
        for socket in sockets:
            await socket.settle(room)
        yield sockets


async def stored_events(room) -> list[tuple[int, str]]:
    return await db(
        lambda: list(RoomEvent.objects.filter(room=room).order_by("seq").values_list("seq", "kind"))
    )()


async def room_state(case) -> dict:
    """Everything moderation may change in a case, to prove nothing did."""

    def read():
        return {
            "rooms": list(
                case.rooms.order_by("pk").values_list("pk", "kind", "is_open", "locked", "last_seq")
            ),
            "admissions": list(
                Admission.objects.filter(room__case=case)
                .order_by("pk")
                .values_list("room_id", "participant_id", "status", "muted")
            ),
            "sittings": list(case.sittings.order_by("pk").values_list("pk", "ended_at")),
            "events": list(
                RoomEvent.objects.filter(room__case=case)
                .order_by("pk")
                .values_list("pk", "body_sealed", "redacted_at")
            ),
            "audit": AuditEvent.objects.count(),
        }

    return await db(read)()


async def audit_actions(case) -> list[tuple[str, dict]]:
    """The case's audit rows (action, details), oldest first."""
    return await db(
        lambda: list(
            AuditEvent.objects.filter(object_id=str(case.public_id))
            .order_by("id")
            .values_list("action", "details")
        )
    )()


@pytest.fixture(autouse=True)
def fresh_channel_layer():
    """A channel layer of the test's own: pytest-asyncio gives every test a new
    event loop, and the Redis layer's asyncio locks stay bound to the loop that
    first waited on them."""
    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


# --- A case with its people and rooms ------------------------------------------------------


@dataclass
class Cast:
    case: Case
    mediator: User
    party_a: User
    party_b: User
    m: Participant  # the mediator's participant row
    a: Participant
    b: Participant


@pytest.fixture
def cast(active_case, mediator, party_a, party_b) -> Cast:
    of = {p.user_id: p for p in active_case.participants.select_related("user")}
    return Cast(
        active_case, mediator, party_a, party_b, of[mediator.pk], of[party_a.pk], of[party_b.pk]
    )


@pytest.fixture
def joint(active_case) -> Room:
    return rooms.room_joint(active_case)


@pytest.fixture
def session_open(joint, mediator):
    """The mediator has started a session; nobody is admitted yet."""
    return rooms.session_start(room=joint, user=mediator)


@pytest.fixture
def admitted(session_open, joint, cast) -> Room:
    """Both parties are admitted to the joint room (seq 1..3 used)."""
    for party in (cast.a, cast.b):
        rooms.lobby_admit(room=joint, user=cast.mediator, participant_id=party.public_id)
    joint.refresh_from_db()
    assert joint.last_seq == 3
    return joint


@pytest.fixture
def other_case(user_factory, mediator_factory, application_factory, origin) -> Cast:
    """A second active case, with people of its own."""
    claimant = user_factory("other-claimant@example.kz", display_name="Other Claimant")
    respondent = user_factory("other-respondent@example.kz", display_name="Other Respondent")
    other_mediator = mediator_factory("other-mediator@example.kz", display_name="Other Mediator")
    case = intake.case_file(
        claimant=claimant,
        application=application_factory(respondent, mediator=other_mediator),
        origin=origin,
    )
    accept_all_invitations(case, respondent, origin=origin)
    mediators.mediator_answer(case=case, user=other_mediator, accept=True, reason="", origin=origin)
    case.refresh_from_db()
    for user in (claimant, respondent, other_mediator):
        accept_atm(case, user, origin)
    for user in (claimant, respondent, other_mediator):
        accept_undertaking(case, user, origin)
    case.refresh_from_db()
    of = {p.user_id: p for p in case.participants.all()}
    return Cast(
        case,
        other_mediator,
        claimant,
        respondent,
        of[other_mediator.pk],
        of[claimant.pk],
        of[respondent.pk],
    )
