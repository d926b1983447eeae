"""What happened to the messages a destination queued: counters and upload times for metrics.

Every queued message ends as ``delivered`` (the receiver accepted its batch)
or ``failed`` (given up: a refusal, retries used up, the shutdown deadline),
and a failed one is written to the dead-letter file. ``flows.server.metrics`` shows
``Destination.stats()`` as ``flows_destination_messages_total{outcome}`` (the
queue gauges apart) and ``histograms()["upload_seconds"]`` as
``flows_destination_upload_seconds`` (``batch_size`` as
``flows_destination_batch_size``); ``metrics()`` below builds both the
same way for each destination that uses this package.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Literal

from collector.dead_letter import DeadLetterFile
from collector.histogram import BATCH_BUCKETS, Histogram

Outcome = Literal["queued", "delivered", "dropped_queue_full", "rejected", "failed"]


@dataclass(slots=True)
class DeliveryStats:
    """Counters of messages handed to a destination's sender; ``add`` is safe from any thread."""

    queued: int = 0
    delivered: int = 0
    dropped_queue_full: int = 0
    """Pushed outside an admitted request while the queue was full (logged)."""
    rejected: int = 0
    """Refused before queueing: sent again, they would fail the same way."""
    failed: int = 0
    """Given up after queueing; each is written to the dead-letter file."""
    upload_seconds: Histogram = field(default_factory=Histogram)
    """How long each batch took to upload, retries included."""
    batch_size: Histogram = field(default_factory=lambda: Histogram(BATCH_BUCKETS))
    """How many messages each upload carried (delivered or not)."""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, outcome: Outcome, count: int = 1) -> None:
        with self._lock:
            setattr(self, outcome, getattr(self, outcome) + count)

    def as_dict(self) -> dict[str, int]:
        return {
            "queued": self.queued,
            "delivered": self.delivered,
            "dropped_queue_full": self.dropped_queue_full,
            "rejected": self.rejected,
            "failed": self.failed,
        }


def metrics(
    stats: DeliveryStats, depth: int, capacity: int, dead_letter: DeadLetterFile | None
) -> dict[str, int]:
    """``Destination.stats()`` for a destination that delivers: counters and queue gauges."""
    return {
        **stats.as_dict(),
        "queue_depth": depth,
        "queue_capacity": capacity,
        "dead_lettered": dead_letter.lines_written if dead_letter else 0,
        "dead_letter_failed": dead_letter.write_failures if dead_letter else 0,
    }


def histograms(stats: DeliveryStats) -> dict[str, dict[str, Any]]:
    """``Destination.histograms()`` for a destination that delivers."""
    return {
        "upload_seconds": stats.upload_seconds.snapshot(),
        "batch_size": stats.batch_size.snapshot(),
    }
