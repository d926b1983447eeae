"""A forked worker stops when its parent dies, instead of serving on as an orphan.

Without this, a SIGKILLed parent leaves its workers accepting on the port
with nobody to stop, restart or count them. On Linux the kernel sends the
worker SIGTERM when the parent dies (``prctl(PR_SET_PDEATHSIG)``); elsewhere
a thread notices within a second that the parent changed. Either way the
worker gets a plain SIGTERM, so it stops as it would for ``docker stop``:
it finishes its requests and flushes its queue within the shutdown timeout.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import threading
import time

PR_SET_PDEATHSIG = 1
POLL_INTERVAL = 1.0
"""Seconds between the fallback thread's looks at the parent (not used on Linux)."""


def stop_with_parent(parent_pid: int) -> bool:
    """Arrange a SIGTERM to this process when ``parent_pid`` dies; False if it already has."""
    if not _set_pdeathsig(signal.SIGTERM):
        watch_parent(parent_pid)
    # A parent that died before the prctl above sent no signal; its child is re-parented.
    return os.getppid() == parent_pid


def watch_parent(parent_pid: int, interval: float = POLL_INTERVAL) -> threading.Thread:
    """The fallback: a daemon thread that sends this process SIGTERM once the parent is gone."""

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(interval)
        os.kill(os.getpid(), signal.SIGTERM)

    thread = threading.Thread(target=watch, name="flows-parent-watch", daemon=True)
    thread.start()
    return thread


def _set_pdeathsig(sig: int) -> bool:
    """``prctl(PR_SET_PDEATHSIG, sig)``; False where there is no such call."""
    if not sys.platform.startswith("linux"):
        return False
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        zero = ctypes.c_ulong(0)
        return bool(libc.prctl(PR_SET_PDEATHSIG, ctypes.c_ulong(sig), zero, zero, zero) == 0)
    return False
