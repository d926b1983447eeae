"""Several server processes on one socket (pre-fork), for more than one core.

Python runs one thread of Python at a time, and the SDK's message encoding
shares that thread with the server; a second process is how a 2-core machine
uses its second core. The parent binds the socket, forks the workers (each
makes its own SDK client after the fork, as the SDK requires), restarts one
that dies, forwards SIGTERM/SIGINT to them, and waits until every one has
flushed and exited. A worker whose parent dies stops as if sent SIGTERM.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from collections.abc import Callable
from pathlib import Path

from collector.collector import Collector
from flows.http.source import HttpSource
from flows.server.metrics import SharedSnapshots
from flows.server.serving import serve_socket
from flows.server.supervisor import Supervisor
from flows.server.worker_process import ServeOne


def serve_workers(
    collector: Collector,
    source: HttpSource,
    sock: socket.socket,
    url: str,
    *,
    workers: int,
    shutdown_timeout: float,
    ready_message: Callable[[str], None] | None = None,
    access_log: bool = False,
) -> int:
    """Fork ``workers`` servers on ``sock``; returns 0 when all of them stopped cleanly."""
    shared_dir = Path(tempfile.mkdtemp(prefix="flows-metrics-"))
    parent = os.getpid()
    for active in collector.destinations:
        active.destination.before_fork(workers)

    def serve_one(index: int, on_listening: Callable[[], None]) -> int:
        shared = source.shared = SharedSnapshots(shared_dir, index)
        try:
            return serve_socket(
                collector,
                source,
                sock,
                shutdown_timeout,
                on_listening=on_listening,
                access_log=access_log,
            )
        finally:
            if os.getppid() != parent:  # the parent died (SIGKILL): its cleanup never runs
                shared.leave()

    try:
        return prefork(
            sock, url, workers, serve_one, ready_message, shutdown_timeout=shutdown_timeout
        )
    finally:
        shutil.rmtree(shared_dir, ignore_errors=True)


def prefork(
    sock: socket.socket,
    url: str,
    workers: int,
    serve_one: ServeOne,
    ready_message: Callable[[str], None] | None = None,
    *,
    shutdown_timeout: float = 10.0,
) -> int:
    """Run ``serve_one(index, on_listening)`` in ``workers`` forked processes sharing ``sock``.

    The parent prints ``ready_message`` once every worker listens, restarts a
    worker that dies (see flows/server/supervisor.py), forwards SIGTERM/SIGINT, and
    returns 0 when every worker then exited with 0 within ``shutdown_timeout``.
    """

    def announce() -> None:
        if ready_message is not None:
            ready_message(f"{url} ({workers} workers)")

    supervisor = Supervisor(
        sock, workers, serve_one, shutdown_timeout=shutdown_timeout, on_all_listening=announce
    )
    try:
        return supervisor.run()
    finally:
        sock.close()
