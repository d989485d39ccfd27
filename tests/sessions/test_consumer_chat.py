"""The room socket's chat: resume, messages, acks, idempotency, ordering,
typing, presence, history, ping, and answers to bad input (realtime.md)."""

import asyncio
import datetime
import json

import pytest

from sessions.models import EventKind, RoomEvent
from sessions.services import rooms
from tests.sealed import opened
from tests.sessions.room_fixtures import *

pytestmark = pytest.mark.django_db(transaction=True)

XSS = '<img src=x onerror="alert(1)"><script>alert(\'x\')</script> &amp; &lt;b&gt; "quoted" Сәлем 👋\n\tend'


async def post(room, user, body):
    """A message stored through the service, as another process would."""
    event, _created = await db(rooms.message_post)(
        room=room, user=user, client_id=new_client_id(), body=body
    )
    return event


async def message_rows(room):
    return await db(
        lambda: [
            (event.seq, event.text)
            for event in opened(RoomEvent.objects.filter(room=room, kind=EventKind.MESSAGE).order_by("seq"))
        ]
    )()


def kinds(frames):
    return [(f["seq"], f["kind"] if f["type"] == "event" else "message") for f in frames]


# --- resume ------------------------------------------------------------------------------


async def test_when_resume_after_zero_then_every_event_arrives_oldest_first(cast, admitted):
    await post(admitted, cast.party_b, "first")
    await post(admitted, cast.mediator, "second")

    async with enter(cast.party_a, admitted) as a:
        stored = await stored_events(admitted)
        assert [seq for seq, _kind in stored] == [1, 2, 3, 4, 5, 6]
        assert kinds(a.backlog) == stored
        assert [f["kind"] for f in a.backlog if f["type"] == "event"] == [
            "session_started",
            "admitted",
            "admitted",
            "joined",
        ]
        assert [f["body"] for f in a.backlog if f["type"] == "message"] == ["first", "second"]
        await a.assert_no_content()  # nothing twice


async def test_when_resume_after_n_then_exactly_the_missed_events_arrive(cast, admitted):
    async with enter(cast.party_a, admitted) as a:
        seen = a.backlog[-1]["seq"]
    assert seen == 4  # session_started, admitted ×2, a joined
    await post(admitted, cast.party_b, "while you were away")
    await post(admitted, cast.mediator, "and this")

    async with enter(cast.party_a, admitted, resume=False) as a:
        last = (await stored_events(admitted))[-1][0]
        missed = await a.resume(seen, last)
        assert kinds(missed) == [(5, "left"), (6, "message"), (7, "message"), (8, "joined")]
        assert [f["body"] for f in missed if f["type"] == "message"] == [
            "while you were away",
            "and this",
        ]
        await a.assert_no_content()


# --- message.send --------------------------------------------------------------------------


async def test_when_message_sent_then_sender_gets_ack_and_other_party_gets_message(cast, admitted):
    async with enter_all(admitted, cast.party_a, cast.party_b) as (a, b):
        client_id = new_client_id()
        await a.send(send_frame("Can we talk about the fence?", client_id))

        ack = await a.expect("ack")
        stored = await db(lambda: RoomEvent.objects.get(room=admitted, client_id=client_id))()
        assert ack == {
            "type": "ack",
            "client_id": client_id,
            "seq": stored.seq,
            "id": str(stored.public_id),
        }
        assert stored.seq == 6 and stored.kind == EventKind.MESSAGE

        message = await b.wait_for(lambda f: f["type"] == "message")
        assert message == {
            "type": "message",
            "seq": 6,
            "id": str(stored.public_id),
            "client_id": client_id,
            "author": {
                "id": str(cast.a.public_id),
                "display_name": "Aliya Claimant",
                "role": "claimant",
            },
            "body": "Can we talk about the fence?",
            "sent_at": message["sent_at"],
        }
        assert message["sent_at"].endswith("Z")
        sent_at = datetime.datetime.fromisoformat(message["sent_at"])
        assert sent_at == stored.at
        # The sender sees its own message in the room's order too (no gap at seq 6).
        assert await a.wait_for(lambda f: f["type"] == "message") == message


async def test_when_message_retried_with_same_client_id_then_same_ack_and_no_new_row(
    cast, admitted
):
    async with enter_all(admitted, cast.party_a, cast.party_b) as (a, b):
        client_id = new_client_id()
        await a.send(send_frame("only once", client_id))
        first = await a.expect("ack")
        rows = await db(RoomEvent.objects.count)()
        await a.send(send_frame("only once", client_id))
        second = await a.wait_for(lambda f: f["type"] == "ack")
        await a.send(send_frame("a different body, the same client_id", client_id))
        third = await a.wait_for(lambda f: f["type"] == "ack")

        assert second == first and third == first
        assert await db(RoomEvent.objects.count)() == rows
        assert await message_rows(admitted) == [(first["seq"], "only once")]
        assert (await b.wait_for(lambda f: f["type"] == "message"))["client_id"] == client_id
        await b.assert_no_content()

        # Another participant cannot reuse (or probe) that client_id.
        await b.send(send_frame("mine now?", client_id))
        await b.expect_error("bad_request", client_id=client_id)
        assert await db(RoomEvent.objects.count)() == rows


async def test_when_two_clients_send_concurrently_then_seq_has_no_gaps(cast, admitted, settings):
    settings.ODR_CHAT_RATE_COUNT = 100
    per_client = 12
    async with enter_all(admitted, cast.party_a, cast.party_b) as (a, b):
        start = (await stored_events(admitted))[-1][0]
        await asyncio.gather(
            *[a.send(send_frame(f"a{i}")) for i in range(per_client)],
            *[b.send(send_frame(f"b{i}")) for i in range(per_client)],
        )
        end = start + 2 * per_client

        for socket, prefix in ((a, "a"), (b, "b")):
            acks, events = [], []
            while len(acks) < per_client or not events or events[-1]["seq"] < end:
                frame = await socket.next()
                (acks if frame["type"] == "ack" else events).append(frame)
                assert frame["type"] in ("ack", "message"), frame
            # Every socket sees every seq once, in order, without gaps.
            assert [f["seq"] for f in events] == list(range(start + 1, end + 1))
            own = [f for f in events if f["body"].startswith(prefix)]
            assert sorted(ack["seq"] for ack in acks) == [f["seq"] for f in own]
            # One socket's messages keep the order they were sent in.
            assert [f["body"] for f in own] == [f"{prefix}{i}" for i in range(per_client)]

        assert [seq for seq, _kind in await stored_events(admitted)] == list(range(1, end + 1))
        assert len(await message_rows(admitted)) == 2 * per_client


# --- typing, presence, history, ping ------------------------------------------------------


async def test_when_typing_then_other_party_sees_it_not_the_sender_and_nothing_is_stored(
    cast, admitted
):
    async with enter_all(admitted, cast.party_a, cast.party_b) as (a, b):
        before = await stored_events(admitted)
        await a.send({"type": "typing", "active": True})
        typing = await b.wait_for(lambda f: f["type"] == "typing")
        assert typing == {"type": "typing", "participant": str(cast.a.public_id), "active": True}
        await a.send({"type": "typing", "active": False})
        typing = await b.wait_for(lambda f: f["type"] == "typing")
        assert typing == {"type": "typing", "participant": str(cast.a.public_id), "active": False}

        assert [f for f in await a.listen() if f["type"] == "typing"] == []
        assert await stored_events(admitted) == before


async def test_when_participants_come_and_go_then_presence_lists_online_ids(cast, admitted):
    a_id, b_id = str(cast.a.public_id), str(cast.b.public_id)
    async with enter(cast.party_a, admitted) as a:
        async with enter(cast.party_b, admitted):
            both = await a.wait_for(lambda f: f["type"] == "presence" and len(f["online"]) == 2)
            assert both == {"type": "presence", "online": sorted([a_id, b_id])}
        alone = await a.wait_for(lambda f: f["type"] == "presence" and len(f["online"]) == 1)
        assert alone == {"type": "presence", "online": [a_id]}


async def test_when_participant_connects_then_it_learns_who_is_already_online(cast, admitted):
    a_id, b_id = str(cast.a.public_id), str(cast.b.public_id)
    async with enter(cast.party_a, admitted), enter(cast.party_b, admitted) as b:
        # The first presence frame b gets (right after its welcome) already lists a.
        seen = [f for f in b.received if f["type"] == "presence"]
        presence = seen[0] if seen else await b.wait_for(lambda f: f["type"] == "presence")
        assert presence == {"type": "presence", "online": sorted([a_id, b_id])}


async def test_when_history_requested_then_older_events_arrive_a_page_at_a_time(
    cast, admitted, settings
):
    settings.ODR_HISTORY_PAGE = 2
    for body in ("one", "two", "three"):
        await post(admitted, cast.party_b, body)
    async with enter(cast.party_a, admitted) as a:
        by_seq = {f["seq"]: f for f in a.backlog}
        assert sorted(by_seq) == list(range(1, 8))

        await a.send({"type": "history", "before_seq": 7})
        page = await a.expect("history", before_seq=7, complete=False)
        assert page["events"] == [by_seq[5], by_seq[6]]

        await a.send({"type": "history", "before_seq": 3})
        page = await a.expect("history", before_seq=3, complete=True)
        assert page["events"] == [by_seq[1], by_seq[2]]


async def test_when_ping_then_pong_with_the_last_seq(cast, admitted):
    async with enter(cast.party_a, admitted) as a:
        await post(admitted, cast.party_b, "after you came")
        await a.wait_for(lambda f: f["type"] == "message")
        await a.send({"type": "ping"})
        assert await a.expect("pong") == {"type": "pong", "last_seq": 5}


# --- what the server never does to a body -----------------------------------------------


async def test_when_body_looks_like_html_then_it_is_stored_and_returned_verbatim(cast, admitted):
    async with enter_all(admitted, cast.party_a, cast.party_b) as (a, b):
        await a.send(send_frame(XSS))
        ack = await a.expect("ack")
        live = await b.wait_for(lambda f: f["type"] == "message")
        assert live["body"] == XSS
        assert await message_rows(admitted) == [(ack["seq"], XSS)]

    async with enter(cast.party_b, admitted) as b:
        replayed = [f for f in b.backlog if f["type"] == "message"]
        assert [f["body"] for f in replayed] == [XSS]


# --- bad input --------------------------------------------------------------------------------


async def test_when_message_longer_than_the_limit_then_too_large_with_client_id(
    cast, admitted, settings
):
    async with enter(cast.party_a, admitted) as a:
        limit = a.welcome["limits"]["message_chars"]
        assert limit == settings.ODR_MESSAGE_MAX_CHARS == 5000  # the production default
        client_id = new_client_id()
        await a.send(send_frame("ж" * (limit + 1), client_id))
        error = await a.expect_error("too_large", client_id=client_id)
        assert error["for"] == "message.send"
        assert await message_rows(admitted) == []

        await a.send(send_frame("ж" * limit))  # characters, not bytes, count
        assert (await a.expect("ack"))["seq"] == 5
        assert await message_rows(admitted) == [(5, "ж" * limit)]


async def test_when_frame_bigger_than_the_limit_then_too_large_and_socket_stays_usable(
    cast, admitted, settings
):
    settings.ODR_WS_MAX_FRAME_BYTES = 300
    async with enter(cast.party_a, admitted) as a:
        # 150 Cyrillic letters are 300 bytes in UTF-8: the limit is on bytes.
        text = json.dumps(send_frame("ж" * 150), ensure_ascii=False)
        assert len(text) < 300 < len(text.encode())
        await a.send_text(text)
        error = await a.expect_error("too_large")
        assert "client_id" not in error
        assert await message_rows(admitted) == []

        await a.send(send_frame("short"))
        assert (await a.expect("ack"))["seq"] == 5


BAD_FRAMES = [
    ("not json", "hello", None),
    ("a JSON array", json.dumps([{"type": "ping"}]), None),
    ("a JSON string", json.dumps("ping"), None),
    ("no type", json.dumps({"after_seq": 0}), None),
    ("unknown type", json.dumps({"type": "message.delete", "seq": 1}), None),
    ("missing client_id", json.dumps({"type": "message.send", "body": "hi"}), None),
    (
        "client_id not a UUID",
        json.dumps({"type": "message.send", "client_id": "abc", "body": "hi"}),
        "abc",
    ),
    (
        "body a number",
        json.dumps(
            {
                "type": "message.send",
                "client_id": "c0ffee00-0000-4000-8000-000000000001",
                "body": 42,
            }
        ),
        "c0ffee00-0000-4000-8000-000000000001",
    ),
    (
        "body a list",
        json.dumps(
            {
                "type": "message.send",
                "client_id": "c0ffee00-0000-4000-8000-000000000002",
                "body": ["hi"],
            }
        ),
        "c0ffee00-0000-4000-8000-000000000002",
    ),
    ("after_seq negative", json.dumps({"type": "resume", "after_seq": -1}), None),
    ("after_seq a bool", json.dumps({"type": "resume", "after_seq": True}), None),
    ("after_seq a string", json.dumps({"type": "resume", "after_seq": "0"}), None),
    (
        "body only whitespace",
        json.dumps(
            {
                "type": "message.send",
                "client_id": "c0ffee00-0000-4000-8000-000000000003",
                "body": " \n\t ",
            }
        ),
        "c0ffee00-0000-4000-8000-000000000003",
    ),
    ("typing not a bool", json.dumps({"type": "typing", "active": "yes"}), None),
    ("before_seq a bool", json.dumps({"type": "history", "before_seq": True}), None),
]


async def test_when_frames_are_malformed_then_bad_request_and_socket_stays_usable(cast, admitted):
    async with enter_all(admitted, cast.party_a, cast.party_b) as (a, b):
        for label, text, client_id in BAD_FRAMES:
            await a.send_text(text)
            error = await a.next()
            assert error["type"] == "error" and error["code"] == "bad_request", (label, error)
            assert error.get("client_id") == client_id, (label, error)
            assert error["detail"], label
        await a.communicator.send_to(bytes_data=b'{"type": "ping"}')
        assert (await a.expect_error("bad_request"))["detail"]

        assert await message_rows(admitted) == []
        assert await stored_events(admitted) == [
            (1, "session_started"),
            (2, "admitted"),
            (3, "admitted"),
            (4, "joined"),
            (5, "joined"),
        ]
        await a.send(send_frame("still here"))
        assert (await a.expect("ack"))["seq"] == 6
        assert (await b.wait_for(lambda f: f["type"] == "message"))["body"] == "still here"


# --- rate limits ------------------------------------------------------------------------------


async def test_when_more_messages_than_the_rate_then_rate_limited(cast, admitted, settings):
    settings.ODR_CHAT_RATE_COUNT = 3
    settings.ODR_CHAT_RATE_SECONDS = 3600  # one window for the whole test
    async with enter(cast.party_a, admitted) as a:
        for i in range(3):
            await a.send(send_frame(f"m{i}"))
            assert (await a.wait_for(lambda f: f["type"] in ("ack", "error")))["type"] == "ack"
        client_id = new_client_id()
        await a.send(send_frame("one too many", client_id))
        error = await a.wait_for(lambda f: f["type"] in ("ack", "error"))
        assert (
            error["type"] == "error"
            and error["code"] == "rate_limited"
            and error["client_id"] == client_id
        )
        assert [body for _seq, body in await message_rows(admitted)] == ["m0", "m1", "m2"]

        # Other frames are still answered.
        await a.send({"type": "ping"})
        assert (await a.wait_for(lambda f: f["type"] == "pong"))["last_seq"] == 7


async def test_when_client_keeps_sending_messages_past_the_rate_then_closed_4429(
    cast, admitted, settings
):
    settings.ODR_CHAT_RATE_COUNT = 1
    settings.ODR_CHAT_RATE_SECONDS = 3600
    settings.ODR_WS_FLOOD_CLOSE_AFTER = 2
    async with enter(cast.party_a, admitted) as a:
        await a.send(send_frame("allowed"))
        await a.wait_for(lambda f: f["type"] == "ack")
        for _ in range(2):
            await a.send(send_frame("flood"))
            assert (await a.wait_for(lambda f: f["type"] == "error"))["code"] == "rate_limited"
        await a.send(send_frame("flood"))
        assert await a.closed() == 4429
        assert await message_rows(admitted) == [(5, "allowed")]


async def test_when_client_floods_any_frames_then_rate_limited_then_closed_4429(
    cast, admitted, settings
):
    settings.ODR_WS_FRAME_RATE_COUNT = 3
    settings.ODR_CHAT_RATE_SECONDS = 3600
    settings.ODR_WS_FLOOD_CLOSE_AFTER = 2
    async with enter(cast.party_a, admitted, resume=False) as a:
        for _ in range(3):
            await a.send({"type": "ping"})
            await a.expect("pong")
        for _ in range(2):
            await a.send({"type": "ping"})
            assert (await a.expect("error"))["code"] == "rate_limited"
        await a.send({"type": "ping"})
        assert await a.closed() == 4429
