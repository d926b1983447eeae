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

from typing import Any

from segment.analytics.consumer import Consumer


class StoppedBeforeDeliveryError(Exception):
    """The consumer was stopped (shutdown) while it still held a batch."""


class ShutdownSafeConsumer(Consumer):  # type: ignore[misc]  # the SDK is untyped
    """A Consumer whose batches, once it is paused, go to ``on_error`` rather than the queue."""

    def _requeue(self, batch: list[dict[str, Any]]) -> None:
        if self.running:
            super()._requeue(batch)
            return
        if self.on_error is not None:
            self.on_error(
                StoppedBeforeDeliveryError("shutdown: stopped before the batch was delivered"),
                batch,
            )
        else:
            self.log.error("shutdown: %d message(s) stopped before delivery", len(batch))
