"""What a forked worker of ``flows run --workers`` does between ``fork()`` and its exit.

The child starts as a copy of the supervising parent, with its signal
handlers, its wake-up pipe and the other workers' readiness pipes. It drops
those, arranges to stop when the parent dies, serves, and leaves with
``os._exit`` so nothing of the parent's (atexit hooks, buffers) runs twice.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
from collections.abc import Callable, Iterable
from types import FrameType
from typing import NoReturn

from flows.server.parent_death import stop_with_parent
from flows.server.serving import STOP_SIGNALS

logger = logging.getLogger("flows.server")

ServeOne = Callable[[int, Callable[[], None]], int]
"""``serve_one(index, on_listening) -> exit code``: one worker's whole life."""


class StopOutsideServing:
    """The worker's stop signals while uvicorn's own handler is not installed.

    Before serving, nothing was accepted yet, so a stop (the parent stopping,
    or dying, while this worker starts) just exits. After serving, the
    worker is already flushing for the first signal; a repeated one (Ctrl-C
    reaches the parent and every worker) must not cut that flush short.
    """

    def __init__(self) -> None:
        self.served = False

    def __call__(self, _sig: int, _frame: FrameType | None) -> None:
        if not self.served:
            os._exit(0)


def run_worker(
    index: int,
    serve_one: ServeOne,
    ready_write: int,
    parent_pid: int,
    inherited: Iterable[int],
) -> NoReturn:
    """The child's side of a fork: never returns into the parent's code."""
    code = 1
    try:
        code = _serve(index, serve_one, ready_write, parent_pid, inherited)
    except SystemExit as stop:  # uvicorn exits 3 when the app's start-up failed
        code = stop.code if isinstance(stop.code, int) else 1
    except BaseException:
        logger.exception("worker %d failed", index)
    finally:
        _exit(code)


def _serve(
    index: int,
    serve_one: ServeOne,
    ready_write: int,
    parent_pid: int,
    inherited: Iterable[int],
) -> int:
    """Drop the parent's handlers and pipes, then serve; stop signals arrive blocked."""
    signal.set_wakeup_fd(-1)
    for fd in inherited:
        with contextlib.suppress(OSError):
            os.close(fd)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    guard = StopOutsideServing()
    for sig in STOP_SIGNALS:
        signal.signal(sig, guard)
    if not stop_with_parent(parent_pid):
        return 0  # the parent is already gone: nobody to serve for
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)

    def on_listening() -> None:
        guard.served = True
        tell_ready(ready_write)

    code = serve_one(index, on_listening)
    if os.getppid() != parent_pid:
        logger.warning("worker %d stopped because its parent (pid %d) died", index, parent_pid)
    return code


def tell_ready(ready_write: int) -> None:
    """Say "listening" once, then let go of the pipe (a parent gone is not an error)."""
    with contextlib.suppress(OSError):
        os.write(ready_write, b".")
    with contextlib.suppress(OSError):
        os.close(ready_write)


def _exit(code: int) -> NoReturn:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)
