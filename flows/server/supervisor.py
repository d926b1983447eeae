"""The parent of ``flows run --workers``: keeps N workers serving and stops them in bounded time.

The parent holds the listening socket for its whole life (it never accepts on
it), so it can fork a replacement for a worker that died while the others go
on serving. It sleeps in ``select`` on a wake-up pipe that every signal
writes to (SIGCHLD, SIGTERM, SIGINT) and on each worker's readiness pipe,
with a timeout only when a restart or the stop deadline is due: it costs
nothing while the workers serve.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType

from flows.server.restarts import RestartPolicy, describe_exit
from flows.server.serving import STOP_SIGNALS
from flows.server.worker_process import ServeOne, run_worker

logger = logging.getLogger("flows.server")

STOP_SLACK = 2.0
"""Seconds past the shutdown timeout a worker gets to exit before it is killed."""


@dataclass(slots=True)
class Slot:
    """One worker index: its current process (pid 0 while none runs) and its restarts."""

    index: int
    pid: int = 0
    ready_fd: int = -1
    started: float = 0.0
    listened: bool = False
    restart_at: float | None = None
    died_at: float | None = None
    died_pid: int = 0
    policy: RestartPolicy = field(default_factory=RestartPolicy)


class Supervisor:
    """Forks ``workers`` processes running ``serve_one``, restarts the ones that die."""

    def __init__(
        self,
        sock: socket.socket,
        workers: int,
        serve_one: ServeOne,
        *,
        shutdown_timeout: float,
        on_all_listening: Callable[[], None] | None = None,
    ) -> None:
        self.sock = sock  # kept open: a replacement inherits it
        self.serve_one = serve_one
        self.shutdown_timeout = shutdown_timeout
        self.on_all_listening = on_all_listening
        self.slots = [Slot(index) for index in range(workers)]
        self._never_listened = set(range(workers))
        self._signals: list[int] = []
        self._stopping = False
        self._deadline = 0.0
        self._code = 0
        self._wake_read = -1
        self._wake_write = -1

    def run(self) -> int:
        """Serve until a stop signal (or giving up); 0 when every worker then exited 0."""
        self._wake_read, self._wake_write = os.pipe()
        os.set_blocking(self._wake_read, False)
        os.set_blocking(self._wake_write, False)
        previous = {sig: signal.signal(sig, self._on_stop_signal) for sig in STOP_SIGNALS}
        previous[signal.SIGCHLD] = signal.signal(signal.SIGCHLD, _wake_only)
        previous_wakeup = signal.set_wakeup_fd(self._wake_write)
        try:
            for slot in self.slots:
                self._start(slot)
            return self._loop()
        finally:
            signal.set_wakeup_fd(previous_wakeup)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            for fd in (self._wake_read, self._wake_write, *(s.ready_fd for s in self.slots)):
                if fd >= 0:
                    os.close(fd)

    # -- the loop ---------------------------------------------------------------------------

    def _loop(self) -> int:
        while True:
            self._take_signals()
            self._reap()
            if self._stopping:
                if not any(slot.pid for slot in self.slots):
                    return self._code
                if time.monotonic() >= self._deadline:
                    self._kill_the_rest()
                    return 1
            else:
                self._restart_due()
            self._wait()

    def _wait(self) -> None:
        """Sleep until a signal, a readiness byte, or the next restart or deadline."""
        due = [self._deadline] if self._stopping else []
        due += [slot.restart_at for slot in self.slots if slot.restart_at is not None]
        timeout = max(0.0, min(due) - time.monotonic()) if due else None
        watched = [self._wake_read, *(slot.ready_fd for slot in self.slots if slot.ready_fd >= 0)]
        readable, _, _ = select.select(watched, [], [], timeout)
        if self._wake_read in readable:
            with contextlib.suppress(BlockingIOError):
                while os.read(self._wake_read, 512):
                    pass
        for slot in self.slots:
            if slot.ready_fd in readable:
                self._read_ready(slot)

    def _on_stop_signal(self, sig: int, _frame: FrameType | None) -> None:
        self._signals.append(sig)  # acted on in the loop, outside the handler

    def _take_signals(self) -> None:
        while self._signals:
            self._stop(self._signals.pop(0))

    # -- starting ---------------------------------------------------------------------------

    def _start(self, slot: Slot) -> None:
        """Fork a worker for ``slot``, with stop signals blocked until it has its own handlers."""
        ready_read, ready_write = os.pipe()
        inherited = [
            self._wake_read,
            self._wake_write,
            ready_read,
            *(s.ready_fd for s in self.slots if s.ready_fd >= 0),
        ]
        parent = os.getpid()
        slot.restart_at, slot.listened = None, False
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        try:
            pid = os.fork()
            if pid == 0:
                run_worker(slot.index, self.serve_one, ready_write, parent, inherited)
        except OSError as error:  # out of processes or memory: like a worker that died at once
            os.close(ready_read)
            slot.started = time.monotonic()
            self._retry(slot, f"worker {slot.index} could not be forked ({error.strerror})")
            return
        finally:
            os.close(ready_write)
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        slot.pid, slot.ready_fd, slot.started = pid, ready_read, time.monotonic()

    def _restart_due(self) -> None:
        now = time.monotonic()
        for slot in self.slots:
            if slot.restart_at is not None and slot.restart_at <= now:
                self._start(slot)

    def _read_ready(self, slot: Slot) -> None:
        """The worker's one byte on listening, or EOF when it ended without listening."""
        if os.read(slot.ready_fd, 1):
            slot.listened = True
            if slot.died_at is not None:
                logger.info(
                    "worker %d (pid %d) is listening, %.2f s after pid %d died",
                    slot.index,
                    slot.pid,
                    time.monotonic() - slot.died_at,
                    slot.died_pid,
                )
            self._never_listened.discard(slot.index)
            if not self._never_listened and self.on_all_listening is not None:
                announce, self.on_all_listening = self.on_all_listening, None
                announce()
        os.close(slot.ready_fd)
        slot.ready_fd = -1

    # -- deaths -----------------------------------------------------------------------------

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            for slot in self.slots:
                if slot.pid == pid:
                    self._died(slot, os.waitstatus_to_exitcode(status))

    def _died(self, slot: Slot, code: int) -> None:
        """One line on what happened, then a restart later, or a stop when it keeps failing."""
        if slot.ready_fd >= 0:  # a byte written just before it died still counts
            self._read_ready(slot)
        pid, what = slot.pid, describe_exit(code)
        slot.pid = 0
        if self._stopping:
            if code != 0:
                logger.error("worker %d (pid %d) %s while stopping", slot.index, pid, what)
                self._code = 1
            return
        slot.died_at, slot.died_pid = time.monotonic(), pid
        before = "" if slot.listened else " before it listened"
        self._retry(slot, f"worker {slot.index} (pid {pid}) {what}{before}")

    def _retry(self, slot: Slot, what: str) -> None:
        """Log ``what`` happened and restart ``slot`` after its backoff, or give up on it."""
        now = time.monotonic()
        delay = slot.policy.after_death(slot.listened, now - slot.started)
        if delay is None:
            logger.error(
                "%s, %d times in a row; giving up and stopping all workers",
                what,
                slot.policy.start_failures,
            )
            self._code = 1
            self._stop(signal.SIGTERM)
            return
        logger.error("%s; restarting it in %g s", what, delay)
        slot.restart_at = now + delay

    # -- stopping ---------------------------------------------------------------------------

    def _stop(self, sig: int) -> None:
        """Forward ``sig`` to every worker; from the first one on, restart nothing."""
        if not self._stopping:
            self._stopping = True
            self._deadline = time.monotonic() + self.shutdown_timeout + STOP_SLACK
            for slot in self.slots:
                slot.restart_at = None
        for slot in self.slots:
            if slot.pid:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(slot.pid, sig)

    def _kill_the_rest(self) -> None:
        waited = self.shutdown_timeout + STOP_SLACK
        for slot in self.slots:
            if slot.pid:
                logger.error(
                    "worker %d (pid %d) did not stop within %g s of the stop signal; killing it",
                    slot.index,
                    slot.pid,
                    waited,
                )
                with contextlib.suppress(ProcessLookupError):
                    os.kill(slot.pid, signal.SIGKILL)
        for slot in self.slots:
            if slot.pid:
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(slot.pid, 0)
                slot.pid = 0


def _wake_only(_sig: int, _frame: FrameType | None) -> None:
    """SIGCHLD needs a Python handler for its wake-up byte to be written."""
