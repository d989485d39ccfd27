"""Hostile frames against the real room consumer (odr.asgi.application, a
logged-in session, the test run's channel layer): each gets an `error`
frame with a contract code, or a documented close code, and the socket
stays usable; never "Exception inside application" (the communicator would
raise it here) and never `server_error` (an exception we did not expect).

First the frames the attacker reported, then hypothesis generating frames:
any JSON, escaped and raw lone surrogates, deep nesting, huge numbers,
wrong types for every known frame type."""

import json
import uuid

import pytest
from asgiref.sync import async_to_sync
from channels.layers import channel_layers, get_channel_layer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sessions.consumers import MODERATION
from tests.sessions.room_fixtures import *

pytestmark = pytest.mark.django_db(transaction=True)

ERROR_CODES = {"bad_request", "too_large", "rate_limited", "forbidden", "muted", "locked"}
CLOSE_CODES = {4401, 4403, 4409, 4429, 4503}
SERVER_FRAMES = {
    "welcome", "lobby.waiting", "lobby.admitted", "lobby.declined", "members", "caucus", "history", "pong",
    "ack", "message", "event", "presence", "typing", "error",
}


async def _still_usable(socket) -> None:
    """A ping is answered and a message is stored: the socket survived."""
    await socket.send({"type": "ping"})
    await socket.expect("pong")
    frame = send_frame("still here")
    await socket.send(frame)
    ack = await socket.wait_for(lambda f: f["type"] == "ack")
    assert ack["client_id"] == frame["client_id"]


# --- The attacker's frames ---------------------------------------------------------------------------


REPORTED = [
    ('{"type":"\\ud800"}', "an escaped lone surrogate as the type"),
    ('{"type":"message.send","client_id":"\\udc00","body":"hi"}', "a lone surrogate as the client_id"),
    ("[" * 5_000 + "]" * 5_000, "5,000 nested arrays (10 KB)"),
    ('{"type":"\ud800"}', "a raw lone surrogate in the frame's text"),
    ('{"type":"resume","after_seq":' + "9" * 5_000 + "}", "a 5,000-digit number"),
    ('{"type":"resume","after_seq":99999999999999999999999999}', "a number beyond any sequence"),
    ('{"type":"history","before_seq":1e308}', "a float where a whole number belongs"),
    ('{"type":"message.redact","seq":9223372036854775808}', "a seq past 64 bits"),
]


@pytest.mark.parametrize("text, what", REPORTED, ids=[r[1] for r in REPORTED])
async def test_when_a_reported_crashing_frame_arrives_then_it_gets_an_error_and_the_socket_stays_open(
    cast, admitted, text, what
):
    async with enter(cast.party_a, admitted) as socket:
        await socket.send_text(text)

        error = await socket.expect("error")
        assert error["code"] in ERROR_CODES, error
        assert error["detail"].encode("utf-8")  # encodable, and never the frame echoed back
        assert "\\ud800" not in json.dumps(error) and "\\udc00" not in json.dumps(error)
        await _still_usable(socket)


async def test_when_a_frame_over_the_limit_arrives_then_too_large_and_the_socket_stays_open(cast, admitted, settings):
    async with enter(cast.party_a, admitted) as socket:
        await socket.send_text(json.dumps({"type": "ping", "pad": "x" * settings.ODR_WS_MAX_FRAME_BYTES}))

        await socket.expect_error("too_large")
        await _still_usable(socket)


async def test_when_a_socket_fails_unexpectedly_then_its_user_is_not_left_online(cast, admitted):
    """The safety net under every frame's own handling: a consumer that dies
    anyway (here from a malformed internal message) takes its presence with
    it, instead of leaving a ghost until the presence timeout."""
    async with enter(cast.mediator, admitted) as mediator:
        party = Socket(admitted.public_id, session_key=await login(cast.party_a))
        assert (await party.connect())[0]
        await party.expect("welcome")
        await mediator.wait_for(lambda f: f["type"] == "presence" and str(cast.a.public_id) in f["online"])

        # To the party's sockets only: a kick that names no room (a KeyError).
        await get_channel_layer().group_send(f"user.{cast.party_a.pk}", {"type": "user.kick"})

        with pytest.raises(KeyError):  # the application died (Daphne would close 1011)
            while True:
                await party.communicator.receive_output(ARRIVES)
        presence = await mediator.wait_for(
            lambda f: f["type"] == "presence" and str(cast.a.public_id) not in f["online"]
        )
        assert str(cast.m.public_id) in presence["online"]


# --- Generated frames ------------------------------------------------------------------------------------


scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=8,
)
surrogates = st.characters(categories=["Cs"])
text_with_surrogates = st.lists(st.one_of(st.characters(), surrogates), min_size=1, max_size=8).map("".join)
field_values = st.one_of(
    json_values,
    st.uuids().map(str),
    st.integers(min_value=-(2**70), max_value=2**70),
    text_with_surrogates,
    st.just(""),
)
FRAME_TYPES = ["resume", "message.send", "typing", "history", "ping", *MODERATION, "caucus.close", "unknown.type"]
frame_objects = st.fixed_dictionaries(
    {"type": st.one_of(st.sampled_from(FRAME_TYPES), text_with_surrogates, json_values)},
    optional={
        name: field_values
        for name in ("client_id", "body", "after_seq", "before_seq", "active", "participant", "party", "seq")
    },
)


def _nested(depth: int, opener: str) -> str:
    if opener == "{":
        return '{"a":' * depth + "1" + "}" * depth
    return "[" * depth + "]" * depth


hostile_frames = st.one_of(
    frame_objects.map(json.dumps),  # surrogates escaped: \ud800
    frame_objects.map(lambda f: json.dumps(f, ensure_ascii=False)),  # surrogates raw in the text
    st.text(max_size=40),  # not JSON, or JSON of the wrong shape
    st.builds(_nested, st.integers(min_value=30, max_value=20_000), st.sampled_from(["[", "{"])),
    st.integers(min_value=41, max_value=6_000).map(lambda n: '{"type":"history","before_seq":' + "7" * n + "}"),
    json_values.map(json.dumps),
)


async def _exchange(room, user, frames: list[str]) -> None:
    channel_layers.backends.clear()  # each example runs on an event loop of its own
    async with connect(user, room) as socket:
        assert socket.connected
        welcome = await socket.expect("welcome")
        assert welcome["you"]["admitted"] or welcome["you"]["mediator"]
        for text in frames:
            # As Daphne hands a frame over (the communicator's own helper refuses an empty one).
            await socket.communicator.send_input({"type": "websocket.receive", "text": text})
            await socket.send({"type": "ping"})
            while True:
                frame = await socket.next(skip=())
                if frame["type"] == CLOSE:
                    assert frame["code"] in CLOSE_CODES, frame
                    return
                assert frame["type"] in SERVER_FRAMES, frame
                if frame["type"] == "error":
                    assert frame["code"] in ERROR_CODES, (text[:200], frame)
                    json.dumps(frame).encode("utf-8")
                if frame["type"] == "pong":
                    break


FUZZ = settings(
    max_examples=40, deadline=None, derandomize=True, database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)


@FUZZ
@given(frames=st.lists(hostile_frames, min_size=1, max_size=5))
def test_when_a_party_sends_any_frames_then_each_gets_an_answer_and_nothing_crashes(cast, admitted, frames):
    async_to_sync(_exchange)(admitted, cast.party_a, frames)


@FUZZ
@given(frames=st.lists(hostile_frames, min_size=1, max_size=5))
def test_when_the_mediator_sends_any_frames_then_each_gets_an_answer_and_nothing_crashes(cast, admitted, frames):
    async_to_sync(_exchange)(admitted, cast.mediator, frames)
