"""`make run`'s two processes, started together and stopped together:
`python -m odr.launcher [--bind 127.0.0.1] [--port 8000]` runs Daphne
(`python -m odr.server`, which drains its sockets on SIGTERM) and the job
worker (`manage.py db_worker`) on the configured database.

It replaces the recipe's `trap 'kill 0' INT TERM EXIT; worker & daphne`,
which left processes behind: `kill 0` sent every process of the group a
second SIGTERM from inside the trap (itself and make included), SIGTERM to
make alone reached the shell but not its background worker, and nothing
bounded how long a stuck child could take. Here each child runs in a process
group of its own, so that a Ctrl-C or a SIGTERM to the terminal's group
reaches the launcher only, and the launcher alone tells each child, once, to
stop: SIGTERM to the child's group, then SIGKILL if it is still there
ODR_SHUTDOWN_GRACE_SECONDS + 2 s later (Daphne's own bound is the grace).
The launcher stops on SIGINT, SIGTERM or SIGHUP (a closed terminal), and
when either child exits; a second Ctrl-C kills the children at once. On
Linux the children are also told to stop if the launcher itself is killed
(SIGKILL included), and the launcher if make is.
"""

import argparse
import ctypes
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
KILL_AFTER_GRACE_SECONDS = 2.0
POLL_SECONDS = 0.1


def _on_parent_death(signum: int) -> None:
    """Linux: receive `signum` when the parent dies, however it dies. Strictly,
    when the parent's thread that started this process ends: start the
    launcher from a thread that outlives it (make's, a shell's, a program's
    main thread), not from a short-lived worker thread."""
    if not sys.platform.startswith("linux"):
        return
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signum)


def _child_setup(launcher_pid: int):
    def setup():
        _on_parent_death(signal.SIGTERM)
        if os.getppid() != launcher_pid:  # the launcher died before prctl took effect
            os._exit(1)

    return setup


class Launcher:
    def __init__(self, *, bind: str, port: int, root: Path, grace: float):
        self.root = root
        self.grace = grace
        self.commands = {
            "daphne": [
                sys.executable, "-m", "odr.server", "-b", bind, "-p", str(port),
                "odr.asgi:application",
            ],
            # No autoreloader (its default with DEBUG on): it would put a
            # second process between us and the worker, and Daphne does not
            # reload either; restart `make run` after changing code.
            "worker": [
                sys.executable, "manage.py", "db_worker", "--no-reload", "--interval", "1",
                "--no-startup-delay",
            ],
        }
        self.children: dict[str, subprocess.Popen] = {}
        self.stop_requested: int | None = None  # the signal
        self.interrupts = 0

    def _on_signal(self, signum, frame):
        if signum == signal.SIGINT:
            self.interrupts += 1
        if self.stop_requested is None:
            self.stop_requested = signum

    def run(self) -> int:
        for signum in STOP_SIGNALS:
            signal.signal(signum, self._on_signal)
        launcher_pid = os.getpid()
        for name, command in self.commands.items():
            self.children[name] = subprocess.Popen(
                command, cwd=self.root, process_group=0, preexec_fn=_child_setup(launcher_pid)
            )
        exited = None
        while self.stop_requested is None and exited is None:
            exited = next(
                (name for name, child in self.children.items() if child.poll() is not None), None
            )
            time.sleep(POLL_SECONDS)
        if exited is not None:
            status = self.children[exited].returncode
            print(f"\n[make run] {exited} exited ({status}): stopping the rest.",
                  file=sys.stderr, flush=True)
        else:
            name = signal.Signals(self.stop_requested).name
            print(
                f"\n[make run] {name}: stopping Daphne and the worker "
                f"(within {self.grace:g} s; Ctrl-C again to kill them now).",
                file=sys.stderr, flush=True,
            )
        return self.stop()

    def _signal_all(self, signum: int) -> None:
        for child in self.children.values():
            if child.poll() is None:
                try:
                    os.killpg(child.pid, signum)
                except ProcessLookupError:
                    pass

    def stop(self) -> int:
        self._signal_all(signal.SIGTERM)
        interrupts = self.interrupts
        deadline = time.monotonic() + self.grace + KILL_AFTER_GRACE_SECONDS
        while any(child.poll() is None for child in self.children.values()):
            if self.interrupts > interrupts or time.monotonic() >= deadline:
                left = [name for name, child in self.children.items() if child.poll() is None]
                print(f"[make run] killing {', '.join(left)}.", file=sys.stderr, flush=True)
                self._signal_all(signal.SIGKILL)
                for child in self.children.values():
                    child.wait()
                break
            time.sleep(POLL_SECONDS)
        return 0 if all(child.returncode == 0 for child in self.children.values()) else 1


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bind", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)
    # If make is killed, stop too (and so the children), rather than live on.
    _on_parent_death(signal.SIGTERM)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "odr.settings")
    from django.conf import settings

    launcher = Launcher(
        bind=args.bind, port=args.port, root=Path(settings.BASE_DIR),
        grace=float(settings.ODR_SHUTDOWN_GRACE_SECONDS),
    )
    sys.exit(launcher.run())


if __name__ == "__main__":
    main()
