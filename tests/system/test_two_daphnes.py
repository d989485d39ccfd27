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
import json
import os
import random
import shutil
import socket
import subprocess
import time
import uuid
from collections import Counter, defaultdict

import pytest
import websockets
from django.db import connections
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from sessions.models import EventKind, Room, RoomEvent
from sessions.services import rooms
from tests.asgi_server import daphne_processes, free_port, session_cookie
from tests.sealed import opened

MESSAGES_EACH = 30
KILL_AFTER = 15  # A's first process dies right after A sent this many messages
SEED = 20260
CONVERSATION_TIMEOUT = 30.0  # seconds, the whole asynchronous part
READY_TIMEOUT = 10.0  # a client's (re)connection
SETTLE_TIMEOUT = 10.0  # acks and the last events after the senders are done
QUIET_SECONDS = 7.0  # a lull longer than the channel layer's 5 s blocking read
MAX_CONNECT_FAILURES = 25
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


def open_session_with(case, mediator, *parties) -> Room:
    """Committed before any Daphne looks: the mediator opens a sitting and admits the parties."""
    joint = rooms.room_joint(case)
    rooms.session_start(room=joint, user=mediator)
    for party in parties:
        participant = case.participants.get(user=party)
        rooms.lobby_admit(room=joint, user=mediator, participant_id=participant.public_id)
    return joint


def _db_last_seq(room_pk: int) -> int:
    """Read from a worker thread (never the event loop's); closes its connection
    so that no stray connection outlives the test database."""
    try:
        return Room.objects.values_list("last_seq", flat=True).get(pk=room_pk)
    finally:
        connections.close_all()


class ProtocolFailure(AssertionError):
    pass


class RoomClient:
    """A client as the contract describes one: resume after every (re)connect,
    drop seqs already seen, retry unacked messages with the same client_id."""

    def __init__(self, name: str, cookie: str, room_id: str, processes: list):
        self.name = name
        self.cookie = cookie
        self.room_id = room_id
        self.candidates = processes  # failover order
        self.index = 0
        self.ws = None
        self.ready = asyncio.Event()
        self.lock = asyncio.Lock()
        self.stopping = False
        self.last_seq = 0
        self.stream: list[dict] = []  # message/event frames, de-duplicated, in arrival order
        self.wire: list[int] = []  # every seq that arrived, duplicates included
        self.duplicates = 0
        self.sent: list[tuple[str, str]] = []  # (client_id, body), in send order
        self.unacked: dict[str, str] = {}  # client_id -> body, in send order
        self.acks: dict[str, list[int]] = defaultdict(list)
        self.errors: list[dict] = []
        self.connections: list[dict] = []  # one per socket: url, resume, resent, close
        self.connect_failures: list[str] = []

    # --- the socket ---------------------------------------------------------------

    async def run(self):
        while not self.stopping:
            process = self.candidates[self.index % len(self.candidates)]
            url = f"{process.ws_url}/ws/rooms/{self.room_id}/"
            try:
                ws = await websockets.connect(
                    url,
                    additional_headers={
                        "Cookie": f"sessionid={self.cookie}",
                        "Origin": process.url,
                    },
                    open_timeout=5,
                    close_timeout=2,
                )
            except (OSError, TimeoutError, InvalidHandshake) as exc:
                self.connect_failures.append(f"{url}: {exc!r}")
                if len(self.connect_failures) > MAX_CONNECT_FAILURES:
                    raise ProtocolFailure(
                        f"{self.name} could not (re)connect: {self.connect_failures[-3:]}"
                    )
                self.index += 1
                await asyncio.sleep(0.1)
                continue
            record = {"url": process.url, "resume": self.last_seq, "resent": [], "close": None}
            self.connections.append(record)
            try:
                async with self.lock:
                    await ws.send(json.dumps({"type": "resume", "after_seq": self.last_seq}))
                    for client_id, body in self.unacked.items():
                        await ws.send(self._message_frame(client_id, body))
                        record["resent"].append(client_id)
                    self.ws = ws
                    self.ready.set()
                async for raw in ws:
                    self._handle(json.loads(raw))
            except ConnectionClosed:
                pass
            finally:
                self.ready.clear()
                self.ws = None
            record["close"] = (ws.close_code, ws.close_reason)
            if ws.close_code is not None and 4000 <= ws.close_code < 5000:
                raise ProtocolFailure(
                    f"{self.name} was refused by {process.url}: close {record['close']}"
                )
            if not self.stopping:
                self.index += 1  # that process is gone (or going): try the next one

    def _handle(self, frame: dict):
        kind = frame.get("type")
        if kind in ("message", "event"):
            seq = frame["seq"]
            self.wire.append(seq)
            if seq <= self.last_seq:
                self.duplicates += 1  # the contract: clients drop seqs they have seen
                return
            self.stream.append(frame)
            self.last_seq = seq
        elif kind == "ack":
            self.acks[frame["client_id"]].append(frame["seq"])
            self.unacked.pop(frame["client_id"], None)
        elif kind == "error":
            self.errors.append(frame)

    # --- talking ------------------------------------------------------------------

    @staticmethod
    def _message_frame(client_id: str, body: str) -> str:
        return json.dumps({"type": "message.send", "client_id": client_id, "body": body})

    async def send_message(self, body: str):
        client_id = str(uuid.uuid4())
        async with self.lock:
            self.sent.append((client_id, body))
            self.unacked[client_id] = body
            if self.ws is not None:
                try:
                    await self.ws.send(self._message_frame(client_id, body))
                except ConnectionClosed:
                    pass  # still unacked: re-sent on the next connection

    async def talk(self, count: int, rng: random.Random, after_each=None):
        for i in range(count):
            try:
                await asyncio.wait_for(self.ready.wait(), READY_TIMEOUT)
            except TimeoutError:
                raise ProtocolFailure(
                    f"{self.name} had no connection for {READY_TIMEOUT}s before message {i}"
                ) from None
            await self.send_message(f"{self.name} says #{i:02d} ({uuid.uuid4().hex[:6]})")
            if after_each is not None:
                await after_each(i + 1)
            await asyncio.sleep(rng.uniform(0.005, 0.04))

    async def stop(self):
        self.stopping = True
        if self.ws is not None:
            await self.ws.close()

    def summary(self) -> str:
        return (
            f"{self.name}: last_seq={self.last_seq} stream={[f['seq'] for f in self.stream]} "
            f"wire_duplicates={self.duplicates} unacked={len(self.unacked)} errors={self.errors} "
            f"connections={self.connections} connect_failures={self.connect_failures[-5:]}"
        )


class Sockets:
    """The clients' socket tasks: started, watched for failure, stopped."""

    def __init__(self, *clients: RoomClient):
        self.clients = clients
        self.tasks = [asyncio.create_task(c.run(), name=f"{c.name}'s socket") for c in clients]

    def check(self):
        """A socket task only ends when told to: earlier, it failed."""
        for task in self.tasks:
            if task.done():
                if not task.cancelled() and task.exception() is not None:
                    raise task.exception()
                raise ProtocolFailure(f"{task.get_name()} ended before the test did")

    async def until(self, condition, timeout: float, what: str):
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not await condition():
            self.check()
            if loop.time() > deadline:
                raise ProtocolFailure(f"not within {timeout}s: {what}")
            await asyncio.sleep(0.05)

    async def connected(self):
        async def all_ready():
            return all(c.ready.is_set() for c in self.clients)

        await self.until(all_ready, READY_TIMEOUT, "every client connected")

    async def running(self, *coroutines):
        """Run the coroutines to the end; a failing socket task ends them at once."""
        workers = [asyncio.ensure_future(c) for c in coroutines]
        try:
            while not all(w.done() for w in workers):
                await asyncio.wait([*workers, *self.tasks], return_when=asyncio.FIRST_COMPLETED)
                for worker in workers:
                    if worker.done() and worker.exception() is not None:
                        raise worker.exception()
                self.check()
        finally:
            for worker in workers:
                worker.cancel()

    async def stop(self):
        for client in self.clients:
            await client.stop()
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


def run_async(scenario, timeout: float, context):
    """The asynchronous part, bounded; failures carry the clients' state and the logs."""
    try:
        asyncio.run(asyncio.wait_for(scenario, timeout))
    except ProtocolFailure as failure:
        pytest.fail(f"{failure}\n{context()}", pytrace=False)
    except TimeoutError:
        pytest.fail(f"the clients did not finish within {timeout}s\n{context()}", pytrace=False)


def describe(state: dict, processes: list[tuple[str, object]]) -> str:
    lines = [f"seed={SEED} kill={state.get('kill')}"]
    lines += [client.summary() for key, client in state.items() if isinstance(client, RoomClient)]
    for label, process in processes:
        lines.append(f"--- {label} log ---\n{process.log()[-6000:]}")
    return "\n".join(lines)


async def conversation(state: dict, room_pk: int, room_id: str, cookies: dict, first, second):
    """Fills `state` as it goes, so that a failure can show how far it got."""
    rng = random.Random(SEED)
    a = RoomClient("A", cookies["a"], room_id, [first, second])
    b = RoomClient("B", cookies["b"], room_id, [second])
    state.update(a=a, b=b, kill=None)
    sockets = Sockets(a, b)

    async def kill_midway(sent: int):
        if sent == KILL_AFTER:
            state["kill"] = {
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
        joint.refresh_from_db()
        stored = [
            {"seq": e.seq, "kind": e.kind, "client_id": e.client_id, "body": e.text}
            for e in opened(RoomEvent.objects.filter(room=joint).order_by("seq"))
        ]
        assert [e["seq"] for e in stored] == list(range(1, n + 1)) and joint.last_seq == n, (
            f"the room's seqs are {[e['seq'] for e in stored]}, last_seq {joint.last_seq}\n{context()}"
        )
        stored_ids = Counter(str(e["client_id"]) for e in stored if e["client_id"] is not None)
        for client in (a, b):
            assert len(client.sent) == MESSAGES_EACH
            counts = {cid: stored_ids[cid] for cid, _ in client.sent}
            assert all(count == 1 for count in counts.values()), (
                f"{client.name}'s messages are not stored exactly once: "
                f"{ {cid: c for cid, c in counts.items() if c != 1} }\n{context()}"
            )
            own = {cid for cid, _ in client.sent}
            stored_order = [str(e["client_id"]) for e in stored if str(e["client_id"]) in own]
            assert stored_order == [cid for cid, _ in client.sent], (
                f"{client.name}'s messages are stored out of the order they were sent\n{context()}"
            )
        assert sum(stored_ids.values()) == 2 * MESSAGES_EACH, (
            f"messages nobody sent: {stored_ids}\n{context()}"
        )
        body_of = dict(a.sent + b.sent)
        for e in stored:
            if e["kind"] == EventKind.MESSAGE:
                assert e["body"] == body_of[str(e["client_id"])], (
                    f"seq {e['seq']}: {e}\n{context()}"
                )

        # --- acks: every message acked with the seq it is stored under (a retry: the same seq)
        seq_of = {str(e["client_id"]): e["seq"] for e in stored if e["client_id"] is not None}
        for client in (a, b):
            for cid, _ in client.sent:
                assert client.acks[cid] and set(client.acks[cid]) == {seq_of[cid]}, (
                    f"{client.name}: acks for {cid} carry {client.acks[cid]}, "
                    f"stored at seq {seq_of[cid]}\n{context()}"
                )
            assert client.errors == [], f"{client.name} got error frames\n{context()}"

        # --- each client's de-duplicated stream is the database, frame for frame
        for client in (a, b):
            seqs = [f["seq"] for f in client.stream]
            assert seqs == list(range(1, n + 1)), (
                f"{client.name} saw seqs {seqs}, the room holds 1..{n}\n{context()}"
            )
            for frame, event in zip(client.stream, stored, strict=True):
                if event["kind"] == EventKind.MESSAGE:
                    assert frame["type"] == "message", (
                        f"{client.name} seq {event['seq']}: {frame}\n{context()}"
                    )
                    assert (frame["client_id"], frame["body"]) == (
                        str(event["client_id"]),
                        event["body"],
                    ), f"{client.name} seq {event['seq']}: {frame} != {event}\n{context()}"
                else:
                    assert (frame["type"], frame["kind"]) == ("event", event["kind"]), (
                        f"{client.name} seq {event['seq']}: {frame} != {event}\n{context()}"
                    )

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
