"""A bounded in-memory queue with background threads that upload it in batches.

``push`` runs on the event loop, so a destination only ``put``s there; the
threads here gather batches (``size`` items, or what came within ``wait``
seconds of the first), hand each to the destination's ``Transport``, retry
it under the ``RetryPolicy`` and, once it is given up, pass it to
``on_failure`` (the dead-letter file). Each item ends counted exactly once:
``delivered`` or ``failed``.

``shutdown(timeout)`` uploads what is queued without waiting for batches to
fill, and returns within ``timeout``: at the deadline, retry waits are cut
short, batches still uploading are recorded as failed (they may yet arrive)
and what is still queued goes to ``on_failure`` too. The threads are made in
the process that uses them (again after a fork) and again after a shutdown.
"""

from __future__ import annotations

import collections
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Final, Generic, Protocol, TypeVar

from collector.dead_letter import first_line
from collector.delivery.health import UploadHealth
from collector.delivery.retry import RetryPolicy
from collector.delivery.room import QueueRoom
from collector.delivery.stats import DeliveryStats
from collector.destination import ShutdownReport

T = TypeVar("T")

IN_FLIGHT_AT_DEADLINE: Final = (
    "shutdown: upload still in flight at the deadline (it may yet arrive)"
)
QUEUED_AT_DEADLINE: Final = "shutdown timeout: still queued at the deadline"
JOIN_GRACE: Final = 0.05
"""Seconds past the deadline a shutdown waits for the threads it told to stop."""


class SendError(Exception):
    """An upload failed; ``retryable`` says whether asking again may help."""

    def __init__(self, reason: str, *, retryable: bool, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable
        self.retry_after = retry_after


class Transport(Protocol[T]):
    """How one batch is uploaded; made once per process by the sender's ``open`` callable."""

    def send(self, items: list[T]) -> None:
        """Upload ``items`` as one batch; raise SendError when it was not accepted."""

    def close(self) -> None:
        """Release connections; called once no thread uses the transport any more."""


@dataclass(frozen=True, slots=True)
class Batching:
    """``size`` items per upload at most, gathered for at most ``wait`` seconds."""

    size: int = 1
    wait: float = 0.0


@dataclass(eq=False, slots=True)
class _Batch(Generic[T]):
    """Items taken from the queue by one thread; settled once, by it or by the shutdown.

    Compared by identity: while it is in ``_Run.held``, nobody has counted it yet.
    """

    items: list[T]


@dataclass(slots=True)
class _Run(Generic[T]):
    """The state of one process's sender threads (made again after a fork or a shutdown)."""

    transport: Transport[T]
    items: collections.deque[T] = field(default_factory=collections.deque)
    held: set[_Batch[T]] = field(default_factory=set)
    threads: list[threading.Thread] = field(default_factory=list)
    changed: threading.Condition = field(
        default_factory=lambda: threading.Condition(threading.Lock())
    )
    """Guards ``items`` and ``held``; notified when items arrive, the queue empties, or a stop."""
    stop: threading.Event = field(default_factory=threading.Event)
    hurrying: bool = False
    """Set by a shutdown: upload what is gathered, do not wait for batches to fill."""
    stopping: bool = False


class BatchSender(Generic[T]):
    """A queue of up to ``capacity`` items, uploaded in batches by ``threads`` threads."""

    def __init__(
        self,
        name: str,
        open_transport: Callable[[], Transport[T]],
        *,
        batching: Batching,
        policy: RetryPolicy,
        capacity: int,
        threads: int = 1,
        on_failure: Callable[[list[T], str], None] | None = None,
        secrets: Iterable[str] = (),
    ) -> None:
        self.name = name
        self.batching = batching
        self.policy = policy
        self.stats = DeliveryStats()
        self.room = QueueRoom(capacity, self.depth)
        self.logger = logging.getLogger(f"flows.destination.{name}")
        self.health = UploadHealth(self.logger, name)
        """Logs when uploads start failing (the first failed attempt) and when they recover."""
        self._open = open_transport
        self._threads = threads
        self._on_failure = on_failure
        self._secrets = tuple(s for s in secrets if s)
        self._run: _Run[T] | None = None
        self._start_lock = threading.Lock()
        self._gathering = threading.Lock()  # one thread fills a batch at a time
        self._accounting = threading.Lock()  # held from settling a batch until it is recorded
        forgetting = weakref.WeakMethod(self._forget_parent)
        os.register_at_fork(after_in_child=lambda: (method := forgetting()) and method())

    def _forget_parent(self) -> None:
        """In a forked child: the parent's threads are gone and its queue is its own."""
        self._run = None
        self._start_lock = threading.Lock()  # a fork may have copied these held
        self._gathering = threading.Lock()
        self._accounting = threading.Lock()

    # -- the threads, per process -----------------------------------------------------------

    def start(self) -> None:
        """Make the transport and start the threads in this process (again after a fork)."""
        self._current()

    def _current(self) -> _Run[T]:
        run = self._run
        if run is not None:
            return run
        with self._start_lock:
            if self._run is None:
                run = _Run(self._open())
                for index in range(self._threads):
                    thread = threading.Thread(
                        target=self._work,
                        args=(run,),
                        name=f"flows-{self.name}-sender-{index}",
                        daemon=True,  # a hanging upload must not hold the process past its deadline
                    )
                    thread.start()
                    run.threads.append(thread)
                self._run = run
            return self._run

    def depth(self) -> int:
        """Items queued and not yet taken for an upload."""
        run = self._run
        return len(run.items) if run is not None else 0

    # -- queueing ---------------------------------------------------------------------------

    def put(self, item: T) -> bool:
        """Queue one item; False (counted, logged) when it found no room.

        A request the http source admitted holds room (``room.reserve``), so
        its items always fit; only a push outside a reservation is dropped.
        """
        run = self._current()
        if self.room.full_for_unreserved():
            self.stats.add("dropped_queue_full")
            self.logger.warning(
                "%s queue is full (maxQueueSize=%d): event dropped", self.name, self.room.capacity
            )
            return False
        size = self.batching.size
        with run.changed:
            run.items.append(item)
            queued = len(run.items)
            if queued == 1 or queued >= size:  # a thread waits for a first item or a full batch
                run.changed.notify_all()  # the gatherer, and a shutdown that may wait too
        self.stats.add("queued")
        return True

    # -- the upload threads -----------------------------------------------------------------

    def _work(self, run: _Run[T]) -> None:
        while True:
            batch = self._take(run)
            if batch is None:
                return
            try:
                self._deliver(run, batch)
            except BaseException:  # never lose a thread (and what it held) silently
                self.logger.exception("%s: sender thread failed", self.name)
                self._settle(run, batch, "sender thread failed", 0.0)

    def _take(self, run: _Run[T]) -> _Batch[T] | None:
        """The next batch to upload, once it is full or ``wait`` passed; None when stopping."""
        size, wait = self.batching.size, self.batching.wait
        with self._gathering, run.changed:
            while not run.items:
                if run.stopping:
                    return None
                run.changed.wait()
            if run.stopping:
                return None
            deadline = time.monotonic() + wait
            while len(run.items) < size and not run.hurrying:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                run.changed.wait(remaining)
            if run.stopping:  # the shutdown records what is left
                return None
            count = min(size, len(run.items))
            batch = _Batch([run.items.popleft() for _ in range(count)])
            run.held.add(batch)
            return batch

    def flush(self, timeout: float) -> bool:
        """Upload what is queued now, not waiting for full batches; True once every item
        was delivered or given to ``on_failure``, False if ``timeout`` s passed first."""
        run = self._run
        if run is None:
            return True
        deadline = time.monotonic() + timeout
        with run.changed:
            hurried = not run.hurrying
            run.hurrying = True
            run.changed.notify_all()
            try:
                while run.items or run.held:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return False
                    run.changed.wait(remaining)
                return True
            finally:
                if hurried and not run.stopping:
                    run.hurrying = False

    def _deliver(self, run: _Run[T], batch: _Batch[T]) -> None:
        started = time.monotonic()
        attempts = self.policy.attempts()
        while True:
            try:
                run.transport.send(batch.items)
            except SendError as error:
                self.health.failed(error.reason)
                delay = attempts.next_delay(error.retry_after) if error.retryable else None
                if delay is None:
                    tries = attempts.retries + 1
                    reason = f"{error.reason} (after {tries} attempt{'s' if tries > 1 else ''})"
                    break
                if run.stop.wait(delay):
                    reason = f"shutdown: stopped before the batch was delivered ({error.reason})"
                    break
            except Exception as error:
                reason = (
                    f"upload failed: {type(error).__name__}: {first_line(error, self._secrets)}"
                )
                self.health.failed(reason)
                break
            else:
                self.health.succeeded()
                self._settle(run, batch, None, time.monotonic() - started)
                return
        self._settle(run, batch, reason, time.monotonic() - started)

    def _settle(self, run: _Run[T], batch: _Batch[T], reason: str | None, seconds: float) -> None:
        """Count a batch the thread finished (unless the shutdown abandoned it) and record it."""
        with self._accounting:
            with run.changed:
                owned = batch in run.held
                run.held.discard(batch)
                if not run.items and not run.held:
                    run.changed.notify_all()  # a shutdown may wait for this
            if not owned:
                return
            self.stats.upload_seconds.observe(seconds)
            self.stats.batch_size.observe(len(batch.items))
            if reason is None:
                self.stats.add("delivered", len(batch.items))
            else:
                self._failed(batch.items, reason)

    def _failed(self, items: list[T], reason: str) -> None:
        """Count items given up on and hand them to ``on_failure``; never raises."""
        if not items:
            return
        self.stats.add("failed", len(items))
        try:
            self.logger.error(
                "%s: %d item(s) not delivered: %s",
                self.name,
                len(items),
                reason,
                extra={"destination": self.name},
            )
            if self._on_failure is not None:
                self._on_failure(items, reason)
        except Exception:
            self.logger.exception("%s: recording undelivered items failed", self.name)

    # -- shutdown ---------------------------------------------------------------------------

    def shutdown(self, timeout: float) -> ShutdownReport:
        """Upload what is queued within ``timeout`` seconds; record what was not, and stop."""
        run = self._run
        if run is None:
            return ShutdownReport()
        deadline = time.monotonic() + max(0.0, timeout)
        failed_before = self.stats.failed
        with run.changed:
            run.hurrying = True
            run.changed.notify_all()
            while run.items or run.held:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                run.changed.wait(remaining)
            timed_out = bool(run.items or run.held)
            run.stopping = True
            run.changed.notify_all()
        run.stop.set()  # retry waits end now: their batches are recorded as failed
        joined_by = deadline + JOIN_GRACE
        for thread in run.threads:
            thread.join(max(0.0, joined_by - time.monotonic()))
        with self._accounting:
            with run.changed:
                in_flight = list(run.held)
                run.held.clear()
                left = list(run.items)
                run.items.clear()
            self._failed(
                [item for batch in in_flight for item in batch.items], IN_FLIGHT_AT_DEADLINE
            )
            self._failed(left, QUEUED_AT_DEADLINE)
        if not any(thread.is_alive() for thread in run.threads):
            run.transport.close()  # else a thread still uses it; the process exit ends both
        with self._start_lock:
            if self._run is run:
                self._run = None  # a later put starts afresh
        undelivered = self.stats.failed - failed_before
        held = sum(len(batch.items) for batch in in_flight)
        return ShutdownReport.after_flush(undelivered, timed_out, len(left), held, "item")
