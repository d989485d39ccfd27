"""The production topology, for real: nginx (Debian's package, running
deploy/nginx/*.conf) over TLS in front of two `daphne --proxy-headers`
processes and the job worker, DEBUG off, on the run's PostgreSQL and a Redis
of the topology's own (tests/topology.py).

`test_conversation_survives_a_killed_daphne_and_a_redis_restart`: four
sockets in one joint room — party A on two devices, party B, the mediator —
all connected through nginx and all talking. Midway one Daphne process is
SIGKILLed: its clients reconnect through nginx (which now sends them to the
other one) and resume. Later Redis is restarted, empty (it keeps nothing on
disk): the channel layer's groups are gone. Clients ping as the browser does.
Afterwards the database and every client's stream hold each message exactly
once, in order (tests/room_client.py, `check_exactly_once_in_order`).

`test_nginx_front`: what the nginx site promises — HTTP/2 over TLS, HTTP
redirected to HTTPS, static files with long-lived caching, the upload limit,
the application's security headers through the proxy, cross-site WebSocket
handshakes refused.
"""

import asyncio
import json
import random
import socket
import ssl
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import websockets
from django.conf import settings

from tests.asgi_server import database_url, session_cookie
from tests.room_client import (
    RoomClient,
    Sockets,
    _db_last_seq,
    check_exactly_once_in_order,
    describe,
    open_session_with,
    run_async,
)
from tests.topology import Topology

MESSAGES_EACH = 20
KILL_AT = 20  # the first Daphne dies when this many messages have been sent in all
REDIS_RESTART_AT = 50  # Redis restarts when this many have been sent
CONVERSATION_TIMEOUT = 90.0
SETTLE_TIMEOUT = 20.0
PING_EVERY = 1.0  # the browser pings every 25 s; the same logic, faster
SEED = 7
SERVER_CRASH = "Exception inside application"

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="session")
def static_root(tmp_path_factory):
    return tmp_path_factory.mktemp("static")


@pytest.fixture
def topology(tmp_path, static_root):
    # The chat rate limit (10 messages / 10 s per user) is not under test here.
    with Topology(
        tmp_path / "topology", database_url=database_url(), master_key=settings.ODR_MASTER_KEY,
        static_root=static_root, ODR_CHAT_RATE_COUNT="1000",
        # One secret for every process, as in production: sessions made here are theirs.
        SECRET_KEY=settings.SECRET_KEY,
    ) as running:
        yield running


def fetch(url: str, context: ssl.SSLContext, *, method: str = "GET", data: bytes | None = None, headers=None):
    """(status, headers, body) without following redirects."""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    opener = urllib.request.build_opener(NoRedirect, urllib.request.HTTPSHandler(context=context))
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with opener.open(request, timeout=30) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def test_nginx_front(topology, active_case, party_a, mediator):
    context = topology.ssl_context()
    nginx = topology.nginx

    # HTTP/2 is offered over TLS (ALPN), and the site answers through the proxy.
    alpn = ssl.create_default_context(cafile=str(nginx.cert))
    alpn.set_alpn_protocols(["h2", "http/1.1"])
    with alpn.wrap_socket(socket.create_connection(("127.0.0.1", nginx.https_port)), server_hostname="127.0.0.1") as tls:
        assert tls.selected_alpn_protocol() == "h2"

    status, headers, body = fetch(f"{topology.url}/readyz", context)
    assert status == 200 and json.loads(body)["status"] == "ready", (status, body, topology.logs())

    # Django sees HTTPS (X-Forwarded-Proto), so it sends HSTS and secure cookies.
    status, headers, _ = fetch(f"{topology.url}/accounts/login/", context)
    assert status == 200
    assert "max-age=" in headers["Strict-Transport-Security"]
    assert "secure" in headers["Set-Cookie"].lower()
    assert "nginx/" not in headers.get("Server", "")

    # Plain HTTP moves to HTTPS.
    status, headers, _ = fetch(f"http://127.0.0.1:{nginx.http_port}/cases/?x=1", context)
    assert status == 301 and headers["Location"] == "https://127.0.0.1/cases/?x=1"

    # Static files come from nginx, hashed and cached for a year.
    manifest = json.loads((Path(topology.env["STATIC_ROOT"]) / "staticfiles.json").read_text())["paths"]
    hashed = manifest["mediation/room.js"]
    status, headers, body = fetch(f"{topology.url}/static/{hashed}", context)
    assert status == 200 and body == (Path(topology.env["STATIC_ROOT"]) / hashed).read_bytes()
    assert "immutable" in headers["Cache-Control"]

    # Bodies far beyond the upload limit stop at nginx (413), before Daphne.
    status, _, _ = fetch(f"{topology.url}/verify/", context, method="POST", data=b"x" * (22 * 1024 * 1024),
                         headers={"Content-Type": "application/octet-stream"})
    assert status == 413

    # A cross-site page cannot open a room socket through the proxy.
    joint = open_session_with(active_case, mediator, party_a)
    cookie = session_cookie(party_a)

    async def handshake(origin: str):
        try:
            async with websockets.connect(
                f"{topology.ws_url}/ws/rooms/{joint.public_id}/",
                additional_headers={"Cookie": f"sessionid={cookie}", "Origin": origin},
                ssl=context, open_timeout=10,
            ) as ws:
                return json.loads(await asyncio.wait_for(ws.recv(), 10))["type"]
        except websockets.exceptions.InvalidStatus as refused:
            return refused.response.status_code

    assert asyncio.run(handshake("https://evil.example")) == 403
    assert asyncio.run(handshake(topology.url)) == "welcome"


async def conversation(state: dict, topology: Topology, room_pk: int, room_id: str, cookies: dict):
    rng = random.Random(SEED)
    context = topology.ssl_context()
    clients = [
        RoomClient(name, cookies[user], room_id, [topology.nginx], ssl_context=context, ping_every=PING_EVERY)
        for name, user in (("A-pc", "a"), ("A-phone", "a"), ("B", "b"), ("M", "m"))
    ]
    state.update(seed=SEED, clients=[c.name for c in clients], kill=None, redis_restart=None)
    for client in clients:
        state[client.name] = client
    sockets = Sockets(*clients)
    sent = {"total": 0}

    async def everyone_has_seen_some():
        return all(c.last_seq > 0 for c in clients)

    async def staged(_count):
        """Mid-conversation, once every client has seen some of it (on a busy
        machine the first frames can take a while)."""
        sent["total"] += 1
        count = sent["total"]
        if count in (KILL_AT, REDIS_RESTART_AT):
            await sockets.until(everyone_has_seen_some, SETTLE_TIMEOUT, "every client saw some of the conversation")
        if count == KILL_AT:
            state["kill"] = {"port": topology.daphnes[0].port, "sent": count, "last_seqs": [c.last_seq for c in clients]}
            await asyncio.to_thread(topology.daphnes[0].kill)
        elif count == REDIS_RESTART_AT:
            state["redis_restart"] = {"sent": count, "last_seqs": [c.last_seq for c in clients]}
            await asyncio.to_thread(topology.redis.restart)

    async def settled():
        state["n"] = await asyncio.to_thread(_db_last_seq, room_pk)
        return all(not c.unacked and c.last_seq == state["n"] for c in clients)

    try:
        await sockets.connected()
        await sockets.running(*(c.talk(MESSAGES_EACH, random.Random(rng.random()), staged) for c in clients))
        await sockets.until(settled, SETTLE_TIMEOUT, "every message acked and every client at the room's last seq")
    finally:
        await sockets.stop()


def test_conversation_survives_a_killed_daphne_and_a_redis_restart(
    topology, active_case, party_a, party_b, mediator, capsys
):
    joint = open_session_with(active_case, mediator, party_a, party_b)
    cookies = {"a": session_cookie(party_a), "b": session_cookie(party_b), "m": session_cookie(mediator)}
    state: dict = {}

    def context() -> str:
        return describe(state, []) + "\n" + topology.logs()

    run_async(conversation(state, topology, joint.pk, str(joint.public_id), cookies), CONVERSATION_TIMEOUT, context)
    clients = [state[name] for name in state["clients"]]

    assert topology.daphnes[0].process.poll() is not None, "the first Daphne was meant to be dead"
    assert topology.daphnes[1].process.poll() is None, f"the second Daphne died\n{context()}"
    assert topology.worker.process.poll() is None, f"the worker died\n{context()}"
    for daphne in topology.daphnes[1:]:
        assert SERVER_CRASH not in daphne.log(), f"a consumer crashed\n{context()}"

    check_exactly_once_in_order(joint, clients, MESSAGES_EACH, context)

    # The failures happened as staged, and the sockets on the killed process moved.
    assert state["kill"] is not None and state["redis_restart"] is not None, context()
    moved = [c for c in clients if len(c.connections) >= 2]
    assert moved, f"no socket was on the killed Daphne: least_conn should have spread them\n{context()}"
    for client in moved:
        assert client.connections[1]["resume"] > 0, f"{client.name} reconnected without resuming\n{context()}"

    with capsys.disabled():
        print(
            f"\n[topology] N={state['n']} events through nginx; daphne on :{state['kill']['port']} killed after "
            f"{state['kill']['sent']} messages, Redis restarted after {state['redis_restart']['sent']}; "
            + "; ".join(
                f"{c.name}: {len(c.connections)} socket(s), {c.duplicates} wire duplicates dropped, "
                f"{c.pong_resumes} pong resumes"
                for c in clients
            )
        )
