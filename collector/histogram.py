"""A histogram (durations, batch sizes), kept as plain counts so workers can add theirs up."""

from __future__ import annotations

import bisect
import threading
from typing import Any

UPLOAD_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
"""Upper bounds in seconds (Prometheus' defaults, stretched to the SDK's retry times)."""
BATCH_BUCKETS = (1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0)
"""Upper bounds in messages per upload (Segment's batches hold at most 100 by default and
stop at 500 KB; the api destination's ``batch`` setting may go higher)."""


class Histogram:
    """Counts per bucket, a sum and a count; ``observe`` is safe from many threads."""

    def __init__(self, buckets: tuple[float, ...] = UPLOAD_BUCKETS) -> None:
        self.buckets = buckets
        self._counts = [0] * (len(buckets) + 1)  # the last one is +Inf
        self._sum = 0.0
        self._lock = threading.Lock()

    def observe(self, value: float) -> None:
        index = bisect.bisect_left(self.buckets, value)
        with self._lock:
            self._counts[index] += 1
            self._sum += value

    def snapshot(self) -> dict[str, Any]:
        """``{"buckets": {"0.005": n, ..., "+Inf": n}, "sum": s}``, counts per bucket (not
        cumulative), JSON-able and summable across workers."""
        with self._lock:
            counts = list(self._counts)
            total = self._sum
        bounds = [*(repr(b) for b in self.buckets), "+Inf"]
        return {"buckets": dict(zip(bounds, counts, strict=True)), "sum": total}
