"""The SDK's upload thread, changed in one place: what it holds at shutdown is reported.

segment-analytics-python 2.4 hands a batch back to its queue when it is
paused in the middle of one (a request still hanging, a retry or Retry-After
wait cut short): ``_requeue``. After our bounded shutdown has stopped the
consumers and drained the queue, nobody reads that queue again, so those
messages would vanish without a trace. Once the consumer is paused, this
subclass gives such a batch to ``on_error`` instead, which dead-letters it.
While running it re-queues exactly as the SDK does (429 with Retry-After).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from segment.analytics.consumer import Consumer


class StoppedBeforeDeliveryError(Exception):
    """The consumer was stopped (shutdown) while it still held a batch."""


class ShutdownSafeConsumer(Consumer):  # type: ignore[misc]  # the SDK is untyped
    """A Consumer whose batches, once it is paused, go to ``on_error`` rather than the queue.

    It also knows the batch it is uploading, so a shutdown that cannot wait for
    a hanging request can still record that batch (``abandon``) before the
    process exits and the thread dies with it.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._report: Callable[[Exception, list[dict[str, Any]]], None] | None = kwargs.get(
            "on_error"
        )
        self.on_error = self._report_unless_abandoned
        self._in_flight: list[dict[str, Any]] | None = None
        self._abandoned: list[dict[str, Any]] | None = None
        self._state = threading.Lock()

    def request(self, batch: list[dict[str, Any]]) -> Any:
        with self._state:
            self._in_flight = batch
        try:
            return super().request(batch)
        finally:
            with self._state:
                self._in_flight = None

    def abandon(self) -> list[dict[str, Any]] | None:
        """Take the batch still uploading (None if none); later failures of it are not reported again."""
        with self._state:
            self._abandoned = self._in_flight
            return self._abandoned

    def _report_unless_abandoned(self, error: Exception, batch: list[dict[str, Any]]) -> None:
        if batch is self._abandoned or self._report is None:
            return
        self._report(error, batch)

    def _requeue(self, batch: list[dict[str, Any]]) -> None:
        if self.running:
            super()._requeue(batch)
            return
        self.on_error(
            StoppedBeforeDeliveryError("shutdown: stopped before the batch was delivered"), batch
        )
