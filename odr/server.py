"""Our Daphne: `python -m odr.server [daphne's arguments] odr.asgi:application`.

Daphne itself (the same command-line arguments, the same server), with what
its own `daphne` command lacks for production and for `make run`:

* **Draining on SIGTERM, SIGINT and SIGHUP.** Daphne leaves the signals to
  Twisted, whose handlers only stop the reactor: every socket was dropped
  without a close code, no disconnect handler ran (presence rows stayed
  behind), and then the interpreter's exit joined the room consumers'
  database threads (concurrent.futures joins its non-daemon threads at exit).
  A thread waiting on the database, or on the stopped event loop (a broadcast
  after commit goes through `async_to_sync` to that loop), never returned:
  the process hung in a futex wait, ignoring further signals (Twisted's
  handlers were still installed, with no reactor to act on them), until
  SIGKILL. Here the process stops listening, asks the application to close
  its sockets (`odr.lifecycle.server_draining`: the room consumer closes
  each with 4503, "reconnect and resume"), waits for their disconnect
  handlers, and leaves with `os._exit`, without joining threads or
  finalising the interpreter around them.
* **A bound on the stop.** `ODR_SHUTDOWN_GRACE_SECONDS` after the first
  signal the process is gone, whatever a thread is stuck on: the drain gives
  up a second before (status 1, with every thread's stack in the log), and
  faulthandler's watchdog, a C thread that needs neither the event loop nor
  the GIL, ends the process at the limit (status 1, stacks too).
* **A close frame for a frame over the transport's ceiling.** Autobahn's
  default `failByDrop` drops the TCP connection of a client that sends more
  than `--websocket-max-message-size` (1 MiB): no close code at all. Here it
  closes with 1009 ("message too big"), as it does 1002/1007 for protocol
  violations and invalid UTF-8. Frames between the room's own limit
  (`ODR_WS_MAX_FRAME_BYTES`, 64 KiB) and the ceiling reach the consumer,
  which answers `error` `too_large` and keeps the socket (docs/protocol.md).

A module rather than a management command: it is Daphne's own command line
(its `CommandLineInterface`, whose `server_class` is the hook for a Server
subclass), so every `daphne` argument and any application path work
unchanged (`daphne ARGS` becomes `python -m odr.server ARGS`; the benchmark
serves a bare application with it). A management command would re-declare
Daphne's options on Django's parser and run inside `manage.py`'s own exit
handling; Daphne's `runserver` command is the development server.
"""

# Daphne's server module installs Twisted's asyncio reactor when imported:
# it must come before anything imports twisted.internet.reactor.
from daphne.cli import CommandLineInterface  # isort:skip
from daphne.server import Server  # isort:skip

import faulthandler
import logging
import os
import signal
import sys
import time

from daphne.ws_protocol import WebSocketProtocol
from twisted.internet import reactor

from odr.lifecycle import DRAIN_TICK_SECONDS, server_draining

log = logging.getLogger("odr.server")

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
# For a socket that no application closed when asked (not a room socket):
# the standard "going away"; clients reconnect as they do on 4503.
CLOSE_GOING_AWAY = 1001
# A socket still open after this many drain ticks was not closed by its
# application (a room consumer closes within one): the server closes it.
TICKS_BEFORE_SERVER_CLOSES = 3


def _flush_stdio() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass


def _exit_now(status: int) -> None:
    """Leave without the interpreter's exit: it would join every thread of
    the database pool (forever, if one is stuck) and finalise modules under
    threads still running (which can crash in C code)."""
    logging.shutdown()
    _flush_stdio()
    os._exit(status)


class DrainingServer(Server):
    def __init__(self, *args, **kwargs):
        from django.conf import settings  # configured: the CLI has loaded the application

        # Our handlers instead of Twisted's (module docstring).
        kwargs["signal_handlers"] = False
        # Daphne's one hook between building its WebSocket factory (in run())
        # and starting the reactor; the alternatives were to copy run() or to
        # patch the module global `daphne.server.WebSocketFactory`.
        outer_ready = kwargs.get("ready_callable")

        def ready():
            self._before_reactor_runs()
            if outer_ready is not None:
                outer_ready()

        kwargs["ready_callable"] = ready
        super().__init__(*args, **kwargs)
        self.grace = float(settings.ODR_SHUTDOWN_GRACE_SECONDS)
        if self.grace <= 0:
            log.critical("ODR_SHUTDOWN_GRACE_SECONDS must be more than 0")
            sys.exit(1)
        # Above the room's own limit, or ordinary over-limit frames would be
        # refused by the transport (close 1009) instead of answered `too_large`.
        for option, ceiling in (
            ("--websocket-max-message-size", self.websocket_max_message_size),
            ("--websocket-max-frame-size", self.websocket_max_frame_size),
        ):
            if 0 < ceiling <= settings.ODR_WS_MAX_FRAME_BYTES:
                log.critical(
                    "%s (%d) must exceed ODR_WS_MAX_FRAME_BYTES (%d)",
                    option, ceiling, settings.ODR_WS_MAX_FRAME_BYTES,
                )
                sys.exit(1)
        self.ports = []
        self.draining_since: float | None = None
        self._watchdog_armed = False
        self.drain_deadline = 0.0
        # The fewest connections left closing so far, and when: a drain that
        # runs out of time while still progressing is slow, not stuck.
        self._least_pending = float("inf")
        self._progress_at = 0.0
        self._ticks_open: dict[WebSocketProtocol, int] = {}

    def listen_success(self, port):
        self.ports.append(port)  # to stop listening when draining
        super().listen_success(port)

    def _before_reactor_runs(self):
        # The protocols copy the factory's options when their connection is
        # made, and none is made before the reactor runs.
        self.ws_factory.setProtocolOptions(failByDrop=False)
        for signum in STOP_SIGNALS:
            signal.signal(signum, self._on_signal)

    # --- Draining -------------------------------------------------------------------

    def _on_signal(self, signum: int, frame):
        # Python runs this in the main thread between two bytecodes of
        # whatever it was doing, even when that is an event loop blocked by
        # a callback that never returns: the watchdog is armed here, and the
        # drain, which needs the loop, is left to it.
        if not self._watchdog_armed:
            self._watchdog_armed = True
            faulthandler.dump_traceback_later(self.grace, exit=True)
        reactor.callFromThread(self._on_stop_signal, signum)

    def _on_stop_signal(self, signum: int):
        name = signal.Signals(signum).name
        if self.draining_since is not None:
            # A repeated SIGTERM is normal (a supervisor and a process group
            # both send one) and changes nothing; Ctrl-C twice is a person.
            if signum == signal.SIGINT:
                log.warning("SIGINT again: exiting now, without waiting for the sockets")
                _exit_now(1)
            log.info("%s while draining: exiting within %g s of the first signal", name, self.grace)
            return
        self.draining_since = time.monotonic()
        self.drain_deadline = self.draining_since + max(self.grace - 1, self.grace / 2)
        self._progress_at = self.draining_since
        log.warning(
            "%s: draining (no new connections; open sockets close with 4503, reconnect); "
            "exiting within %g s",
            name, self.grace,
        )
        # First, so that the clients told to reconnect reach another instance.
        for port in self.ports:
            port.stopListening()
        self._drain()

    def _drain(self):
        remaining = 0  # sockets the application is still closing (its receivers' answers)
        for receiver, answer in server_draining.send_robust(sender=type(self)):
            if isinstance(answer, Exception):
                log.error("drain: %r failed", receiver, exc_info=answer)
            elif isinstance(answer, int):
                remaining += answer
        self._close_the_rest()
        pending = remaining + len(self._pending())
        now = time.monotonic()
        if not pending:
            log.warning("drained in %.1f s", now - self.draining_since)
            # Not reactor.stop(): Daphne would cancel the finished sockets'
            # applications and wait for them, and a room consumer's channel
            # layer read takes up to its 5 s blocking pop to end.
            _exit_now(0)
        if pending < self._least_pending:
            self._least_pending, self._progress_at = pending, now
        if now >= self.drain_deadline:
            if now - self._progress_at < 1:
                log.warning(
                    "not drained after %.1f s: %d connections still closing (slowly, not stuck); "
                    "exiting anyway",
                    now - self.draining_since, pending,
                )
            else:
                log.error(
                    "not drained after %.1f s: %d connections still closing, none for %.1f s; "
                    "exiting anyway. The threads:",
                    now - self.draining_since, pending, now - self._progress_at,
                )
                _flush_stdio()
                faulthandler.dump_traceback(all_threads=True)
            _exit_now(1)
        reactor.callLater(DRAIN_TICK_SECONDS, self._drain)

    def _close_the_rest(self):
        still_open = {
            protocol
            for protocol in list(self.connections)
            if isinstance(protocol, WebSocketProtocol) and protocol.state == protocol.STATE_OPEN
        }
        self._ticks_open = {
            protocol: self._ticks_open.get(protocol, 0) + 1 for protocol in still_open
        }
        for protocol, ticks in self._ticks_open.items():
            if ticks == TICKS_BEFORE_SERVER_CLOSES:
                protocol.serverClose(code=CLOSE_GOING_AWAY)

    def _pending(self) -> list:
        """Connections still open, and HTTP requests not yet answered. A closed
        socket's own handlers are its application's to count (its receiver's
        answer): Daphne cannot tell them from the application's winding down."""
        pending = []
        for protocol, details in list(self.connections.items()):
            if not details.get("disconnected"):
                pending.append(protocol)
            elif not isinstance(protocol, WebSocketProtocol):
                application = details.get("application_instance")
                if application is not None and not application.done():
                    pending.append(protocol)
        return pending


class CommandLine(CommandLineInterface):
    description = "ODR's Daphne: Daphne's arguments, draining on SIGTERM (odr/server.py)"
    server_class = DrainingServer


def main(argv: list[str] | None = None) -> None:
    CommandLine().run(sys.argv[1:] if argv is None else argv)
    # The reactor stopped without a drain (Daphne stops it itself when an
    # application raises KeyboardInterrupt). Leave as a drain does.
    _exit_now(0)


if __name__ == "__main__":
    main()
