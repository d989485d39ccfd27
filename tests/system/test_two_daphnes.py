"""System tests: real Daphne processes, real WebSocket clients, PostgreSQL and Redis.

`test_killed_process_loses_duplicates_and_reorders_nothing`: two
`daphne odr.asgi:application` processes share the test database and Redis.
Client A (party A) talks through the first process, client B (party B)
through the second; both post messages concurrently. Midway the first process
is SIGKILLed. A notices the dropped socket, fails over to the second process,
sends `resume` with the last `seq` it saw, re-sends whatever was not acked
(same `client_id`) and carries on. What is proved (../shared/contracts/
realtime.md, guarantees 1-4):

* the database holds every `client_id` sent exactly once, each sender's
  messages in the order it sent them, and seqs 1..N without gaps;
* each client's de-duplicated stream is exactly seqs 1..N, frame for frame
  equal to the database (kind, client_id, body): nothing lost, nothing
  reordered; duplicates that arrived on the wire are counted and reported
  (the contract lets the server send them: clients drop them);
* every message got an ack carrying the seq it is stored under;
* B received A's messages from before and after the kill, on one socket.

`test_quiet_room_keeps_its_socket`: a room where nobody speaks for a few
seconds keeps its sockets (a lull is normal in a mediation).

The channel layer must span processes, so these run on Redis: the run's own
(REDIS_URL; in CI the machine's), or else a private redis-server they start.
"""

import asyncio
import os
import random
import shutil
import socket
import subprocess
import time

import pytest

from tests.asgi_server import daphne_processes, free_port, session_cookie
from tests.room_client import (
    READY_TIMEOUT,
    ProtocolFailure,
    RoomClient,
    Sockets,
    _db_last_seq,
    check_exactly_once_in_order,
    describe,
    open_session_with,
    run_async,
)

MESSAGES_EACH = 30
KILL_AFTER = 15  # A's first process dies right after A sent this many (and has seen an event)
SEED = 20260
CONVERSATION_TIMEOUT = 30.0  # seconds, the whole asynchronous part
SETTLE_TIMEOUT = 10.0  # acks and the last events after the senders are done
QUIET_SECONDS = 7.0  # a lull longer than the channel layer's 5 s blocking read
SERVER_CRASH = "Exception inside application"  # how Daphne logs a consumer that raised


@pytest.fixture
def redis_channel_layer(tmp_path):
    """Daphne processes share a room only through the Redis channel layer (the
    in-memory layer is per process). The run's Redis when it has one (CI: the
    machine's); otherwise a private `redis-server` (Debian package, installed by
    `make test`) on a free port, stopped afterwards."""
    if os.environ.get("REDIS_URL", ""):
        yield os.environ["REDIS_URL"]
        return
    if os.environ.get("CI") == "true":
        pytest.fail("REDIS_URL is empty: CI must run this test on the machine's Redis.", pytrace=False)
    server = shutil.which("redis-server")
    assert server, "redis-server is not installed: `make test` installs Debian's redis-server"
    port = free_port()
    process = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(10)


async def conversation(state: dict, room_pk: int, room_id: str, cookies: dict, first, second):
    """Fills `state` as it goes, so that a failure can show how far it got."""
    rng = random.Random(SEED)
    a = RoomClient("A", cookies["a"], room_id, [first, second])
    b = RoomClient("B", cookies["b"], room_id, [second])
    state.update(seed=SEED, a=a, b=b, kill=None)
    sockets = Sockets(a, b)

    async def kill_midway(sent: int):
        # Midway, once A has seen some of the conversation (on a busy machine
        # the first frames can take a while), so that A's resume carries a seq.
        if sent == KILL_AFTER:
            async def a_has_seen_some():
                return a.last_seq > 0

            await sockets.until(a_has_seen_some, READY_TIMEOUT, "A saw the first events")
            state["kill"] = {
                "a_sent": sent,
                "a_unacked": list(a.unacked),
                "a_last_seq": a.last_seq,
                "b_last_seq": b.last_seq,
                "b_sent": len(b.sent),
            }
            await asyncio.to_thread(first.kill)

    async def settled():
        state["n"] = await asyncio.to_thread(_db_last_seq, room_pk)
        return not a.unacked and not b.unacked and a.last_seq == b.last_seq == state["n"]

    try:
        await sockets.connected()
        await sockets.running(
            a.talk(MESSAGES_EACH, random.Random(rng.random()), kill_midway),
            b.talk(MESSAGES_EACH, random.Random(rng.random())),
        )
        await sockets.until(
            settled, SETTLE_TIMEOUT, "every message acked and both clients at the room's last seq"
        )
    finally:
        await sockets.stop()


@pytest.mark.django_db(transaction=True)
def test_killed_process_loses_duplicates_and_reorders_nothing(
    redis_channel_layer, active_case, party_a, party_b, mediator, tmp_path, capsys
):
    joint = open_session_with(active_case, mediator, party_a, party_b)
    cookies = {"a": session_cookie(party_a), "b": session_cookie(party_b)}

    # The chat rate limit (10 messages / 10 s per user) is not under test here.
    with daphne_processes(2, tmp_path, REDIS_URL=redis_channel_layer, ODR_CHAT_RATE_COUNT="1000") as (first, second):
        state: dict = {}

        def context() -> str:
            return describe(state, [("daphne 1 (killed)", first), ("daphne 2", second)])

        run_async(
            conversation(state, joint.pk, str(joint.public_id), cookies, first, second),
            CONVERSATION_TIMEOUT,
            context,
        )
        a, b, n = state["a"], state["b"], state["n"]
        assert first.process.poll() is not None, "daphne 1 was meant to be dead"
        assert second.process.poll() is None, f"daphne 2 died\n{context()}"
        assert SERVER_CRASH not in second.log(), f"a consumer crashed on daphne 2\n{context()}"

        # --- the database: every client_id once, seqs 1..N, each sender's order kept
        check_exactly_once_in_order(joint, [a, b], MESSAGES_EACH, context)

        # --- the failover happened as staged: A moved to daphne 2 and resumed; B never moved
        assert state["kill"] is not None, context()
        assert a.connections[0]["url"] == first.url, context()
        assert len(a.connections) >= 2 and a.connections[-1]["url"] == second.url, (
            f"A did not fail over to daphne 2\n{context()}"
        )
        assert a.connections[1]["resume"] > 0, (
            f"A's resume after the kill did not carry its last seq\n{context()}"
        )
        assert len(b.connections) == 1 and b.connections[0]["url"] == second.url, (
            f"B's socket on daphne 2 was not meant to drop\n{context()}"
        )
        a_ids = [cid for cid, _ in a.sent]
        b_got = [
            f["client_id"]
            for f in b.stream
            if f["type"] == "message" and f["client_id"] in set(a_ids)
        ]
        assert b_got == a_ids, (
            f"B did not get all of A's messages (sent before the kill: {KILL_AFTER}, after: "
            f"{MESSAGES_EACH - KILL_AFTER}) in order\n{context()}"
        )

    with capsys.disabled():
        print(
            f"\n[two daphnes] N={n} events; daphne 1 killed after A's message {KILL_AFTER} "
            f"(A then had {len(state['kill']['a_unacked'])} unacked, resumed after seq "
            f"{a.connections[1]['resume']}, re-sent {len(a.connections[1]['resent'])}); "
            f"duplicates on the wire: A={a.duplicates}, B={b.duplicates}"
        )


@pytest.mark.django_db(transaction=True)
def test_quiet_room_keeps_its_socket(redis_channel_layer, active_case, party_a, mediator, tmp_path):
    """Nobody speaks for a few seconds: the socket stays open, the next message
    is acked on it and the server logs no crash."""
    joint = open_session_with(active_case, mediator, party_a)
    cookie = session_cookie(party_a)

    with daphne_processes(1, tmp_path, REDIS_URL=redis_channel_layer) as (server,):
        state: dict = {}

        def context() -> str:
            return describe(state, [("daphne", server)])

        async def quiet_then_speak():
            client = RoomClient("A", cookie, str(joint.public_id), [server])
            state["a"] = client
            sockets = Sockets(client)

            async def acked():
                return bool(client.sent) and not client.unacked

            async def never():
                return False

            try:
                await sockets.connected()
                with pytest.raises(ProtocolFailure, match="not within"):
                    await sockets.until(never, QUIET_SECONDS, "the quiet spell")
                await client.send_message("Are you still there?")
                await sockets.until(acked, READY_TIMEOUT, "the message after the quiet spell acked")
            finally:
                await sockets.stop()

        run_async(quiet_then_speak(), QUIET_SECONDS + 2 * READY_TIMEOUT, context)
        client = state["a"]
        assert SERVER_CRASH not in server.log(), (
            f"a consumer crashed while the room was quiet for {QUIET_SECONDS}s\n{context()}"
        )
        assert len(client.connections) == 1, (
            f"the socket dropped while the room was quiet for {QUIET_SECONDS}s: "
            f"{client.connections}\n{context()}"
        )
