"""The load generator: K rooms × P participants as real WebSocket clients.

asyncio + `websockets`, one process. Every client connects through nginx
(TLS) with its own login session, speaks the room protocol
(../shared/contracts/realtime.md) as the browser does — `resume` after
connecting, `ping` every 25 s, `resume` on a gap — and every participant who
may speak sends a message every `interval` seconds (random phase).

A message's latency is from its send to the moment the last member of the
room (its sender included: the sender's own copy arrives through the room
too) has received it. Lost: sent, but some member never received it by the
end of the drain. Duplicated: a member received the same message twice.
"""

import asyncio
import json
import random
import time
import uuid
from dataclasses import dataclass, field

import websockets
from websockets.exceptions import ConnectionClosed

PING_EVERY = 25.0  # as sessions/static/mediation/room.js
CONNECT_CONCURRENCY = 40


@dataclass
class Tracked:
    room: int
    sent: float
    expect: int
    measured: bool
    got: int = 0
    done: float | None = None


@dataclass
class Stats:
    latencies: list[float] = field(default_factory=list)  # seconds, measured messages fully delivered
    sent: int = 0
    measured_sent: int = 0
    acked: int = 0
    frames_in: int = 0
    duplicates: int = 0
    resumes_on_gap: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    closes: int = 0
    connect_failures: int = 0
    lost: int = 0
    measured_seconds: float = 0.0

    def error(self, code: str):
        self.errors[code] = self.errors.get(code, 0) + 1

    def summary(self) -> dict:
        values = sorted(self.latencies)

        def pct(p: float) -> float | None:
            if not values:
                return None
            return round(values[min(len(values) - 1, int(p / 100 * len(values)))] * 1000, 1)

        delivered = len(values)
        return {
            "messages_sent": self.sent,
            "measured_messages": self.measured_sent,
            "measured_delivered_to_all": delivered,
            "acked": self.acked,
            "lost": self.lost,
            "duplicates": self.duplicates,
            "resumes_on_gap": self.resumes_on_gap,
            "errors": self.errors,
            "unexpected_closes": self.closes,
            "connect_failures": self.connect_failures,
            "p50_ms": pct(50),
            "p95_ms": pct(95),
            "p99_ms": pct(99),
            "max_ms": round(values[-1] * 1000, 1) if values else None,
            "messages_per_s": round(delivered / self.measured_seconds, 1) if self.measured_seconds else None,
            "frames_delivered_per_s": round(self.frames_in / max(self.measured_seconds, 1e-9), 1)
            if self.measured_seconds else None,
        }


class Member:
    def __init__(self, run: "LoadRun", room: int, url: str, cookie: str | None, speaks: bool, protocol: str):
        self.run = run
        self.room = room
        self.url = url
        self.cookie = cookie
        self.speaks = speaks
        self.protocol = protocol  # "odr" or "baseline"
        self.ws = None
        self.last_seq = 0
        self.seen: set[str] = set()
        self.open = asyncio.Event()
        self.settled = asyncio.Event()  # the server has taken the socket into its room

    async def connect(self):
        headers = {"Origin": self.run.origin}
        if self.cookie:
            headers["Cookie"] = f"sessionid={self.cookie}"
        self.ws = await websockets.connect(
            self.url, additional_headers=headers, ssl=self.run.ssl_context, open_timeout=60,
            ping_interval=None, max_queue=None, compression=None,
        )
        if self.protocol == "odr":
            await self.ws.send(json.dumps({"type": "resume", "after_seq": 0}))
        else:
            self.settled.set()  # the bare consumer joins its group before accepting
        self.open.set()

    async def reader(self):
        stats = self.run.stats
        try:
            async for raw in self.ws:
                now = time.perf_counter()
                frame = json.loads(raw)
                kind = frame.get("type")
                if kind == "message":
                    stats.frames_in += self.run.measuring
                    if self.protocol == "odr":
                        seq = frame["seq"]
                        if seq <= self.last_seq:
                            stats.duplicates += 1
                            continue
                        if seq > self.last_seq + 1 and self.last_seq:
                            stats.resumes_on_gap += 1  # the consumer fills gaps itself; counted if it did not
                        self.last_seq = seq
                    client_id = frame.get("client_id")
                    if client_id in self.seen:
                        stats.duplicates += 1
                        continue
                    self.seen.add(client_id)
                    tracked = self.run.tracked.get(client_id)
                    if tracked is not None:
                        tracked.got += 1
                        if tracked.got == tracked.expect:
                            tracked.done = now
                            if tracked.measured:
                                stats.latencies.append(now - tracked.sent)
                elif kind == "event":
                    self.last_seq = max(self.last_seq, frame["seq"])
                elif kind == "presence":  # sent once the consumer has entered the room and joined its groups
                    self.settled.set()
                elif kind == "ack":
                    stats.acked += 1
                elif kind == "error":
                    stats.error(frame.get("code", "?"))
                elif kind == "pong" and frame.get("last_seq", 0) > self.last_seq:
                    stats.resumes_on_gap += 1
                    await self.ws.send(json.dumps({"type": "resume", "after_seq": self.last_seq}))
        except ConnectionClosed:
            pass
        if not self.run.stopping:
            stats.closes += 1

    async def talker(self, interval: float):
        await asyncio.sleep(random.uniform(0, interval))
        next_at = time.perf_counter()
        while not self.run.sending_over:
            client_id = str(uuid.uuid4())
            now = time.perf_counter()
            self.run.tracked[client_id] = Tracked(self.room, now, self.run.room_sizes[self.room], self.run.measuring)
            self.run.stats.sent += 1
            self.run.stats.measured_sent += self.run.measuring
            try:
                await self.ws.send(json.dumps({"type": "message.send", "client_id": client_id, "body": f"load {client_id[:8]}"}))
            except ConnectionClosed:
                return
            next_at += interval
            await asyncio.sleep(max(0.0, next_at - time.perf_counter()))

    async def pinger(self):
        await asyncio.sleep(random.uniform(0, PING_EVERY))
        while not self.run.stopping:
            try:
                await self.ws.send('{"type": "ping"}')
            except ConnectionClosed:
                return
            await asyncio.sleep(PING_EVERY)


class LoadRun:
    def __init__(self, *, ws_url: str, origin: str, ssl_context, rooms: list[dict], protocol: str):
        self.origin = origin
        self.ssl_context = ssl_context
        self.stats = Stats()
        self.tracked: dict[str, Tracked] = {}
        self.measuring = False
        self.sending_over = False
        self.stopping = False
        self.room_sizes: list[int] = []
        self.members: list[Member] = []
        for index, room in enumerate(rooms):
            self.room_sizes.append(len(room["members"]))
            for member in room["members"]:
                path = f"/ws/rooms/{room['room']}/" if protocol == "odr" else f"/ws/baseline/{room['room']}/"
                speaks = member.get("role") != "observer"
                cookie = member.get("session") if protocol == "odr" else None
                self.members.append(Member(self, index, ws_url + path, cookie, speaks, protocol))

    async def connect_all(self) -> float:
        """Every socket open (CONNECT_CONCURRENCY handshakes at a time); seconds taken."""
        started = time.perf_counter()
        gate = asyncio.Semaphore(CONNECT_CONCURRENCY)

        async def one(member: Member):
            async with gate:
                for attempt in range(5):
                    try:
                        await member.connect()
                        return
                    except (OSError, TimeoutError, websockets.exceptions.InvalidHandshake):
                        self.stats.connect_failures += 1
                        await asyncio.sleep(0.5 * (attempt + 1))
                raise RuntimeError(f"could not connect {member.url}")

        await asyncio.gather(*(one(m) for m in self.members))
        return time.perf_counter() - started

    async def settle(self, timeout: float) -> float:
        """Wait until the server has taken every socket into its room (it
        answers a handshake at once and enters the room afterwards); seconds."""
        started = time.perf_counter()
        readers = [asyncio.create_task(m.reader()) for m in self.members]
        try:
            await asyncio.wait_for(asyncio.gather(*(m.settled.wait() for m in self.members)), timeout)
        finally:
            for task in readers:
                task.cancel()
            await asyncio.gather(*readers, return_exceptions=True)
        return time.perf_counter() - started

    async def run(self, *, interval: float, warmup: float, duration: float, drain: float, pings: bool,
                  on_measuring=None) -> dict:
        tasks = [asyncio.create_task(m.reader()) for m in self.members]
        tasks += [asyncio.create_task(m.talker(interval)) for m in self.members if m.speaks]
        if pings:
            tasks += [asyncio.create_task(m.pinger()) for m in self.members]
        await asyncio.sleep(warmup)
        self.measuring = True
        started = time.perf_counter()
        if on_measuring is not None:
            await on_measuring()
        await asyncio.sleep(duration)
        self.measuring = False
        self.sending_over = True
        self.stats.measured_seconds = time.perf_counter() - started
        await asyncio.sleep(drain)
        self.stats.lost = sum(1 for t in self.tracked.values() if t.got < t.expect)
        self.stopping = True
        for member in self.members:
            try:
                await member.ws.close()
            except Exception:
                pass
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        return self.stats.summary()
