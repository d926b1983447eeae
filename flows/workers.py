"""Several server processes on one socket (pre-fork), for more than one core.

Python runs one thread of Python at a time, and the SDK's message encoding
shares that thread with the server; a second process is how a 2-core machine
uses its second core. The parent binds the socket, forks the workers (each
makes its own SDK client after the fork, as the SDK requires), forwards
SIGTERM/SIGINT to them, and waits until every one has flushed and exited.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import tempfile
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from collector.collector import Collector
from flows.http import HttpSource
from flows.metrics import SharedSnapshots
from flows.server import STOP_SIGNALS, serve_socket

logger = logging.getLogger("flows.server")


def serve_workers(
    collector: Collector,
    source: HttpSource,
    sock: socket.socket,
    url: str,
    *,
    workers: int,
    shutdown_timeout: float,
    ready_message: Callable[[str], None] | None = None,
) -> int:
    """Fork ``workers`` servers on ``sock``; returns 0 when all of them stopped cleanly."""
    shared_dir = Path(tempfile.mkdtemp(prefix="flows-metrics-"))
    for active in collector.destinations:
        active.destination.before_fork(workers)

    def serve_one(index: int, on_listening: Callable[[], None]) -> int:
        source.shared = SharedSnapshots(shared_dir, index)
        return serve_socket(collector, source, sock, shutdown_timeout, on_listening=on_listening)

    try:
        return prefork(sock, url, workers, serve_one, ready_message)
    finally:
        shutil.rmtree(shared_dir, ignore_errors=True)


def prefork(
    sock: socket.socket,
    url: str,
    workers: int,
    serve_one: Callable[[int, Callable[[], None]], int],
    ready_message: Callable[[str], None] | None = None,
) -> int:
    """Run ``serve_one(index, on_listening)`` in ``workers`` forked processes sharing ``sock``.

    The parent prints ``ready_message`` once every worker listens, forwards
    SIGTERM/SIGINT, and returns 0 when every worker exited with 0.
    """
    ready_read, ready_write = os.pipe()
    children: list[int] = []
    for index in range(workers):
        pid = os.fork()
        if pid == 0:  # the worker
            os.close(ready_read)
            code = 1
            try:
                code = serve_one(index, lambda: _tell_ready(ready_write))
            finally:
                os._exit(code)
        children.append(pid)
    os.close(ready_write)
    sock.close()
    stopping = _forward_stop_signals(children)
    _announce_when_ready(ready_read, workers, url, ready_message)
    failed = _wait_for_workers(children, stopping)
    return 1 if failed else 0


def _wait_for_workers(children: list[int], stopping: Callable[[], bool]) -> int:
    """Wait for every worker; the number that exited with an error."""
    failed = 0
    for _ in children:
        pid, status = os.wait()  # retried after a signal handler runs (PEP 475)
        code = os.waitstatus_to_exitcode(status)
        if code != 0:
            failed += 1
            logger.error("worker %d exited with %d", pid, code)
        if not stopping():
            logger.error("worker %d stopped on its own; stopping the others", pid)
            _signal_all(children, signal.SIGTERM)
    return failed


def _tell_ready(ready_write: int) -> None:
    """Say "listening" once, then let go of the pipe so the parent sees EOF when all did."""
    os.write(ready_write, b".")
    os.close(ready_write)


def _announce_when_ready(
    ready_read: int, workers: int, url: str, ready_message: Callable[[str], None] | None
) -> None:
    """Print the banner once every worker listens (blocks; a stop signal interrupts nothing)."""
    seen = 0
    with os.fdopen(ready_read, "rb", buffering=0) as ready:
        while seen < workers:
            chunk = ready.read(workers - seen)
            if not chunk:  # every worker closed its end: some failed to start
                return
            seen += len(chunk)
    if ready_message is not None:
        ready_message(f"{url} ({workers} workers)")


def _forward_stop_signals(children: list[int]) -> Callable[[], bool]:
    stopped = False

    def forward(sig: int, _frame: FrameType | None) -> None:
        nonlocal stopped
        stopped = True
        _signal_all(children, sig)

    for sig in STOP_SIGNALS:
        signal.signal(sig, forward)
    return lambda: stopped


def _signal_all(children: list[int], sig: int) -> None:
    for pid in children:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
