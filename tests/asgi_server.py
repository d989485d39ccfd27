"""Real Daphne processes for the system and browser tests.

They run the project exactly as production does (`python -m odr.server
odr.asgi:application`: Daphne, draining on SIGTERM) on the test run's own
database and Redis, with a channel-layer and cache prefix
of their own, so that concurrent runs on one machine do not hear each other.
Tests that use them need `transactional_db`: the processes see only what the
test has committed.
"""

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

from django.db import connection
from django.test import Client

ROOT = Path(__file__).resolve().parent.parent
DAPHNE = Path(sys.executable).with_name("daphne")  # Daphne's own script (odr.server is ours)
# What deploy/systemd/odr-daphne@.service runs, before Daphne's arguments.
SERVER = [sys.executable, "-m", "odr.server"]
DEFAULT_GRACE_SECONDS = 10  # odr/settings.py ODR_SHUTDOWN_GRACE_SECONDS


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def database_url() -> str:
    """The URL of the database this test run uses (the test database)."""
    settings = connection.settings_dict
    if settings["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{settings['NAME']}"
    user = settings.get("USER") or "postgres"
    host = settings.get("HOST") or "127.0.0.1"
    port = settings.get("PORT") or 5432
    return f"postgres://{user}@{host}:{port}/{settings['NAME']}"


def server_env(**extra: str) -> dict[str, str]:
    """Environment for one group of cooperating processes (one test)."""
    prefix = f"t{uuid.uuid4().hex[:12]}"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "odr.settings",
        "DATABASE_URL": database_url(),
        "REDIS_URL": os.environ.get("REDIS_URL", ""),
        "CHANNEL_LAYER_PREFIX": prefix,
        "CACHE_PREFIX": prefix,
        "DEBUG": "true",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    env.update(extra)
    return env


class DaphneProcess:
    grace = float(DEFAULT_GRACE_SECONDS)  # seconds a SIGTERM may take (set from env below)

    def __init__(self, port: int, env: dict[str, str], log_path: Path, *, application: str = "odr.asgi:application", args: tuple[str, ...] = ()):
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.ws_url = f"ws://127.0.0.1:{port}"
        self.log_path = log_path
        self._log = open(log_path, "wb")
        self.grace = float(env.get("ODR_SHUTDOWN_GRACE_SECONDS", DEFAULT_GRACE_SECONDS))
        self.process = subprocess.Popen(
            [*SERVER, *args, "-b", "127.0.0.1", "-p", str(port), application],
            cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT,
        )
        self._wait_until_listening()

    def _wait_until_listening(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"daphne exited early:\n{self.log()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"daphne did not listen on {self.port}:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL: the process dies mid-conversation, as in a crash."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        """SIGTERM, as systemd stops it: it drains, within its grace period."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(self.grace + 5)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()


@contextmanager
def daphne_processes(count: int, tmp_path: Path, **env_extra: str):
    """`count` Daphne processes sharing one database, channel layer and cache."""
    env = server_env(**env_extra)
    processes = []
    try:
        for index in range(count):
            processes.append(DaphneProcess(free_port(), env, tmp_path / f"daphne-{index}.log"))
        yield processes
    finally:
        for process in processes:
            process.stop()


def session_cookie(user) -> str:
    """A logged-in session for `user`, stored where every process reads it."""
    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value
