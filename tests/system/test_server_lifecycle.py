"""Stopping a Daphne: `python -m odr.server` (odr/server.py), real processes.

* A production-like process (PostgreSQL, a Redis of its own) with 150 room
  sockets of admitted participants, some of them posting, gets SIGTERM: it
  stops listening, every socket gets close 4503 (reconnect and resume), the
  presence rows of its sockets are gone, every acknowledged message is
  stored, and it exits 0 within its grace period. (Before odr/server.py, the
  same process never exited: its database threads waited on the stopped
  event loop while the interpreter waited for them.)
* A database thread stuck on a lock, or an event loop blocked for good, does
  not keep the process alive past its grace period; it exits 1 and its log
  shows where it was stuck.
* `make serve` (the launcher `make run` ends with): SIGTERM or SIGINT or
  SIGHUP to the process group, or SIGTERM to make alone, stop Daphne and the
  worker within seconds and leave no process behind.

The frame size limits are in test_server_frame_limits.py.
"""

import asyncio
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import psycopg
import pytest
import websockets
from django.core.management import call_command
from django.db import connection, connections
from websockets.exceptions import ConnectionClosed

from sessions.consumers import CLOSE_SERVICE_RESTART
from sessions.models import RoomConnection, RoomEvent
from tests.asgi_server import ROOT, DaphneProcess, database_url, free_port, server_env, session_cookie
from tests.room_client import open_session_with
from tests.topology import RedisServer, wait_for_port

ROOMS, PER_ROOM = 10, 15  # 150 sockets: a mediator, 2 parties, 2 representatives, observers
TALKERS = 30  # sockets posting while the SIGTERM arrives
GRACE = 15  # seconds: 150 sockets' disconnect handlers on this shared 2-core machine
SHORT_GRACE = 3  # for the processes that cannot drain
# Signal to the process gone, as seen from here: the process's own bound
# plus starting to notice (a loaded machine); a hung process never exits.
SLACK = 3.0
ENTERED = 60.0  # seconds for every socket to be in its room (150 handshakes)


def presence_rows() -> int:
    try:
        return RoomConnection.objects.count()
    finally:
        connections.close_all()


def stored_client_ids() -> set[str]:
    try:
        return {str(c) for c in RoomEvent.objects.exclude(client_id=None).values_list("client_id", flat=True)}
    finally:
        connections.close_all()


async def enter(server, room_id: str, cookie: str):
    """A socket in its room: `presence` comes once the consumer has entered
    the room and joined its groups (admitted participants)."""
    ws = await websockets.connect(
        f"{server.ws_url}/ws/rooms/{room_id}/",
        additional_headers={"Cookie": f"sessionid={cookie}", "Origin": server.url},
        open_timeout=ENTERED, ping_interval=None, max_queue=None,
    )
    await ws.send(json.dumps({"type": "resume", "after_seq": 0}))
    while json.loads(await ws.recv())["type"] != "presence":
        pass
    return ws


async def enter_all(server, members: list[tuple[str, str]]) -> list:
    gate = asyncio.Semaphore(20)

    async def one(room_id, cookie):
        async with gate:
            return await enter(server, room_id, cookie)

    return await asyncio.wait_for(asyncio.gather(*(one(r, c) for r, c in members)), ENTERED)


async def close_code(ws, acked: set[str]) -> int:
    """The code of the close frame the server sent (1006: none, the
    connection just dropped); meanwhile, the client_ids acknowledged."""
    try:
        async for raw in ws:
            frame = json.loads(raw)
            if frame["type"] == "ack":
                acked.add(frame["client_id"])
    except ConnectionClosed:
        pass
    return ws.close_code


async def post_until_closed(ws):
    while True:
        try:
            frame = {"type": "message.send", "client_id": str(uuid.uuid4()), "body": "still here"}
            await ws.send(json.dumps(frame))
        except ConnectionClosed:
            return
        await asyncio.sleep(0.1)


def is_listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


@contextmanager
def presence_locked():
    """Another connection holds a lock that every write to the presence
    table waits on (PostgreSQL: until released; SQLite: for its 20 s busy
    timeout, longer than the grace period here)."""
    if connection.vendor == "postgresql":
        holder = psycopg.connect(database_url())
        holder.execute("LOCK TABLE mediation_roomconnection IN ACCESS EXCLUSIVE MODE")
    else:
        holder = sqlite3.connect(connection.settings_dict["NAME"], isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
    try:
        yield
    finally:
        holder.close()


@pytest.fixture
def own_redis(tmp_path):
    """A Redis of this test's own: the drain is not disturbed by other runs'
    groups, and nothing is left in the machine's Redis."""
    server = RedisServer(tmp_path / "redis")
    try:
        yield server.url
    finally:
        server.stop()


@pytest.mark.django_db(transaction=True)
def test_when_a_daphne_with_many_room_sockets_gets_sigterm_then_each_closes_4503_and_it_exits_0(
    own_redis, tmp_path
):
    fixtures_path = tmp_path / "rooms.json"
    call_command(
        "seed_load", rooms=ROOMS, participants=PER_ROOM, out=str(fixtures_path),
        prefix=f"drain{uuid.uuid4().hex[:6]}", allow_without_debug=True,
    )
    members = [
        (room["room"], member["session"])
        for room in json.loads(fixtures_path.read_text())["rooms"]
        for member in room["members"]
    ]
    env = server_env(
        REDIS_URL=own_redis, ODR_SHUTDOWN_GRACE_SECONDS=str(GRACE),
        # Rates are not under test: the talkers post faster than a person.
        ODR_CHAT_RATE_COUNT="100000", ODR_WS_FRAME_RATE_COUNT="100000",
    )
    server = DaphneProcess(free_port(), env, tmp_path / "daphne.log")
    try:

        async def scenario():
            sockets = await enter_all(server, members)
            in_rooms = await asyncio.to_thread(presence_rows)
            acked: set[str] = set()
            closes = [asyncio.create_task(close_code(ws, acked)) for ws in sockets]
            talkers = [asyncio.create_task(post_until_closed(ws)) for ws in sockets[:TALKERS]]
            await asyncio.sleep(1)  # messages in flight
            started = time.monotonic()
            server.process.send_signal(signal.SIGTERM)
            codes = await asyncio.wait_for(asyncio.gather(*closes), GRACE + SLACK)
            listening = is_listening(server.port)
            returncode = await asyncio.to_thread(server.process.wait, GRACE + SLACK)
            gone_after = time.monotonic() - started
            await asyncio.gather(*talkers)
            return in_rooms, codes, listening, returncode, gone_after, acked

        in_rooms, codes, listening, returncode, gone_after, acked = asyncio.run(scenario())
    finally:
        server.stop()
    log = server.log()
    assert in_rooms == len(members) == ROOMS * PER_ROOM
    assert codes == [CLOSE_SERVICE_RESTART] * len(members), (
        f"close codes {sorted(set(codes))}, 1006 meaning dropped without a close frame\n{log[-3000:]}"
    )
    assert not listening, "the port still accepted connections after the sockets were closed"
    assert returncode == 0, f"not drained\n{log[-5000:]}"
    assert gone_after < GRACE + SLACK
    assert re.search(r"drained in [\d.]+ s", log)
    assert presence_rows() == 0, "presence rows of the closed sockets were left behind"
    assert acked, "no message was acknowledged while the talkers posted"
    assert acked <= stored_client_ids(), "a message was acknowledged but not stored"


@pytest.mark.django_db(transaction=True)
def test_when_a_database_thread_is_stuck_then_sigterm_still_ends_the_process_within_its_grace_period(
    own_redis, active_case, mediator, party_a, party_b, tmp_path
):
    joint = open_session_with(active_case, mediator, party_a, party_b)
    cookies = [session_cookie(user) for user in (mediator, party_a, party_b)]
    env = server_env(REDIS_URL=own_redis, ODR_SHUTDOWN_GRACE_SECONDS=str(SHORT_GRACE))
    server = DaphneProcess(free_port(), env, tmp_path / "daphne.log")
    try:

        async def scenario():
            sockets = await enter_all(server, [(str(joint.public_id), cookie) for cookie in cookies])
            acked: set[str] = set()
            closes = [asyncio.create_task(close_code(ws, acked)) for ws in sockets]
            with presence_locked():
                # Each ping's presence update waits on the lock, in a database
                # thread; so will each disconnect handler's presence deletion.
                for ws in sockets:
                    await ws.send(json.dumps({"type": "ping"}))
                await asyncio.sleep(0.5)
                started = time.monotonic()
                server.process.send_signal(signal.SIGTERM)
                codes = await asyncio.wait_for(asyncio.gather(*closes), SHORT_GRACE + SLACK)
                returncode = await asyncio.to_thread(server.process.wait, SHORT_GRACE + SLACK)
                return codes, returncode, time.monotonic() - started

        codes, returncode, gone_after = asyncio.run(scenario())
    finally:
        server.stop()
    log = server.log()
    # The close frames go out from the event loop, which is not stuck.
    assert codes == [CLOSE_SERVICE_RESTART] * 3, log[-3000:]
    assert returncode == 1, log[-5000:]
    assert gone_after < SHORT_GRACE + SLACK
    assert "not drained" in log
    assert "in connection_seen" in log, f"the stuck thread's stack is not in the log\n{log[-5000:]}"


def test_when_the_event_loop_is_blocked_then_sigterm_still_ends_the_process_within_its_grace_period(tmp_path):
    env = server_env(ODR_SHUTDOWN_GRACE_SECONDS=str(SHORT_GRACE))
    server = DaphneProcess(
        free_port(), env, tmp_path / "daphne.log", application="tests.system.stuck_application:application"
    )
    try:
        request = socket.create_connection(("127.0.0.1", server.port), timeout=1)
        request.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        deadline = time.monotonic() + 10
        while "blocking the event loop" not in server.log():
            assert time.monotonic() < deadline, server.log()
            time.sleep(0.05)
        started = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        returncode = server.process.wait(SHORT_GRACE + SLACK)
        gone_after = time.monotonic() - started
        request.close()
    finally:
        server.stop()
    log = server.log()
    assert returncode == 1, log
    assert gone_after < SHORT_GRACE + SLACK
    # faulthandler's watchdog: every thread's stack, the blocked one included.
    assert "in block_the_event_loop" in log, log


# --- make serve: the launcher `make run` ends with -----------------------------------


def descendants(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    children = [int(child) for child in out.split()]
    return children + [grandchild for child in children for grandchild in descendants(child)]


def alive(pid: int) -> bool:
    """Running, that is: a zombie waiting for its parent has stopped."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return not re.search(r"^State:\s+Z", status, flags=re.MULTILINE)


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ")
    except FileNotFoundError:
        return ""


STOP_WITHIN = 8.0  # seconds: two sockets to drain and an idle worker; the launcher kills only at grace + 2


@pytest.mark.parametrize(
    "signum, to",
    [
        (signal.SIGTERM, "process group"),  # a supervisor, or `kill -TERM -<pgid>`
        (signal.SIGINT, "process group"),  # Ctrl-C in the terminal
        (signal.SIGHUP, "process group"),  # the terminal closed
        (signal.SIGTERM, "make"),  # `kill <make's pid>`: make passes it on to its child
    ],
    ids=["sigterm-group", "sigint-group", "sighup-group", "sigterm-make"],
)
@pytest.mark.django_db(transaction=True)
def test_when_make_serve_is_signalled_then_daphne_and_the_worker_stop_within_seconds_and_nothing_is_left(
    signum, to, active_case, mediator, party_a, tmp_path
):
    joint = open_session_with(active_case, mediator, party_a)
    cookies = [session_cookie(user) for user in (mediator, party_a)]
    port = free_port()
    # As `make run`: the in-memory channel layer; the test run's database
    # rather than a new SQLite file in the project directory.
    env = server_env(REDIS_URL="")
    output = open(tmp_path / "make.log", "wb")
    # Its own session and process group, as a terminal's foreground job.
    make = subprocess.Popen(
        ["make", "--no-print-directory", "-s", "serve", "HOST=127.0.0.1", f"PORT={port}"],
        cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True,
    )
    processes = {make.pid: "make"}  # pid → command line, everything make started

    def log() -> str:
        return (tmp_path / "make.log").read_text(errors="replace")

    try:
        wait_for_port(port, "make serve", make, timeout=60, log=log)
        deadline = time.monotonic() + 30
        while not (
            any("db_worker" in command_line(pid) for pid in descendants(make.pid))
            and any("odr.asgi:application" in command_line(pid) for pid in descendants(make.pid))
        ):
            assert time.monotonic() < deadline, f"Daphne and the worker did not both start\n{log()}"
            time.sleep(0.1)
        processes.update({pid: command_line(pid) for pid in descendants(make.pid)})
        server = SimpleNamespace(url=f"http://127.0.0.1:{port}", ws_url=f"ws://127.0.0.1:{port}")

        async def scenario():
            sockets = await enter_all(server, [(str(joint.public_id), cookie) for cookie in cookies])
            acked: set[str] = set()
            closes = [asyncio.create_task(close_code(ws, acked)) for ws in sockets]
            talkers = [asyncio.create_task(post_until_closed(ws)) for ws in sockets]
            await asyncio.sleep(0.5)
            started = time.monotonic()
            if to == "make":
                os.kill(make.pid, signum)
            else:
                os.killpg(make.pid, signum)
            codes = await asyncio.wait_for(asyncio.gather(*closes), STOP_WITHIN)
            while any(alive(pid) for pid in processes):  # make included: a zombie once it exits
                if time.monotonic() - started > STOP_WITHIN:
                    break
                await asyncio.sleep(0.05)
            await asyncio.gather(*talkers)
            return codes, time.monotonic() - started

        codes, stopped_after = asyncio.run(scenario())
        left = {pid: command for pid, command in processes.items() if alive(pid)}
    finally:
        for pid in processes:  # whatever this test started and is still there
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        make.wait()
        output.close()
    assert not left, f"still running after {STOP_WITHIN} s: {left}\n{log()}"
    assert stopped_after < STOP_WITHIN
    assert codes == [CLOSE_SERVICE_RESTART] * len(cookies), log()
    assert "drained in" in log(), log()
    assert "killing" not in log(), f"the launcher had to kill a child\n{log()}"
