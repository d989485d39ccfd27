"""Redis Sentinel failover, for real (docs/operations.md, "Redis Sentinel").

`test_when_the_master_dies_then_channel_layer_and_cache_follow_sentinel`: a
Redis master, its replica and a sentinel watching them (Debian's
redis-server, on free ports, with passwords as in production) serve one
Django process configured by REDIS_SENTINELS alone (REDIS_URL empty). A
group_send reaches its receiver and the cache stores a counter, on the
master. Then the master is SIGKILLed; once the sentinel has promoted the
replica, the same process — same channel layer, same cache pool — sends and
receives again, still reads the counter written before the failover, and
writes to the new master.
"""

import os
import select
import signal
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

import pytest
import redis
from django.core.exceptions import ImproperlyConfigured
from redis.sentinel import Sentinel

from odr.redis_sentinel import sentinel_addresses
from tests.asgi_server import ROOT, free_port
from tests.topology import REDIS_SERVER, wait_for_port

MASTER_NAME = "odr-test"
REDIS_PASSWORD = "server-secret"
SENTINEL_PASSWORD = "sentinel-secret"
REDIS_DB = 2
STEP_TIMEOUT = 30.0  # seconds, any one wait (Django starting, the failover)

# The Django process under test. It runs each phase when told on stdin and
# answers with one line on stdout: what the receiver got, and the counter.
CLIENT = """
import asyncio, sys
import django

django.setup()
from channels.layers import get_channel_layer
from django.core.cache import cache
from redis.exceptions import RedisError


async def phase(layer, name):
    channel = await layer.new_channel()
    await layer.group_add("failover", channel)
    await layer.group_send("failover", {"type": "probe", "phase": name})
    message = await asyncio.wait_for(layer.receive(channel), 10)
    await layer.group_discard("failover", channel)
    counter = cache.get("counter", 0)
    cache.set("counter", counter + 1, None)
    print(message["phase"], counter, flush=True)


async def main():
    layer = get_channel_layer()
    # The event loop runs between phases, as in Daphne, and so sees the
    # connections that the dead master's host closed.
    while line := await asyncio.to_thread(sys.stdin.readline):
        try:
            await phase(layer, line.strip())
        except RedisError:
            # A pooled connection to the dead master can still fail once, if
            # the loop has not yet seen it closed (on a busy machine). Daphne's
            # consumers close such sockets with 4503 and the clients come back;
            # here the phase runs again, on a connection to the master Sentinel
            # names now. A second failure is the test's failure.
            await phase(layer, line.strip())


asyncio.run(main())
"""


def _start_redis(workdir: Path, name: str, port: int, *args: str) -> subprocess.Popen:
    log = workdir / f"{name}.log"
    process = subprocess.Popen(
        [REDIS_SERVER, *args, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(workdir),
         "--logfile", str(log)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    wait_for_port(port, name, process, log=lambda: log.read_text(errors="replace")[-3000:])
    return process


def _until(condition, what: str, logs: list[Path]):
    deadline = time.monotonic() + STEP_TIMEOUT
    while time.monotonic() < deadline:
        try:
            if result := condition():
                return result
        except redis.RedisError:
            pass
        time.sleep(0.1)
    tails = "\n".join(f"--- {log.name}\n{log.read_text(errors='replace')[-2000:]}" for log in logs if log.exists())
    pytest.fail(f"timed out waiting for {what}\n{tails}", pytrace=False)


@contextmanager
def sentinel_watched_redis(workdir: Path):
    """A master, its replica and one sentinel (quorum 1) that fails over within
    a second or two of the master going silent."""
    master_port, replica_port, sentinel_port = free_port(), free_port(), free_port()
    secured = ("--save", "", "--appendonly", "no", "--requirepass", REDIS_PASSWORD,
               "--masterauth", REDIS_PASSWORD)
    config = workdir / "sentinel.conf"
    config.write_text(
        f"sentinel monitor {MASTER_NAME} 127.0.0.1 {master_port} 1\n"
        f"sentinel auth-pass {MASTER_NAME} {REDIS_PASSWORD}\n"
        f"sentinel down-after-milliseconds {MASTER_NAME} 1000\n"
        f"sentinel failover-timeout {MASTER_NAME} 10000\n"
        f"requirepass {SENTINEL_PASSWORD}\n"
    )
    logs = [workdir / name for name in ("master.log", "replica.log", "sentinel.log")]
    processes = {}
    try:
        processes["master"] = _start_redis(workdir, "master", master_port, *secured)
        processes["replica"] = _start_redis(
            workdir, "replica", replica_port, *secured, "--replicaof", "127.0.0.1", str(master_port)
        )
        replica = redis.Redis(port=replica_port, password=REDIS_PASSWORD)
        _until(lambda: replica.info("replication")["master_link_status"] == "up", "the replica to sync", logs)
        processes["sentinel"] = _start_redis(workdir, "sentinel", sentinel_port, str(config), "--sentinel")
        sentinel = redis.Redis(port=sentinel_port, password=SENTINEL_PASSWORD, decode_responses=True)
        _until(
            lambda: any(r["master-link-status"] == "ok" and not r["is_disconnected"]
                        for r in sentinel.sentinel_slaves(MASTER_NAME)),
            "the sentinel to know the replica", logs,
        )
        yield {
            "master": processes["master"], "master_port": master_port, "replica_port": replica_port,
            "sentinel_port": sentinel_port, "logs": logs,
        }
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.terminate()
                process.wait(10)


class DjangoProcess:
    """The CLIENT script under odr.settings, driven one phase at a time."""

    def __init__(self, env: dict[str, str], log: BinaryIO):
        self.log_path = Path(log.name)
        self.process = subprocess.Popen(
            [sys.executable, "-c", CLIENT], cwd=ROOT, env=env, text=True,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
        )

    def run_phase(self, name: str) -> tuple[str, int]:
        self.process.stdin.write(name + "\n")
        self.process.stdin.flush()
        ready, _, _ = select.select([self.process.stdout], [], [], STEP_TIMEOUT)
        line = self.process.stdout.readline() if ready else ""
        if not line:
            pytest.fail(f"phase {name!r} gave no answer:\n{self.log_path.read_text()[-3000:]}", pytrace=False)
        phase, counter = line.split()
        return phase, int(counter)

    def stop(self):
        if self.process.poll() is None:
            self.process.stdin.close()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


def _client_env(tmp_path: Path, sentinel_port: int) -> dict[str, str]:
    env = {
        key: value for key, value in os.environ.items()
        if key not in {"REDIS_URL", "ODR_ENV_FILE", "DJANGO_ALLOW_ASYNC_UNSAFE"}
    }
    prefix = f"t{uuid.uuid4().hex[:12]}"
    env.update(
        DJANGO_SETTINGS_MODULE="odr.settings",
        # Nothing touches the database; settings only need one named.
        DATABASE_URL=f"sqlite:///{tmp_path / 'unused.sqlite3'}",
        REDIS_SENTINELS=f"127.0.0.1:{sentinel_port}",
        REDIS_SENTINEL_MASTER=MASTER_NAME,
        REDIS_SENTINEL_PASSWORD=SENTINEL_PASSWORD,
        REDIS_PASSWORD=REDIS_PASSWORD,
        REDIS_DB=str(REDIS_DB),
        CHANNEL_LAYER_PREFIX=prefix,
        CACHE_PREFIX=prefix,
        PYTHONUNBUFFERED="1",
    )
    return env


def test_when_the_master_dies_then_channel_layer_and_cache_follow_sentinel(tmp_path):
    with sentinel_watched_redis(tmp_path) as servers, open(tmp_path / "client.log", "wb") as log:
        env = _client_env(tmp_path, servers["sentinel_port"])
        counter_key = f"{env['CACHE_PREFIX']}:1:counter"  # Django's key for "counter", version 1
        client = DjangoProcess(env, log)
        try:
            assert client.run_phase("before") == ("before", 0)
            master = redis.Redis(port=servers["master_port"], password=REDIS_PASSWORD, db=REDIS_DB)
            assert master.get(counter_key) == b"1", "the cache did not write to the master's REDIS_DB"
            # The counter is on the replica before the master dies (replication is asynchronous).
            assert master.wait(1, 5000) == 1

            servers["master"].send_signal(signal.SIGKILL)
            servers["master"].wait(10)
            # As the clients ask: for a moment after the switch the sentinel
            # already names the new master but still flags the master down.
            sentinels = Sentinel([("127.0.0.1", servers["sentinel_port"])],
                                 sentinel_kwargs={"password": SENTINEL_PASSWORD})
            _until(
                lambda: sentinels.discover_master(MASTER_NAME) == ("127.0.0.1", servers["replica_port"]),
                "the sentinel to promote the replica", servers["logs"],
            )

            assert client.run_phase("after") == ("after", 1)
        finally:
            client.stop()
        new_master = redis.Redis(port=servers["replica_port"], password=REDIS_PASSWORD, db=REDIS_DB)
        assert new_master.get(counter_key) == b"2"
        assert new_master.info("replication")["role"] == "master"


def test_when_sentinel_addresses_are_read_then_each_is_host_and_port():
    assert sentinel_addresses(["10.0.0.1:26379", " 10.0.0.2:26380", "[::1]:26381"]) == [
        ("10.0.0.1", 26379), ("10.0.0.2", 26380), ("::1", 26381),
    ]
    with pytest.raises(ImproperlyConfigured, match="10.0.0.3"):
        sentinel_addresses(["10.0.0.3"])
