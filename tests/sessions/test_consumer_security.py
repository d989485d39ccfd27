"""Who may open the room socket, and what never leaves a room: close codes
of realtime.md, the Origin check, logout, closed cases, caucus confidentiality."""

import datetime
import uuid

import pytest
from allauth.mfa.models import Authenticator
from django.contrib.sessions.models import Session
from django.test import Client
from django.utils import timezone

from odr.models import User
from sessions.models import CaseStatus, Room, RoomEvent
from sessions.services import procedure, rooms
from tests.sealed import texts
from tests.sessions.room_fixtures import *

pytestmark = pytest.mark.django_db(transaction=True)


async def close_code(user, room, *, origin=SAME_SITE) -> int:
    """Connect as `user` (None: anonymous): accepted, then closed before any
    frame of the room; the close code."""
    async with connect(user, room, origin=origin) as socket:
        assert socket.connected, socket.connect_code
        frame = await socket.next()
        assert frame["type"] == CLOSE, frame
        assert socket.received == []  # not even a `welcome`
        return frame["code"]


# --- who may connect ----------------------------------------------------------------------


async def test_when_anonymous_then_closed_4401(joint, session_open):
    assert await close_code(None, joint) == 4401


@pytest.mark.parametrize("room_id", ["not-a-room", "1", "42", "%27%20OR%201=1", "0000"])
async def test_when_room_id_is_malformed_then_closed_4404(cast, joint, room_id):
    assert await close_code(cast.party_a, f"/ws/rooms/{room_id}/") == 4404


async def test_when_room_id_is_unknown_then_closed_4403_as_for_a_room_of_another_case(
    cast, joint, other_case
):
    other_joint = await db(rooms.room_joint)(other_case.case)
    assert await close_code(cast.party_a, uuid.uuid4()) == 4403
    assert await close_code(cast.party_a, other_joint) == 4403
    assert await close_code(cast.mediator, other_joint) == 4403


async def test_when_user_of_another_case_then_closed_4403(cast, admitted, other_case, user_factory):
    stranger = await db(user_factory)("stranger@example.kz")
    assert await close_code(stranger, admitted) == 4403
    assert await close_code(other_case.party_a, admitted) == 4403
    assert await close_code(other_case.party_b, admitted) == 4403


async def test_when_mediator_of_another_case_then_closed_4403(cast, admitted, other_case):
    assert await close_code(other_case.mediator, admitted) == 4403
    caucus = await db(rooms.caucus_open)(
        room=admitted, user=cast.mediator, party_id=cast.a.public_id
    )
    assert await close_code(other_case.mediator, caucus) == 4403


async def test_when_mediator_has_no_2fa_then_closed_4403(cast, admitted):
    async with enter(cast.mediator, admitted) as m:
        assert m.welcome["you"]["mediator"] is True
    await db(lambda: Authenticator.objects.filter(user=cast.mediator).delete())()
    assert await close_code(cast.mediator, admitted) == 4403


async def test_when_other_party_connects_to_a_caucus_then_closed_4403(cast, admitted):
    caucus = await db(rooms.caucus_open)(
        room=admitted, user=cast.mediator, party_id=cast.a.public_id
    )
    assert await close_code(cast.party_b, caucus) == 4403
    await db(rooms.caucus_close)(room=caucus, user=cast.mediator)
    assert await close_code(cast.party_b, caucus) == 4403  # closed or not: not theirs


@pytest.mark.parametrize(
    "site", [b"http://evil.example", b"http://127.0.0.1.evil.example", b"null"]
)
async def test_when_origin_is_another_site_then_refused_at_the_handshake(cast, admitted, site):
    async with connect(cast.party_a, admitted, origin=site) as socket:
        assert socket.connected is False
        assert await socket.communicator.receive_nothing(timeout=0.1)
    assert await db(lambda: admitted.connections.count())() == 0


async def test_when_origin_header_is_missing_then_refused_at_the_handshake(cast, admitted):
    async with connect(cast.party_a, admitted, origin=None) as socket:
        assert socket.connected is False


# --- caucus confidentiality ------------------------------------------------------------------


async def test_when_caucus_message_sent_then_other_party_in_joint_room_receives_nothing(
    cast, admitted
):
    caucus = await db(rooms.caucus_open)(
        room=admitted, user=cast.mediator, party_id=cast.a.public_id
    )
    secrets = ["My bottom line is 500 000 tenge", "I can accept 400 000"]
    async with (
        enter_all(admitted, cast.party_b) as (b,),
        enter_all(caucus, cast.party_a, cast.mediator) as (ca, cm),
    ):
        await ca.send(send_frame(secrets[0]))
        await ca.expect("ack")
        await cm.send(send_frame(secrets[1]))
        await cm.wait_for(lambda f: f["type"] == "ack")
        await ca.send({"type": "typing", "active": True})
        assert (await cm.wait_for(lambda f: f["type"] == "typing"))["participant"] == str(
            cast.a.public_id
        )
        assert (await ca.wait_for(lambda f: f["type"] == "message" and f["body"] == secrets[1]))[
            "seq"
        ] > 0

        await b.assert_no_content()
        assert [f for f in b.received if f["type"] == "typing"] == []
        assert caucus.public_id.hex not in str(b.received) and str(caucus.public_id) not in str(
            b.received
        )

    joint_last = await db(lambda: Room.objects.get(pk=admitted.pk).last_seq)()
    async with enter(cast.party_b, admitted) as b:
        assert [f["seq"] for f in b.backlog] == list(range(1, joint_last + 2))  # + b's own `joined`
        assert not any(secret in str(b.backlog) for secret in secrets)
        await b.send({"type": "history", "before_seq": joint_last + 2})
        page = await b.expect("history")
        assert not any(secret in str(page) for secret in secrets)
    caucus_bodies = await db(lambda: texts(RoomEvent.objects.filter(room=caucus, kind="message")))()
    assert sorted(caucus_bodies) == sorted(secrets)


# --- logging out, losing the session ----------------------------------------------------------


def logged_in_client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


async def test_when_user_logs_out_then_their_socket_closes_4401(cast, admitted):
    client = await db(logged_in_client)(cast.party_a)
    key = client.cookies["sessionid"].value
    socket = Socket(admitted.public_id, session_key=key)
    assert (await socket.connect())[0]
    try:
        await socket.expect("welcome")
        await socket.send({"type": "resume", "after_seq": 0})
        await socket.read_sequenced(4)

        response = await db(client.post)("/accounts/logout/")
        assert response.status_code == 302
        assert await socket.closed() == 4401
    finally:
        await socket.disconnect()
    assert not await db(lambda: Session.objects.filter(session_key=key).exists())()

    again = Socket(admitted.public_id, session_key=key)
    assert (await again.connect())[0]
    try:
        assert await again.closed() == 4401
    finally:
        await again.disconnect()


async def lose_session(key, user):
    await db(lambda: Session.objects.filter(session_key=key).delete())()


async def expire_session(key, user):
    """SESSION_COOKIE_AGE has passed: the row stays until `clearsessions`,
    but Django no longer loads it."""
    past = timezone.now() - datetime.timedelta(seconds=1)
    await db(lambda: Session.objects.filter(session_key=key).update(expire_date=past))()


async def deactivate(key, user):
    await db(lambda: User.objects.filter(pk=user.pk).update(is_active=False))()


async def change_password_elsewhere(key, user):
    """What a password change from another device does: the session hash of
    this session no longer matches, so Django counts it as logged out."""

    def change():
        fresh = User.objects.get(pk=user.pk)
        fresh.set_password("a-New-strong-pass-2027")
        fresh.save()

    await db(change)()


@pytest.mark.parametrize(
    "lose_login", [lose_session, expire_session, deactivate, change_password_elsewhere]
)
async def test_when_login_is_lost_then_the_next_frame_closes_4401(cast, admitted, lose_login):
    key = await login(cast.party_a)
    socket = Socket(admitted.public_id, session_key=key)
    assert (await socket.connect())[0]
    try:
        await socket.expect("welcome")
        await socket.send({"type": "ping"})
        await socket.expect("pong")

        await lose_login(key, cast.party_a)
        await socket.send({"type": "ping"})
        assert await socket.next() == {"type": "websocket.close", "code": 4401}
    finally:
        await socket.disconnect()

    again = Socket(admitted.public_id, session_key=key)
    assert (await again.connect())[0]
    try:
        assert await again.next() == {"type": "websocket.close", "code": 4401}
    finally:
        await again.disconnect()


# --- a case that has ended --------------------------------------------------------------------


async def test_when_case_is_closed_then_sockets_close_4409_and_new_ones_get_4409(
    cast, admitted, origin
):
    caucus = await db(rooms.caucus_open)(
        room=admitted, user=cast.mediator, party_id=cast.a.public_id
    )
    async with (
        enter_all(admitted, cast.mediator, cast.party_a) as (m, a),
        enter(cast.party_a, caucus) as ca,
    ):
        await db(procedure.case_close)(
            case=cast.case, user=cast.mediator, outcome=CaseStatus.NOT_SETTLED, origin=origin
        )
        for socket in (m, a, ca):
            assert await socket.closed() == 4409

    for user in (cast.mediator, cast.party_a, cast.party_b):
        assert await close_code(user, admitted) == 4409, user
    assert await close_code(cast.party_a, caucus) == 4409
    assert await close_code(cast.party_b, caucus) == 4403  # never theirs
