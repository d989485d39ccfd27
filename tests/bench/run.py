"""`make bench`: the production topology under load, figures to docs/performance.md.

1. A database of its own (`odr_bench` on the run's PostgreSQL), migrated,
   and the load fixtures: `manage.py seed_load --rooms K --participants P`.
2. In-process figures (tests/bench/inprocess.py): an agreement PDF rendered
   and sealed (p50 over 20), a room page's server time and SQL queries.
3. The baseline: a bare Channels broadcast consumer (tests/bench/baseline.py)
   on two Daphnes behind nginx, on a Redis of its own: K×P sockets, each
   participant sending a message every `--interval` seconds.
4. The same load on the platform itself (tests/topology.py: nginx → 2 Daphne
   + the worker, DEBUG off, PostgreSQL, Redis), plus Daphne's memory per
   connection; then faster rates until p99 passes 250 ms, to find the
   highest sustained rate.

Usage: python -m tests.bench.run [--rooms 400] [--participants 5] [--interval 10]
       [--duration 60] [--out docs/performance.md] [--profile]
"""

import argparse
import asyncio
import base64
import datetime
import json
import os
import platform
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg

from tests.asgi_server import ROOT
from tests.bench.loadgen import LoadRun
from tests.topology import PYTHON, Topology, collectstatic

TARGET = {"connections": 2000, "rooms": 400, "interval": 10.0, "p99_ms": 150.0, "baseline_ratio": 2.0}
RATE_STEP_P99_MS = 250.0


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def server_url() -> str:
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        sys.exit("make bench needs PostgreSQL (the production configuration): none answers on 127.0.0.1:5432.")
    return url


def fresh_database(server: str, name: str) -> str:
    admin = re.sub(r"/[^/]*$", "/postgres", server)
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')
    return re.sub(r"/[^/]*$", f"/{name}", server)


def manage(env: dict, *args: str, capture: bool = False) -> str:
    result = subprocess.run([PYTHON, "manage.py", *args], cwd=ROOT, env=env, check=True, text=True,
                            capture_output=capture)
    return result.stdout if capture else ""


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    memory = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                  if line.startswith("MemTotal"))
    versions = {}
    for name, command in (("nginx", ["nginx", "-v"]), ("postgresql", ["psql", "--version"]),
                          ("redis", ["redis-server", "--version"])):
        try:
            out = subprocess.run(command, capture_output=True, text=True)
            versions[name] = (out.stdout or out.stderr).strip().splitlines()[0]
        except OSError:
            versions[name] = "?"
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gib": round(memory / 1024 / 1024, 1),
            "os": platform.platform(), "python": platform.python_version(), **versions}


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def load(topology: Topology, fixtures: dict, *, protocol: str, interval: float, warmup: float,
               duration: float, profile_dir: Path | None = None) -> dict:
    run = LoadRun(ws_url=topology.ws_url, origin=topology.url, ssl_context=topology.ssl_context(),
                  rooms=fixtures["rooms"], protocol=protocol)
    pids = [d.process.pid for d in topology.daphnes]
    idle = sum(rss_kib(pid) for pid in pids)
    connect_seconds = await run.connect_all()
    settle_seconds = await run.settle(timeout=600)
    await asyncio.sleep(2)
    connected = sum(rss_kib(pid) for pid in pids)
    sockets = len(run.members)
    cpu = {}

    async def measuring():
        cpu["start"] = ([cpu_seconds(pid) for pid in pids], cpu_seconds(os.getpid()), time.perf_counter())
        if profile_dir is not None:
            cpu["spy"] = subprocess.Popen(
                [shutil.which("py-spy") or str(Path(PYTHON).with_name("py-spy")), "record", "--pid", str(pids[0]),
                 "--duration", str(int(min(duration, 30))), "--format", "raw", "--rate", "50",
                 "--output", str(profile_dir / f"{protocol}-{interval}.txt"), "--nonblocking"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )

    result = await run.run(interval=interval, warmup=warmup, duration=duration, drain=5.0,
                           pings=protocol == "odr", on_measuring=measuring)
    servers_start, own_start, wall_start = cpu["start"]
    wall = time.perf_counter() - wall_start
    result.update(
        sockets=sockets,
        interval_s=interval,
        connect_seconds=round(connect_seconds, 1),
        settle_seconds=round(settle_seconds, 1),
        daphne_rss_idle_mib=round(idle / 1024, 1),
        daphne_rss_connected_mib=round(connected / 1024, 1),
        memory_per_connection_kib=round((connected - idle) / sockets, 1),
        daphne_cpu_percent=[round(100 * (cpu_seconds(pid) - s) / wall) for pid, s in zip(pids, servers_start, strict=True)],
        loadgen_cpu_percent=round(100 * (cpu_seconds(os.getpid()) - own_start) / wall),
    )
    if "spy" in cpu:
        cpu["spy"].wait(60)
    return result


def passes(result: dict, p99_ms: float) -> bool:
    return result["p99_ms"] is not None and result["p99_ms"] <= p99_ms and not result["lost"]


def run_topology(workdir: Path, env: dict, fixtures: dict, *, application: str, worker: bool, protocol: str,
                 interval: float, faster: list[float], slower: list[float], warmup: float, duration: float,
                 profile_dir: Path | None) -> list[dict]:
    """The target interval first; then faster intervals while p99 stays under
    RATE_STEP_P99_MS, or, if the target rate is already beyond it, slower ones
    until it is not: the highest sustained rate lies between."""
    extra = {k: env[k] for k in ("SECRET_KEY", "ODR_PKI_DIR", "ODR_SEAL_PKCS12", "ODR_SEAL_PASSPHRASE",
                                 "ODR_TRUST_ROOTS", "LOG_LEVEL")}
    results = []
    with Topology(workdir, database_url=env["DATABASE_URL"], master_key=env["ODR_MASTER_KEY"],
                  static_root=workdir.parent / "static", application=application, worker=worker,
                  access_log=False, **extra) as topology:
        def one(step: float) -> dict:
            log(f"{protocol}: {len(fixtures['rooms'])} rooms, a message every {step:g} s per participant")
            result = asyncio.run(load(topology, fixtures, protocol=protocol, interval=step, warmup=warmup,
                                      duration=duration, profile_dir=profile_dir))
            log(f"  settled in {result['settle_seconds']} s; p50 {result['p50_ms']} ms, p95 {result['p95_ms']} ms, "
                f"p99 {result['p99_ms']} ms, {result['messages_per_s']} msg/s, lost {result['lost']}, "
                f"dup {result['duplicates']}, errors {result['errors']}, daphne CPU {result['daphne_cpu_percent']}%")
            results.append(result)
            return result

        first = one(interval)
        for step in faster if passes(first, RATE_STEP_P99_MS) else slower:
            if passes(one(step), RATE_STEP_P99_MS) != passes(first, RATE_STEP_P99_MS):
                break
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rooms", type=int, default=TARGET["rooms"])
    parser.add_argument("--participants", type=int, default=5)
    parser.add_argument("--interval", type=float, default=TARGET["interval"])
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--warmup", type=float, default=10.0)
    parser.add_argument("--faster", default="5,2.5,1.25", help="intervals tried when the target one holds p99")
    parser.add_argument("--slower", default="20,40,80", help="intervals tried when it does not")
    parser.add_argument("--out", default=str(ROOT / "docs" / "performance.md"))
    parser.add_argument("--profile", action="store_true", help="py-spy a Daphne during each run")
    parser.add_argument("--workdir", default="")
    args = parser.parse_args()

    started = datetime.datetime.now(datetime.UTC)
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="odr-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    profile_dir = workdir / "profiles" if args.profile else None
    if profile_dir:
        profile_dir.mkdir(exist_ok=True)
    database_url = fresh_database(server_url(), "odr_bench")
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "odr.settings",
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ODR_MASTER_KEY": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
        "DATABASE_URL": database_url,
        "REDIS_URL": "",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "ODR_PKI_DIR": str(workdir / "pki"),
        "ODR_SEAL_PKCS12": str(workdir / "pki" / "seal.p12"),
        "ODR_SEAL_PASSPHRASE": "bench-seal-passphrase",
        "ODR_TRUST_ROOTS": str(workdir / "pki" / "ca.pem"),
        "EMAIL_URL": "dummymail://",
        "LOG_LEVEL": "WARNING",
        "STATIC_ROOT": str(workdir / "static"),
    }
    log(f"database {database_url}, work in {workdir}")
    manage(env, "migrate", "--noinput", "-v", "0")
    fixtures_path = workdir / "load.json"
    seed_started = time.perf_counter()
    manage(env, "seed_load", "--rooms", str(args.rooms), "--participants", str(args.participants),
           "--out", str(fixtures_path), "--allow-without-debug")
    seed_seconds = time.perf_counter() - seed_started
    # The seeding queued invitation e-mails; deliver them now, not during the measurement.
    manage(env, "db_worker", "--batch", "--no-startup-delay", "--interval", "0", capture=True)
    fixtures = json.loads(fixtures_path.read_text())
    collectstatic(workdir / "static")
    log("in-process figures: agreement PDF, room page")
    measured = subprocess.run([PYTHON, "-m", "tests.bench.inprocess", str(fixtures_path)], cwd=ROOT, env=env,
                              capture_output=True, text=True)
    if measured.returncode:
        sys.exit(f"tests/bench/inprocess.py failed:\n{measured.stderr[-5000:]}")
    inprocess = json.loads(measured.stdout)

    def intervals(text: str) -> list[float]:
        return [float(s) for s in text.split(",") if s]

    baseline = run_topology(workdir / "baseline", env, fixtures, application="tests.bench.baseline:application",
                            worker=False, protocol="baseline", interval=args.interval, faster=[], slower=[],
                            warmup=args.warmup, duration=args.duration, profile_dir=profile_dir)
    ours = run_topology(workdir / "odr", env, fixtures, application="odr.asgi:application", worker=True,
                        protocol="odr", interval=args.interval, faster=intervals(args.faster),
                        slower=intervals(args.slower), warmup=args.warmup, duration=args.duration,
                        profile_dir=profile_dir)
    report = {
        "started": started.isoformat(timespec="seconds"),
        "finished": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "command": "make bench" + (f" BENCH_ARGS='{' '.join(sys.argv[1:])}'" if sys.argv[1:] else ""),
        "machine": machine(),
        "rooms": args.rooms,
        "participants": args.participants,
        "duration_s": args.duration,
        "warmup_s": args.warmup,
        "seed_seconds": round(seed_seconds, 1),
        "inprocess": inprocess,
        "baseline": baseline,
        "odr": ours,
        "profiles": str(profile_dir) if profile_dir else None,
    }
    (workdir / "report.json").write_text(json.dumps(report, indent=2))
    from tests.bench.report import write_markdown

    Path(args.out).write_text(write_markdown(report))
    log(f"written {args.out} (raw figures: {workdir / 'report.json'})")


if __name__ == "__main__":
    main()
