"""Checking a PDF in a process of its own, with a CPU and a memory limit.

Anyone may send /verify/ a file, and a hostile PDF can keep a parser busy
for minutes or make it allocate gigabytes (tests/agreements/hostile_pdfs.py).
In the site's own process that would take its CPU, its memory and, through
the GIL, every other page it serves. So each check runs in a child process
(agreements.pdfcheck.serve) that sets its own limits and runs niced, below
the site; the parent waits on a pipe, without holding the GIL, and kills a
child that outlives the wall-clock timeout. A child that hits a limit, dies
or is killed means "could not be checked": one log line, no traceback.

The children come from multiprocessing's forkserver: a clean interpreter,
started once per site process with pyHanko preloaded, that forks one child
per check (about 30 ms a check, not a Python start-up). Nothing of the site
process — its threads, event loop, database connections — is forked.

The child answers in JSON, never pickle: if a parser bug ever let a file
take over the child, it still could not make the parent run anything."""

import contextlib
import hashlib
import io
import json
import logging
import multiprocessing
import os
import signal
import threading
import time
from dataclasses import dataclass
from multiprocessing import forkserver, popen_forkserver, spawn, util
from multiprocessing.connection import wait as wait_for
from multiprocessing.context import ForkServerProcess, reduction, set_spawning_popen

from django.conf import settings

from agreements import pdfcheck

log = logging.getLogger(__name__)

# What the child may answer at most: a report, however many signatures.
MAX_ANSWER_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class Limits:
    cpu_seconds: int
    memory_bytes: int
    timeout_seconds: float

    @classmethod
    def from_settings(cls) -> "Limits":
        return cls(
            cpu_seconds=settings.ODR_VERIFY_CPU_SECONDS,
            memory_bytes=settings.ODR_VERIFY_MEMORY_MB * 1024 * 1024,
            timeout_seconds=settings.ODR_VERIFY_TIMEOUT_SECONDS,
        )


class Busy(Exception):
    """Every slot for checking uploads in this process stayed taken while the
    upload waited (ODR_VERIFY_CONCURRENCY, ODR_VERIFY_QUEUE_SECONDS)."""


class _Popen(popen_forkserver.Popen):
    """The forkserver's Popen, less the parent's __main__. Python 3.11's
    forkserver never preloads __main__ (it looks for a key that
    get_preparation_data does not write), so each child would run the site's
    entry script again before its check: Daphne's imports Twisted, 0.1 s a
    check. The child needs only agreements.pdfcheck, which the server has
    preloaded. (The rest is popen_forkserver.Popen._launch as it is.)"""

    def _launch(self, process_obj):
        prep_data = spawn.get_preparation_data(process_obj._name)
        prep_data.pop("init_main_from_path", None)
        prep_data.pop("init_main_from_name", None)
        buf = io.BytesIO()
        set_spawning_popen(self)
        try:
            reduction.dump(prep_data, buf)
            reduction.dump(process_obj, buf)
        finally:
            set_spawning_popen(None)
        self.sentinel, w = forkserver.connect_to_new_process(self._fds)
        _parent_w = os.dup(w)
        self.finalizer = util.Finalize(self, util.close_fds, (_parent_w, self.sentinel))
        with open(w, "wb", closefd=True) as f:
            f.write(buf.getbuffer())
        self.pid = forkserver.read_signed(self.sentinel)


class _Process(ForkServerProcess):
    @staticmethod
    def _Popen(process_obj):
        return _Popen(process_obj)


_context_lock = threading.Lock()
_context = None


def _forkserver():
    global _context
    with _context_lock:
        if _context is None:
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload([pdfcheck.__name__])
            _context = context
        return _context


def check(*, data: bytes, roots_pem: bytes, limits: Limits | None = None) -> dict:
    """pdfcheck.check's answer for `data`, computed in a sandbox process; or,
    when the check could not finish, {"sha256": ..., "unchecked": cause}
    with cause one of "cpu", "memory", "timeout", "crashed", "unavailable"."""
    limits = limits or Limits.from_settings()
    started = time.monotonic()
    answer, cause = _run(data, roots_pem, limits)
    if answer is not None and "result" in answer:
        return answer["result"]
    sha256 = hashlib.sha256(data).hexdigest()
    cause = str((answer or {}).get("unchecked") or cause or "crashed (an answer of unknown shape)")
    detail = str((answer or {}).get("error", ""))
    log.warning(
        "verify: a %d-byte file (sha256 %s) could not be checked: %s%s after %.1f s",
        len(data), sha256[:16], cause, f" ({detail})" if detail else "", time.monotonic() - started,
    )
    return {"sha256": sha256, "unchecked": cause}


# multiprocessing's bookkeeping of child processes (start() reaps finished
# ones; is_alive() and join() read a child's status from the forkserver) is
# not made for threads that start and reap at once: one lock around it.
_processes = threading.Lock()


def _run(data: bytes, roots_pem: bytes, limits: Limits) -> tuple[dict | None, str]:
    """(the child's answer or None, the cause when there is none)."""
    deadline = time.monotonic() + limits.timeout_seconds
    ours, theirs = _forkserver().Pipe(duplex=True)
    child = _Process(
        target=pdfcheck.serve, args=(theirs, limits.cpu_seconds, limits.memory_bytes),
        name="odr-verify", daemon=True,
    )
    try:
        with _processes:
            child.start()
    except OSError as error:  # no process could be made (out of memory, process limit)
        ours.close()
        theirs.close()
        return None, f"unavailable ({error.__class__.__name__})"
    theirs.close()
    answer, timed_out = None, False
    try:
        ours.send_bytes(roots_pem)
        ours.send_bytes(data)
        if ours.poll(max(0.0, deadline - time.monotonic())):
            answer = _parsed(ours.recv_bytes(MAX_ANSWER_BYTES))
        else:
            timed_out = True
    except (OSError, EOFError):
        pass  # the child died while reading the file or before answering: its exit status says why
    finally:
        ours.close()
        if answer is None and not timed_out:
            # It closed its end without answering: it is on its way out (a
            # limit, a crash). Let the forkserver report how, rather than
            # kill it first and learn nothing.
            wait_for([child.sentinel], timeout=2)
        with _processes:
            killed = child.is_alive()
            if killed:
                child.kill()
            child.join(5)
            exitcode = child.exitcode
        if exitcode is not None:
            child.close()
    if answer is not None:
        return answer, ""
    if timed_out:
        return None, "timeout"
    if killed:
        return None, "crashed (no readable answer)"
    return None, _cause_of_death(exitcode)


def _parsed(raw: bytes) -> dict | None:
    try:
        answer = json.loads(raw)
    except ValueError:
        return None
    return answer if isinstance(answer, dict) else None


def _cause_of_death(exitcode: int | None) -> str:
    if exitcode in (-signal.SIGXCPU, -signal.SIGKILL):
        # SIGXCPU at the soft CPU limit; SIGKILL at the hard one (a child
        # that ignored the first) — or the kernel's OOM killer.
        return "cpu"
    return f"crashed (exit {exitcode})"


# --- How many uploads a process checks at once -------------------------------------------------

_slots_lock = threading.Lock()
_slots: tuple[int, threading.BoundedSemaphore] | None = None


def _semaphore() -> threading.BoundedSemaphore:
    """The process's slots; made again if the setting changed (tests change it)."""
    global _slots
    size = settings.ODR_VERIFY_CONCURRENCY
    with _slots_lock:
        if _slots is None or _slots[0] != size:
            _slots = (size, threading.BoundedSemaphore(size))
        return _slots[1]


@contextlib.contextmanager
def upload_slot():
    """One of the process's ODR_VERIFY_CONCURRENCY slots for an uploaded file,
    waited for up to ODR_VERIFY_QUEUE_SECONDS; Busy if none frees up. This
    bounds the CPU and memory that uploads can take from one site process,
    however many arrive from however many addresses."""
    semaphore = _semaphore()
    if not semaphore.acquire(timeout=settings.ODR_VERIFY_QUEUE_SECONDS):
        raise Busy
    try:
        yield
    finally:
        semaphore.release()
