"""Oversized frames on a real `python -m odr.server` process, from a real
WebSocket client (docs/protocol.md, "Limits").

Two limits: the room's own (ODR_WS_MAX_FRAME_BYTES, 64 KiB), answered with
`error` `too_large` on a socket that stays usable; and the transport's
ceiling (Daphne's --websocket-max-message-size and -frame-size, 1 MiB), past
which Autobahn stops reading: it closes with 1009 ("message too big"), where
by default it dropped the TCP connection without a close frame (1006).
"""

import asyncio
import json
import uuid

import pytest
import websockets
from django.conf import settings
from django.db import connections
from websockets.exceptions import ConnectionClosed

from sessions.models import RoomConnection
from tests.asgi_server import DaphneProcess, free_port, server_env, session_cookie
from tests.room_client import open_session_with

CEILING = 1024 * 1024  # Daphne's default, kept (deploy/systemd/odr-daphne@.service)
CLOSE_MESSAGE_TOO_BIG = 1009
ARRIVES = 10.0


@pytest.fixture
def daphne(tmp_path):
    server = DaphneProcess(free_port(), server_env(REDIS_URL=""), tmp_path / "daphne.log")
    try:
        yield server
    finally:
        server.stop()


async def entered(server, room_id: str, cookie: str):
    ws = await websockets.connect(
        f"{server.ws_url}/ws/rooms/{room_id}/",
        additional_headers={"Cookie": f"sessionid={cookie}", "Origin": server.url},
        open_timeout=ARRIVES, ping_interval=None,
    )
    await ws.send(json.dumps({"type": "resume", "after_seq": 0}))
    await next_frame(ws, "presence")
    return ws


async def next_frame(ws, kind: str) -> dict:
    async def read():
        while True:
            frame = json.loads(await ws.recv())
            if frame["type"] == kind:
                return frame

    return await asyncio.wait_for(read(), ARRIVES)


def presence_rows() -> int:
    try:
        return RoomConnection.objects.count()
    finally:
        connections.close_all()


def message(body: str) -> str:
    return json.dumps({"type": "message.send", "client_id": str(uuid.uuid4()), "body": body})


@pytest.mark.django_db(transaction=True)
def test_when_a_frame_is_over_the_room_limit_but_under_the_ceiling_then_error_too_large_and_the_socket_stays_usable(
    daphne, active_case, mediator, party_a
):
    joint = open_session_with(active_case, mediator, party_a)
    cookie = session_cookie(party_a)
    size = 4 * settings.ODR_WS_MAX_FRAME_BYTES
    assert settings.ODR_WS_MAX_FRAME_BYTES < size < CEILING

    async def scenario():
        ws = await entered(daphne, str(joint.public_id), cookie)
        try:
            await ws.send(message("x" * size))
            error = await next_frame(ws, "error")
            await ws.send(json.dumps({"type": "ping"}))
            pong = await next_frame(ws, "pong")
            await ws.send(message("And now a normal one."))
            ack = await next_frame(ws, "ack")
            return error, pong, ack
        finally:
            await ws.close()

    error, pong, ack = asyncio.run(scenario())
    assert error["code"] == "too_large" and error["detail"]
    assert pong["last_seq"] >= 0
    assert ack["seq"] > 0


@pytest.mark.parametrize(
    "fragments",
    [1, 4],
    ids=["one-frame-over-the-ceiling", "a-message-of-four-frames-each-under-it"],
)
@pytest.mark.django_db(transaction=True)
def test_when_a_message_is_over_the_transport_ceiling_then_the_socket_closes_1009_and_its_presence_is_cleared(
    fragments, daphne, active_case, mediator, party_a
):
    joint = open_session_with(active_case, mediator, party_a)
    cookie = session_cookie(party_a)
    body = "x" * (CEILING + CEILING // 2)
    piece = len(body) // fragments + 1
    assert piece < CEILING or fragments == 1

    async def scenario():
        ws = await entered(daphne, str(joint.public_id), cookie)
        present = await asyncio.to_thread(presence_rows)
        frame = message(body)
        try:
            if fragments == 1:
                await ws.send(frame)
            else:
                await ws.send([frame[i:i + piece] for i in range(0, len(frame), piece)])
            await asyncio.wait_for(ws.wait_closed(), ARRIVES)
        except ConnectionClosed:
            pass
        # The disconnect handler runs after the close: wait for it.
        for _ in range(100):
            if await asyncio.to_thread(presence_rows) == 0:
                break
            await asyncio.sleep(0.1)
        return present, ws.close_code, await asyncio.to_thread(presence_rows)

    present, code, left = asyncio.run(scenario())
    assert present == 1
    assert code == CLOSE_MESSAGE_TOO_BIG, (
        f"close {code} (1006: dropped without a close frame)\n{daphne.log()[-2000:]}"
    )
    assert left == 0


def test_when_the_transport_ceiling_is_not_above_the_room_limit_then_the_server_refuses_to_start(tmp_path):
    """Otherwise frames the room would answer `too_large` would close the socket."""
    started = None
    try:
        with pytest.raises(RuntimeError, match="exited early") as refused:
            started = DaphneProcess(
                free_port(), server_env(REDIS_URL=""), tmp_path / "daphne.log",
                args=("--websocket-max-message-size", str(settings.ODR_WS_MAX_FRAME_BYTES)),
            )
    finally:
        if started is not None:
            started.stop()
    limit = settings.ODR_WS_MAX_FRAME_BYTES
    assert f"--websocket-max-message-size ({limit}) must exceed ODR_WS_MAX_FRAME_BYTES ({limit})" in str(
        refused.value
    )
