"""Worker threads for destinations whose ``push`` may block (``Destination.blocking``).

A push that waits on the network would stall the event loop and with it every
connection, ``/health`` included. Such pushes run here instead, and the
request that made them awaits the result. The threads are daemons: a push
hanging at exit cannot hold the process past its shutdown deadline.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

THREADS = 16
"""Blocking pushes that run side by side (per process)."""
WAITING_PER_THREAD = 4
"""Requests that may wait for a thread, per thread, before the source answers 503."""

_Job = tuple[asyncio.AbstractEventLoop, "asyncio.Future[Any]", Callable[..., Any], tuple[Any, ...]]


class WorkerThreads:
    """A fixed set of daemon threads that run blocking calls for the event loop."""

    def __init__(self, threads: int = THREADS) -> None:
        self.threads = threads
        self.limit = threads * (1 + WAITING_PER_THREAD)
        self.pending = 0
        self._jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._started: list[threading.Thread] = []

    @property
    def busy(self) -> bool:
        """Every thread is taken and enough requests already wait for one."""
        return self.pending >= self.limit

    async def run(self, function: Callable[..., T], *args: Any) -> T:
        """``function(*args)`` on a worker thread; awaited from the event loop."""
        if not self._started:
            self._start()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self.pending += 1
        try:
            self._jobs.put((loop, future, function, args))
            return await future
        finally:
            self.pending -= 1

    def _start(self) -> None:
        for index in range(self.threads):
            thread = threading.Thread(target=self._work, name=f"flows-push-{index}", daemon=True)
            thread.start()
            self._started.append(thread)

    def _work(self) -> None:
        while True:
            loop, future, function, args = self._jobs.get()
            try:
                result = function(*args)
            except BaseException as error:  # handed to the awaiting request
                loop.call_soon_threadsafe(_settle, future, None, error)
            else:
                loop.call_soon_threadsafe(_settle, future, result, None)


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
