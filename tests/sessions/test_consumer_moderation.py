"""The mediator's controls over the room socket: the lobby, mute, remove,
lock, redact, caucuses, ending the session; each audited, none open to a party."""

import datetime

import pytest

from odr.models import AuditAction
from sessions.models import EventKind, Room, RoomEvent, RoomKind
from sessions.services import rooms
from tests.sessions.room_fixtures import *

pytestmark = pytest.mark.django_db(transaction=True)


def ref(participant, name, role):
    return {"id": str(participant.public_id), "display_name": name, "role": role}


MEDIATOR = ("Marat Mediator", "mediator")


def is_event(kind):
    return lambda f: f["type"] == "event" and f["kind"] == kind


def is_members_with(participant, **state):
    def match(frame):
        if frame["type"] != "members":
            return False
        rows = [m for m in frame["members"] if m["id"] == str(participant.public_id)]
        return len(rows) == 1 and all(rows[0].get(k) == v for k, v in state.items())

    return match


async def audited(case, action: AuditAction) -> list[dict]:
    """The details of the case's audit rows with this action."""
    return [details for name, details in await audit_actions(case) if name == action.value]


async def refused_with(user, room) -> int:
    """Connect as `user`: accepted, then closed; the close code."""
    async with connect(user, room) as socket:
        assert socket.connected, socket.connect_code
        return await socket.closed()


# --- the lobby -----------------------------------------------------------------------------


async def test_when_party_connects_before_admission_then_lobby_waiting_and_no_room_content(
    cast, joint, session_open
):
    async with enter(cast.mediator, joint) as m, connect(cast.party_a, joint) as a:
        welcome = await a.expect("welcome")
        assert welcome["you"] == {
            "id": str(cast.a.public_id),
            "role": "claimant",
            "admitted": False,
            "muted": False,
            "mediator": False,
        }
        assert await a.expect("lobby.waiting") == {"type": "lobby.waiting", "session_open": True}
        await a.send({"type": "resume", "after_seq": 0})

        waiting = await m.wait_for(is_members_with(cast.a, state="waiting", online=True))
        assert [row["id"] for row in waiting["members"]] == [
            str(p.public_id) for p in (cast.m, cast.a, cast.b)
        ]
        assert waiting["members"][0] == {
            **ref(cast.m, *MEDIATOR),
            "state": "admitted",
            "muted": False,
            "online": True,
        }

        await m.send(send_frame("Only for those in the room"))
        await m.wait_for(lambda f: f["type"] == "ack")
        await a.assert_silent()

        await a.send({"type": "history", "before_seq": 10})
        assert (await a.expect_error("forbidden"))["for"] == "history"
        client_id = new_client_id()
        await a.send(send_frame("let me in", client_id))
        await a.expect_error("forbidden", client_id=client_id)
        await a.send({"type": "typing", "active": True})
        await a.expect_error("forbidden")
        assert (
            await db(lambda: RoomEvent.objects.filter(room=joint, kind=EventKind.MESSAGE).count())()
            == 1
        )


async def test_when_mediator_admits_from_lobby_then_party_gets_admitted_then_room_events(
    cast, joint, session_open
):
    async with enter(cast.mediator, joint) as m, connect(cast.party_a, joint) as a:
        await a.expect("welcome")
        await a.expect("lobby.waiting")
        await a.send({"type": "resume", "after_seq": 0})
        await m.wait_for(is_members_with(cast.a, state="waiting"))
        await m.send(send_frame("Before you came in"))
        await m.wait_for(lambda f: f["type"] == "ack")

        await m.send({"type": "lobby.admit", "participant": str(cast.a.public_id)})

        assert await a.expect("lobby.admitted") == {"type": "lobby.admitted"}
        backlog = await a.read_sequenced(4)
        assert [(f["seq"], f.get("kind", f["type"])) for f in backlog] == [
            (1, "session_started"),
            (2, "joined"),
            (3, "message"),
            (4, "admitted"),
        ]
        assert backlog[3]["subject"] == ref(cast.a, "Aliya Claimant", "claimant")
        assert backlog[3]["actor"] == ref(cast.m, *MEDIATOR)
        await m.wait_for(is_members_with(cast.a, state="admitted", online=True))

        await m.send(send_frame("Welcome"))
        live = await a.wait_for(lambda f: f["type"] == "message")
        assert (live["seq"], live["body"]) == (5, "Welcome")

    assert await audited(cast.case, AuditAction.LOBBY_ADMITTED) == [
        {"room": str(joint.public_id), "kind": "joint", "participant": str(cast.a.public_id)}
    ]


async def test_when_mediator_declines_then_party_gets_declined_and_4403(cast, joint, session_open):
    async with enter(cast.mediator, joint) as m, connect(cast.party_a, joint) as a:
        await a.expect("welcome")
        await a.expect("lobby.waiting")
        await m.wait_for(is_members_with(cast.a, state="waiting"))

        await m.send({"type": "lobby.decline", "participant": str(cast.a.public_id)})

        assert await a.expect("lobby.declined") == {"type": "lobby.declined"}
        assert await a.closed() == 4403
        await m.wait_for(is_members_with(cast.a, state="declined"))

    assert await refused_with(cast.party_a, joint) == 4403
    assert await audited(cast.case, AuditAction.LOBBY_DECLINED) == [
        {"room": str(joint.public_id), "kind": "joint", "participant": str(cast.a.public_id)}
    ]


# --- mute, remove, lock -------------------------------------------------------------------------


async def test_when_mediator_mutes_then_party_cannot_post_until_unmuted(cast, admitted):
    async with enter_all(admitted, cast.mediator, cast.party_a, cast.party_b) as (m, a, b):
        await m.send({"type": "participant.mute", "participant": str(cast.a.public_id)})
        muted = await b.wait_for(is_event("muted"))
        assert muted["seq"] == 7
        assert muted["actor"] == ref(cast.m, *MEDIATOR)
        assert muted["subject"] == ref(cast.a, "Aliya Claimant", "claimant")
        assert (await a.wait_for(is_event("muted")))["seq"] == 7

        client_id = new_client_id()
        await a.send(send_frame("I object", client_id))
        await a.expect_error("muted", client_id=client_id)
        await a.send({"type": "typing", "active": True})
        await a.expect_error("muted")
        assert (
            await db(
                lambda: RoomEvent.objects.filter(room=admitted, kind=EventKind.MESSAGE).count()
            )()
            == 0
        )

        await m.send({"type": "participant.unmute", "participant": str(cast.a.public_id)})
        assert (await b.wait_for(is_event("unmuted")))["seq"] == 8
        await a.wait_for(is_event("unmuted"))
        await a.send(send_frame("Thank you", client_id))
        assert (await a.expect("ack"))["seq"] == 9

    participant = str(cast.a.public_id)
    assert await audited(cast.case, AuditAction.PARTICIPANT_MUTED) == [
        {"room": str(admitted.public_id), "kind": "joint", "participant": participant}
    ]
    assert await audited(cast.case, AuditAction.PARTICIPANT_UNMUTED) == [
        {"room": str(admitted.public_id), "kind": "joint", "participant": participant}
    ]


async def test_when_mediator_removes_party_then_socket_closes_4403_until_admitted_again(
    cast, admitted
):
    async with enter_all(admitted, cast.mediator, cast.party_a, cast.party_b) as (m, a, b):
        await m.send({"type": "participant.remove", "participant": str(cast.a.public_id)})

        assert await a.closed() == 4403
        removed = await b.wait_for(is_event("removed"))
        assert (removed["seq"], removed["subject"]["id"]) == (7, str(cast.a.public_id))
        assert await refused_with(cast.party_a, admitted) == 4403

        await m.send({"type": "lobby.admit", "participant": str(cast.a.public_id)})
        await b.wait_for(is_event("admitted"))

    async with enter(cast.party_a, admitted) as a:
        assert a.welcome["you"]["admitted"] is True
        await a.send(send_frame("I'm back"))
        await a.wait_for(lambda f: f["type"] == "ack")
    assert await audited(cast.case, AuditAction.PARTICIPANT_REMOVED) == [
        {"room": str(admitted.public_id), "kind": "joint", "participant": str(cast.a.public_id)}
    ]


async def test_when_mediator_locks_room_then_only_the_mediator_posts_or_enters(cast, admitted):
    async with enter_all(admitted, cast.mediator, cast.party_a) as (m, a):
        await m.send({"type": "room.lock"})
        locked = await a.wait_for(is_event("locked"))
        assert (locked["seq"], locked["actor"]) == (6, ref(cast.m, *MEDIATOR))

        client_id = new_client_id()
        await a.send(send_frame("Wait", client_id))
        await a.expect_error("locked", client_id=client_id)
        assert await refused_with(cast.party_b, admitted) == 4409
        assert await refused_with(cast.party_a, admitted) == 4409  # a second tab too

        await m.send(send_frame("I'll speak while the room is locked"))
        assert (await m.wait_for(lambda f: f["type"] == "ack"))["seq"] == 7
        assert (await a.wait_for(lambda f: f["type"] == "message"))["seq"] == 7

        await m.send({"type": "room.unlock"})
        assert (await a.wait_for(is_event("unlocked")))["seq"] == 8
        await a.send(send_frame("Now I can"))
        assert (await a.expect("ack"))["seq"] == 9

    async with enter(cast.party_b, admitted) as b:
        assert b.welcome["room"]["locked"] is False
    room = str(admitted.public_id)
    assert await audited(cast.case, AuditAction.ROOM_LOCKED) == [{"room": room, "kind": "joint"}]
    assert await audited(cast.case, AuditAction.ROOM_UNLOCKED) == [{"room": room, "kind": "joint"}]


# --- redaction ------------------------------------------------------------------------------------


async def test_when_mediator_redacts_message_then_everyone_sees_redacted_and_body_is_gone(
    cast, admitted
):
    async with enter_all(admitted, cast.mediator, cast.party_a, cast.party_b) as (m, a, b):
        await b.send(send_frame("Something offensive"))
        target = (await b.expect("ack"))["seq"]
        assert target == 7

        for not_a_message in (6, 99, "7", True):  # b's `joined`, no such seq, not whole numbers
            await m.send({"type": "message.redact", "seq": not_a_message})
            error = await m.wait_for(lambda f: f["type"] == "error")
            assert (error["code"], error["for"]) == ("bad_request", "message.redact"), (
                not_a_message,
                error,
            )
        await m.send({"type": "message.redact", "seq": target})
        for socket in (m, a, b):
            redacted = await socket.wait_for(is_event("redacted"))
            assert redacted["seq"] == 8
            assert redacted["target_seq"] == target
            assert redacted["actor"] == ref(cast.m, *MEDIATOR)
            assert redacted["subject"] == ref(cast.b, "Bolat Respondent", "respondent")

    stored = await db(lambda: RoomEvent.objects.get(room=admitted, seq=target))()
    assert stored.body_sealed is None and stored.redacted_at is not None
    async with enter(cast.party_a, admitted) as a:
        message = next(f for f in a.backlog if f["seq"] == target)
        assert message["type"] == "message"
        assert message["body"] == ""
        assert message["redacted"] == {
            "by": ref(cast.m, *MEDIATOR),
            "at": message["redacted"]["at"],
        }
        at = datetime.datetime.fromisoformat(message["redacted"]["at"])
        assert message["redacted"]["at"].endswith("Z") and at == stored.redacted_at
        assert "Something offensive" not in str(a.received)
    assert await audited(cast.case, AuditAction.MESSAGE_REDACTED) == [
        {"room": str(admitted.public_id), "kind": "joint", "seq": target}
    ]


# --- caucuses and the end of a session -----------------------------------------------------------


async def test_when_mediator_opens_and_closes_a_caucus_then_its_sockets_close_4409_and_it_reopens(
    cast, admitted
):
    async with enter_all(admitted, cast.mediator, cast.party_a, cast.party_b) as (m, a, b):
        await m.send({"type": "caucus.open", "party": str(cast.a.public_id)})
        opened = await m.wait_for(lambda f: f["type"] == "caucus")
        caucus = await db(lambda: Room.objects.get(case=cast.case, kind=RoomKind.CAUCUS))()
        assert caucus.party_id == cast.a.pk
        assert opened == {"type": "caucus", "room_id": str(caucus.public_id), "open": True}
        assert await a.wait_for(lambda f: f["type"] == "caucus") == opened

        async with enter(cast.party_a, caucus) as ca, enter(cast.mediator, caucus) as cm:
            assert ca.welcome["room"]["kind"] == "caucus" and ca.welcome["you"]["admitted"] is True
            assert [f.get("kind") for f in ca.backlog][:1] == ["caucus_opened"]
            await cm.send({"type": "caucus.close"})
            assert await ca.closed() == 4409
            assert await cm.closed() == 4409
        assert await a.wait_for(lambda f: f["type"] == "caucus") == {**opened, "open": False}
        assert await refused_with(cast.party_a, caucus) == 4409

        await m.send({"type": "caucus.open", "party": str(cast.a.public_id)})
        assert await a.wait_for(lambda f: f["type"] == "caucus") == opened
        async with enter(cast.party_a, caucus) as ca:
            assert [
                f["kind"]
                for f in ca.backlog
                if f["type"] == "event" and f["kind"].startswith("caucus")
            ] == [
                "caucus_opened",
                "caucus_closed",
                "caucus_opened",
            ]
            await ca.send(send_frame("Just between us"))
            await ca.wait_for(lambda f: f["type"] == "ack")
        await b.assert_no_content()

    details = {"room": str(caucus.public_id), "kind": "caucus", "party": str(cast.a.public_id)}
    assert await audited(cast.case, AuditAction.CAUCUS_OPENED) == [details, details]
    assert await audited(cast.case, AuditAction.CAUCUS_CLOSED) == [details]


async def test_when_mediator_ends_the_session_then_every_socket_of_the_case_closes_4409(
    cast, admitted
):
    caucus = await db(rooms.caucus_open)(
        room=admitted, user=cast.mediator, party_id=cast.a.public_id
    )
    async with (
        enter_all(admitted, cast.mediator, cast.party_a, cast.party_b) as (m, a, b),
        enter(cast.party_a, caucus) as ca,
    ):
        await m.send({"type": "session.end"})
        for socket in (m, a, b, ca):
            assert await socket.closed() == 4409

    assert await db(lambda: cast.case.sittings.get().ended_at is not None)()
    assert await audited(cast.case, AuditAction.SESSION_ENDED) == [
        {"room": str(admitted.public_id), "kind": "joint", "number": 1}
    ]
    # Admissions lasted for that session: the next arrival waits in the lobby.
    async with connect(cast.party_b, admitted) as b:
        assert (await b.expect("welcome"))["you"]["admitted"] is False
        assert await b.expect("lobby.waiting") == {"type": "lobby.waiting", "session_open": False}
    assert await refused_with(cast.party_a, caucus) == 4409


async def test_when_mediator_starts_a_session_from_the_socket_then_it_is_sequenced_and_audited(
    cast, joint
):
    async with enter(cast.mediator, joint) as m:
        await m.send({"type": "session.start"})
        started = await m.wait_for(is_event("session_started"))
        assert (started["seq"], started["actor"]) == (1, ref(cast.m, *MEDIATOR))
    assert await audited(cast.case, AuditAction.SESSION_STARTED) == [
        {"room": str(joint.public_id), "kind": "joint", "number": 1}
    ]


# --- a party is not the mediator ---------------------------------------------------------------


async def test_when_party_sends_moderation_frames_then_forbidden_and_nothing_changes(
    cast, admitted
):
    caucus = await db(rooms.caucus_open)(
        room=admitted, user=cast.mediator, party_id=cast.b.public_id
    )
    await db(rooms.message_post)(
        room=admitted, user=cast.party_b, client_id=new_client_id(), body="mine"
    )
    b_id = str(cast.b.public_id)
    frames = [
        {"type": "session.start"},
        {"type": "session.end"},
        {"type": "lobby.admit", "participant": b_id},
        {"type": "lobby.decline", "participant": b_id},
        {"type": "participant.mute", "participant": b_id},
        {"type": "participant.unmute", "participant": b_id},
        {"type": "participant.remove", "participant": b_id},
        {"type": "room.lock"},
        {"type": "room.unlock"},
        {"type": "message.redact", "seq": 4},
        {"type": "caucus.open", "party": str(cast.a.public_id)},
        {"type": "caucus.close"},
    ]
    async with enter(cast.party_a, admitted) as a, enter(cast.party_b, caucus) as cb:
        before = await room_state(cast.case)
        for frame in frames:
            await a.send(frame)
            error = await a.next()
            assert (error["type"], error.get("code"), error.get("for")) == (
                "error",
                "forbidden",
                frame["type"],
            ), error
        for frame in (
            {"type": "caucus.close"},
            {"type": "participant.remove", "participant": b_id},
        ):
            await cb.send(frame)
            assert (await cb.expect_error("forbidden"))["for"] == frame["type"]
        assert await room_state(cast.case) == before
        assert [f for f in await a.listen() if f["type"] not in AMBIENT] == []
