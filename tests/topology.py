"""The production topology on one machine, for the system test and `make bench`.

nginx (Debian's package) runs the files in deploy/nginx/ — the same files an
operator installs, with only the host-specific values (ports, certificate,
static root) replaced — in front of N `python -m odr.server --proxy-headers`
processes (Daphne, as deploy/systemd/odr-daphne@.service runs it) and a job worker, with
DEBUG off, on a given database and a Redis server of its own that can be
restarted (the machine's Redis is shared with other runs and is not ours to
restart).

Nothing here needs pytest: the benchmark drives it from a plain script.
"""

import datetime
import ipaddress
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import uuid
from pathlib import Path

from tests.asgi_server import ROOT, DaphneProcess, free_port

DEPLOY = ROOT / "deploy"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
PYTHON = sys.executable


def wait_for_port(port: int, what: str, process: subprocess.Popen | None = None, timeout: float = 30.0, log=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{what} exited early:\n{log() if log else ''}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on {port}:\n{log() if log else ''}")


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost (the clients trust exactly it)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "fullchain.pem", directory / "privkey.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    key_path.chmod(0o600)
    return cert_path, key_path


def _replace_each(text: str, replacements: dict[str, str], source: str) -> str:
    """Replace every key; a key missing from the deploy file is an error (the
    file changed and the test would no longer run what operators install)."""
    for old, new in replacements.items():
        if old not in text:
            raise AssertionError(f"{source} no longer contains {old!r}: update tests/topology.py")
        text = text.replace(old, new)
    return text


def nginx_site(*, https_port: int, http_port: int, cert: Path, key: Path, static_root: Path, acme_root: Path) -> str:
    return _replace_each(
        (DEPLOY / "nginx" / "odr-site.conf").read_text(),
        {
            "listen 80;": f"listen 127.0.0.1:{http_port};",
            "listen [::]:80;": "",
            "listen 443 ssl http2;": f"listen 127.0.0.1:{https_port} ssl http2;",
            "listen [::]:443 ssl http2;": "",
            "server_name odr.example.kz;": "server_name 127.0.0.1 localhost;",
            "/etc/odr/tls/fullchain.pem": str(cert),
            "/etc/odr/tls/privkey.pem": str(key),
            "alias /var/lib/odr/static/;": f"alias {static_root}/;",
            "root /var/www/acme;": f"root {acme_root};",
        },
        "deploy/nginx/odr-site.conf",
    )


def nginx_upstream(daphne_ports: list[int]) -> str:
    text = (DEPLOY / "nginx" / "odr-upstream.conf").read_text()
    servers = re.findall(r"^\s*server 127\.0\.0\.1:\d+ (.*);$", text, flags=re.M)
    if not servers:
        raise AssertionError("deploy/nginx/odr-upstream.conf lists no `server 127.0.0.1:<port>` lines")
    options = servers[0]
    text = re.sub(r"^\s*server 127\.0\.0\.1:\d+ .*;\n", "", text, flags=re.M)
    lines = "".join(f"    server 127.0.0.1:{port} {options};\n" for port in daphne_ports)
    return text.replace("least_conn;\n", "least_conn;\n" + lines, 1)


class Nginx:
    def __init__(self, workdir: Path, *, daphne_ports: list[int], static_root: Path, access_log: bool = True):
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.https_port, self.http_port = free_port(), free_port()
        self.cert, self.key = self_signed_certificate(workdir)
        (workdir / "acme").mkdir(exist_ok=True)
        (workdir / "upstream.conf").write_text(nginx_upstream(daphne_ports))
        (workdir / "site.conf").write_text(
            nginx_site(
                https_port=self.https_port, http_port=self.http_port, cert=self.cert, key=self.key,
                static_root=static_root, acme_root=workdir / "acme",
            )
        )
        temp = "\n".join(
            f"    {kind}_temp_path {workdir / ('tmp-' + kind)};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        (workdir / "nginx.conf").write_text(
            f"""# Generated by tests/topology.py around deploy/nginx/*.conf
{"user root;" if os.geteuid() == 0 else ""}
worker_processes auto;
worker_rlimit_nofile 16384;
daemon off;
pid {workdir / "nginx.pid"};
error_log {workdir / "nginx-error.log"} warn;
events {{ worker_connections 8192; }}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    sendfile on;
    tcp_nopush on;
    gzip on;
    access_log {workdir / "nginx-access.log" if access_log else "off"};
{temp}
    include {workdir / "upstream.conf"};
    include {workdir / "site.conf"};
}}
"""
        )
        self._log = open(workdir / "nginx-stdout.log", "wb")
        self.process = subprocess.Popen(
            [NGINX, "-p", str(workdir), "-e", str(workdir / "nginx-early.log"), "-c", str(workdir / "nginx.conf")],
            stdout=self._log, stderr=subprocess.STDOUT,
        )
        wait_for_port(self.https_port, "nginx", self.process, log=self.log)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.https_port}"

    @property
    def ws_url(self) -> str:
        return f"wss://127.0.0.1:{self.https_port}"

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.cert))

    def log(self) -> str:
        parts = []
        for name in ("nginx-early.log", "nginx-stdout.log", "nginx-error.log"):
            path = self.workdir / name
            if path.exists():
                parts.append(f"[{name}]\n{path.read_text(errors='replace')[-4000:]}")
        return "\n".join(parts)

    def worker_pids(self) -> list[int]:
        out = subprocess.run(["pgrep", "-P", str(self.process.pid)], capture_output=True, text=True).stdout
        return [int(pid) for pid in out.split()]

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)  # graceful
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self._log.close()


class RedisServer:
    """A Redis of the topology's own, that keeps nothing on disk (as the
    machine's): a restart empties it."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self):
        self.process = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.workdir), "--logfile", str(self.workdir / "redis.log"), "--maxclients", "10000"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port, "redis-server", self.process, log=self.log)

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)

    def restart(self, down_for: float = 0.5):
        self.stop()
        time.sleep(down_for)
        self.start()

    def log(self) -> str:
        path = self.workdir / "redis.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""


class Worker:
    def __init__(self, env: dict[str, str], log_path: Path):
        self.log_path = log_path
        self._log = open(log_path, "wb")
        self.process = subprocess.Popen(
            [PYTHON, "manage.py", "db_worker", "--no-reload", "--interval", "0.2", "--no-startup-delay"],
            cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT,
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self._log.close()


def production_env(*, database_url: str, master_key: str, site_url: str, workdir: Path, static_root: Path, **extra: str) -> dict[str, str]:
    """DEBUG off, as deploy/env.example sets it, on the given database."""
    prefix = f"t{uuid.uuid4().hex[:12]}"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "odr.settings",
        "DEBUG": "false",
        "SECRET_KEY": uuid.uuid4().hex * 2,
        "ODR_MASTER_KEY": master_key,
        "DATABASE_URL": database_url,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "CSRF_TRUSTED_ORIGINS": site_url,
        "SITE_URL": site_url,
        "STATIC_ROOT": str(static_root),
        "MEDIA_ROOT": str(workdir / "media"),
        "ODR_PRIVATE_ROOT": str(workdir / "media" / "private"),
        "CHANNEL_LAYER_PREFIX": prefix,
        "CACHE_PREFIX": prefix,
        "ODR_DEMO_MODE": "false",
        "EMAIL_URL": "consolemail://",
        "PYTHONUNBUFFERED": "1",
    }
    for name in ("DJANGO_ALLOW_ASYNC_UNSAFE", "ODR_ENV_FILE"):
        env.pop(name, None)
    env.update(extra)
    return env


def collectstatic(static_root: Path) -> None:
    """Once per run: WhiteNoise's manifest (DEBUG off needs it) and the files nginx serves."""
    if (static_root / "staticfiles.json").exists():
        return
    env = {**os.environ, "DEBUG": "false", "SECRET_KEY": "collectstatic", "STATIC_ROOT": str(static_root),
           "ODR_MASTER_KEY": "A" * 43 + "=", "DATABASE_URL": ""}
    subprocess.run([PYTHON, "manage.py", "collectstatic", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)


class Topology:
    """nginx → `daphnes` × Daphne (+ a worker) → the database and a Redis of its own."""

    def __init__(self, workdir: Path, *, database_url: str, master_key: str, static_root: Path,
                 daphnes: int = 2, worker: bool = True, application: str = "odr.asgi:application",
                 access_log: bool = True, **env_extra: str):
        self.workdir = workdir
        self.daphnes: list[DaphneProcess] = []
        self.worker: Worker | None = None
        self.nginx: Nginx | None = None
        self.redis = RedisServer(workdir / "redis")
        try:
            collectstatic(static_root)
            ports = [free_port() for _ in range(daphnes)]
            self.nginx = Nginx(workdir / "nginx", daphne_ports=ports, static_root=static_root, access_log=access_log)
            self.env = production_env(
                database_url=database_url, master_key=master_key, site_url=self.nginx.url, workdir=workdir,
                static_root=static_root, REDIS_URL=self.redis.url, **env_extra,
            )
            for index, port in enumerate(ports):
                self.daphnes.append(
                    DaphneProcess(port, self.env, workdir / f"daphne-{index}.log", application=application,
                                  args=("--proxy-headers",))
                )
            if worker:
                self.worker = Worker(self.env, workdir / "worker.log")
        except BaseException:
            self.stop()
            raise

    @property
    def url(self) -> str:
        return self.nginx.url

    @property
    def ws_url(self) -> str:
        return self.nginx.ws_url

    def ssl_context(self) -> ssl.SSLContext:
        return self.nginx.ssl_context()

    def logs(self, tail: int = 5000) -> str:
        parts = [f"--- daphne {i} (port {d.port}) ---\n{d.log()[-tail:]}" for i, d in enumerate(self.daphnes)]
        if self.worker is not None:
            parts.append(f"--- worker ---\n{self.worker.log()[-tail:]}")
        if self.nginx is not None:
            parts.append(f"--- nginx ---\n{self.nginx.log()[-tail:]}")
        parts.append(f"--- redis ---\n{self.redis.log()}")
        return "\n".join(parts)

    def stop(self):
        if self.nginx is not None:
            self.nginx.stop()
        for daphne in self.daphnes:
            daphne.stop()
        if self.worker is not None:
            self.worker.stop()
        self.redis.stop()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
