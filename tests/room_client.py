"""A room client as ../shared/contracts/realtime.md describes one, for the
system tests: resume after every (re)connect, drop seqs already seen, retry
unacked messages with the same client_id, ping and resume when the server's
last seq is ahead (docs/protocol.md, `pong`). It records everything it saw so
that a test can compare it with the database."""

import asyncio
import json
import random
import uuid
from collections import Counter, defaultdict

import pytest
import websockets
from django.db import connections
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from sessions.models import EventKind, Room, RoomEvent
from sessions.services import rooms
from tests.sealed import opened

READY_TIMEOUT = 10.0  # a client's (re)connection
MAX_CONNECT_FAILURES = 25
# Close codes after which a client must not reconnect (the contract's refusals);
# any other close (4503 among them: docs/protocol.md) means reconnect and resume.
REFUSALS = {4401, 4403, 4404, 4409, 4429}


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
    drop seqs already seen, retry unacked messages with the same client_id;
    with `ping_every`, ping as the browser does and resume when the `pong`
    shows a later seq than it has seen.

    `processes` are tried in turn (failover order); each has `ws_url` and
    `url` (a Daphne process, or nginx in front of several)."""

    def __init__(self, name: str, cookie: str, room_id: str, processes: list, *,
                 ssl_context=None, ping_every: float | None = None):
        self.name = name
        self.ssl_context = ssl_context
        self.ping_every = ping_every
        self.pong_resumes = 0  # resumes sent because a pong showed a later seq
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
                    **({"ssl": self.ssl_context} if url.startswith("wss:") else {}),
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
            record = {"url": process.url, "resume": self.last_seq, "resent": [], "close": None, "frames": Counter()}
            self.connections.append(record)
            pinger = None
            try:
                async with self.lock:
                    await ws.send(json.dumps({"type": "resume", "after_seq": self.last_seq}))
                    for client_id, body in self.unacked.items():
                        await ws.send(self._message_frame(client_id, body))
                        record["resent"].append(client_id)
                    self.ws = ws
                    self.ready.set()
                pinger = asyncio.create_task(self._ping(ws)) if self.ping_every else None
                async for raw in ws:
                    frame = json.loads(raw)
                    record["frames"][frame.get("type")] += 1
                    self._handle(frame)
            except ConnectionClosed:
                pass
            finally:
                self.ready.clear()
                self.ws = None
                if pinger is not None:
                    pinger.cancel()
            record["close"] = (ws.close_code, ws.close_reason)
            if ws.close_code in REFUSALS:
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
        elif kind == "pong" and frame.get("last_seq", 0) > self.last_seq and self.ws is not None:
            self.pong_resumes += 1
            asyncio.ensure_future(self._send_quietly(self.ws, {"type": "resume", "after_seq": self.last_seq}))

    async def _ping(self, ws):
        while True:
            await asyncio.sleep(self.ping_every)
            await self._send_quietly(ws, {"type": "ping"})

    async def _send_quietly(self, ws, frame: dict):
        try:
            async with self.lock:
                await ws.send(json.dumps(frame))
        except ConnectionClosed:
            pass  # the reconnect resumes anyway

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
            f"pong_resumes={self.pong_resumes} "
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
    lines = [f"{key}={value}" for key, value in state.items() if not isinstance(value, RoomClient)]
    lines += [client.summary() for key, client in state.items() if isinstance(client, RoomClient)]
    for label, process in processes:
        lines.append(f"--- {label} log ---\n{process.log()[-6000:]}")
    return "\n".join(lines)


def check_exactly_once_in_order(room: Room, clients: list[RoomClient], messages_each: int, context) -> None:
    """What guarantees 1-4 of the contract promise, after a conversation:

    * the database holds every `client_id` sent exactly once, each sender's
      messages in the order it sent them, and seqs 1..N without gaps;
    * every message got an ack carrying the seq it is stored under;
    * each client's de-duplicated stream is exactly seqs 1..N, frame for frame
      equal to the database (kind, client_id, body).
    """
    room.refresh_from_db()
    n = room.last_seq
    stored = [
        {"seq": e.seq, "kind": e.kind, "client_id": e.client_id, "body": e.text}
        for e in opened(RoomEvent.objects.filter(room=room).order_by("seq"))
    ]
    assert [e["seq"] for e in stored] == list(range(1, n + 1)), (
        f"the room's seqs are {[e['seq'] for e in stored]}, last_seq {n}\n{context()}"
    )
    stored_ids = Counter(str(e["client_id"]) for e in stored if e["client_id"] is not None)
    for client in clients:
        assert len(client.sent) == messages_each, f"{client.name} sent {len(client.sent)}\n{context()}"
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
    assert sum(stored_ids.values()) == len(clients) * messages_each, (
        f"messages nobody sent: {stored_ids}\n{context()}"
    )
    body_of = dict(item for client in clients for item in client.sent)
    for e in stored:
        if e["kind"] == EventKind.MESSAGE:
            assert e["body"] == body_of[str(e["client_id"])], f"seq {e['seq']}: {e}\n{context()}"

    # acks: every message acked with the seq it is stored under (a retry: the same seq)
    seq_of = {str(e["client_id"]): e["seq"] for e in stored if e["client_id"] is not None}
    for client in clients:
        for cid, _ in client.sent:
            assert client.acks[cid] and set(client.acks[cid]) == {seq_of[cid]}, (
                f"{client.name}: acks for {cid} carry {client.acks[cid]}, "
                f"stored at seq {seq_of[cid]}\n{context()}"
            )
        assert client.errors == [], f"{client.name} got error frames\n{context()}"

    # each client's de-duplicated stream is the database, frame for frame
    for client in clients:
        seqs = [f["seq"] for f in client.stream]
        assert seqs == list(range(1, n + 1)), (
            f"{client.name} saw seqs {seqs}, the room holds 1..{n}\n{context()}"
        )
        for frame, event in zip(client.stream, stored, strict=True):
            if event["kind"] == EventKind.MESSAGE:
                assert frame["type"] == "message", f"{client.name} seq {event['seq']}: {frame}\n{context()}"
                assert (frame["client_id"], frame["body"]) == (str(event["client_id"]), event["body"]), (
                    f"{client.name} seq {event['seq']}: {frame} != {event}\n{context()}"
                )
            else:
                assert (frame["type"], frame["kind"]) == ("event", event["kind"]), (
                    f"{client.name} seq {event['seq']}: {frame} != {event}\n{context()}"
                )
