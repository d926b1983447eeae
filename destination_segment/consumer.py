"""The SDK's upload thread, changed in three places: shutdown, accounting and gathering.

segment-analytics-python 2.4 hands a batch back to its queue when it is
paused in the middle of one (a request still hanging, a retry or Retry-After
wait cut short): ``_requeue``. After our bounded shutdown has stopped the
consumers and drained the queue, nobody reads that queue again, so those
messages would vanish without a trace. Once the consumer is paused, this
subclass gives such a batch to ``on_error`` instead, which dead-letters it.
While running it re-queues exactly as the SDK does (429 with Retry-After).

Between reporting a batch (``on_error``, which counts it as failed) and the
SDK's ``task_done`` for it, a batch would be counted twice by a shutdown that
looks in between: once as failed, once as unfinished in the queue. A consumer
therefore holds the shared ``accounting`` lock from the moment it reports or
re-queues a batch until its upload returns; the shutdown counts under it.

``next`` keeps the SDK's batch limits but takes the queue in bulk, one
consumer at a time, and reuses the sizes ``FastEnqueueClient`` measured.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from queue import Empty
from typing import Any

from destination_segment.sdk import BATCH_SIZE_LIMIT, MAX_MSG_SIZE, Consumer
from destination_segment.sdk_client import SDK_ENCODER

GATHER_SLICE = 0.02
"""Seconds a consumer sleeps between bulk takes while its batch fills."""
IDLE_SLICE = 0.1
"""Longest wait for a first message before looking again whether a shutdown paused us."""


class StoppedBeforeDeliveryError(Exception):
    """The consumer was stopped (shutdown) while it still held a batch."""


class ShutdownSafeConsumer(Consumer):  # type: ignore[misc]  # the SDK is untyped
    """A Consumer whose batches, once it is paused, go to ``on_error`` rather than the queue.

    It also knows the batch it holds, from gathering it until its upload
    settles (a request hanging, a retry wait), so a shutdown that cannot wait
    can still record that batch (``abandon``) before the process exits and the
    thread dies with it.
    """

    def __init__(
        self,
        *args: Any,
        message_sizes: dict[int, int] | None = None,
        gathering: threading.Lock | None = None,
        accounting: threading.Lock | None = None,
        on_uploaded: Callable[[int, BaseException | None, float], None] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self._uploaded = on_uploaded
        """Told (messages in the batch, the error or None when delivered, seconds) after
        each batch upload (the SDK's retries included)."""
        self._sizes = message_sizes if message_sizes is not None else {}
        self._gathering = gathering or threading.Lock()
        self._accounting = accounting or threading.Lock()
        self._settling = False
        self._report: Callable[[Exception, list[dict[str, Any]]], None] | None = kwargs.get(
            "on_error"
        )
        self.on_error = self._report_unless_abandoned
        self._held: list[dict[str, Any]] | None = None
        self._abandoned: list[dict[str, Any]] | None = None
        self._state = threading.Lock()
        self.hurrying = False
        """Set by a shutdown: upload what is gathered now, do not wait for the batch to fill."""

    def upload(self) -> bool:
        """The SDK's upload; then nothing is held, and a settled report lets go of ``accounting``."""
        try:
            return bool(super().upload())
        finally:
            with self._state:
                self._held = None
            if self._settling:
                self._settling = False
                self._accounting.release()

    def request(self, batch: list[dict[str, Any]]) -> Any:
        """The SDK's request (its retries included), timed; once it succeeded, a shutdown
        has nothing of this batch to record."""
        started = time.monotonic()
        try:
            response = super().request(batch)
        except BaseException as error:
            if self._uploaded is not None:
                self._uploaded(len(batch), error, time.monotonic() - started)
            raise
        with self._state:
            self._held = None  # delivered: nothing left to abandon
        if self._uploaded is not None:
            self._uploaded(len(batch), None, time.monotonic() - started)
        return response

    def abandon(self) -> list[dict[str, Any]] | None:
        """Take the batch held and not yet settled (None if none); it is not reported again.

        Call it holding the ``accounting`` lock: a batch is then either still
        held (returned here) or already reported and marked done, never both.
        """
        with self._state:
            self._abandoned = self._held
            self._held = None
            return self._abandoned

    def _settle(self) -> None:
        """Hold ``accounting`` until this upload returns (its task_done calls included)."""
        if not self._settling:
            self._accounting.acquire()
            self._settling = True

    def _let_go(self, batch: list[dict[str, Any]]) -> bool:
        """Stop holding ``batch``; False when a shutdown abandoned (and so reported) it."""
        with self._state:
            if batch is self._abandoned:
                return False
            if batch is self._held:
                self._held = None
            return True

    def _report_unless_abandoned(self, error: Exception, batch: list[dict[str, Any]]) -> None:
        self._settle()
        if self._let_go(batch) and self._report is not None:
            self._report(error, batch)

    def next(self) -> list[dict[str, Any]]:
        """The SDK's batch rules, with the queue taken in bulk rather than a wake-up per message.

        The SDK blocks in ``queue.get`` for every message, so each enqueue on
        the request path wakes this thread to take the GIL for one message:
        a hand-off per event. Here the first message is awaited as the SDK does,
        then whatever is queued is taken at once, and the thread sleeps
        ``GATHER_SLICE`` between takes while the batch fills. Consumers sharing
        a ``gathering`` lock fill one batch at a time (the SDK's take turns per
        message, so each uploads half-full batches) and upload side by side.
        Limits are the SDK's: ``upload_size`` messages, ``upload_interval``
        seconds, 32 KB per message, 475 KB per batch, sizes as the SDK's encoder
        counts them (taken from ``message_sizes`` when ``FastEnqueueClient``
        measured the message).
        """
        with self._gathering:
            batch = self._gather()
        with self._state:
            self._held = batch or None
        return batch

    def _gather(self) -> list[dict[str, Any]]:
        queue = self.queue
        items: list[dict[str, Any]] = []
        total_size = 0
        deadline = time.monotonic() + self.upload_interval
        while len(items) < self.upload_size:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                item = queue.get_nowait() if items else queue.get(True, min(remaining, IDLE_SLICE))
            except Empty:
                if not self.running or (items and self.hurrying):
                    break
                if items:
                    time.sleep(min(GATHER_SLICE, remaining))
                continue
            size = self._sizes.pop(id(item), None)
            if size is None:  # not measured at enqueue (re-queued, or the SDK's own path)
                size = len(SDK_ENCODER.encode(item))
            if size > MAX_MSG_SIZE:
                self.log.error("Item exceeds 32kb limit, dropping. (%s)", str(item))
                queue.task_done()
                continue
            items.append(item)
            total_size += size
            if total_size >= BATCH_SIZE_LIMIT:
                break
        return items

    def _requeue(self, batch: list[dict[str, Any]]) -> None:
        self._settle()
        if self.running:  # no shutdown yet, so nothing was abandoned
            self._let_go(batch)
            super()._requeue(batch)
            return
        self.on_error(
            StoppedBeforeDeliveryError("shutdown: stopped before the batch was delivered"), batch
        )
