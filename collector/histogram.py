"""A histogram of durations, kept as plain counts so workers can add theirs up."""

from __future__ import annotations

import bisect
import threading
from typing import Any

UPLOAD_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
"""Upper bounds in seconds (Prometheus' defaults, stretched to the SDK's retry times)."""


class Histogram:
    """Counts per bucket, a sum and a count; ``observe`` is safe from many threads."""

    def __init__(self, buckets: tuple[float, ...] = UPLOAD_BUCKETS) -> None:
        self.buckets = buckets
        self._counts = [0] * (len(buckets) + 1)  # the last one is +Inf
        self._sum = 0.0
        self._lock = threading.Lock()

    def observe(self, seconds: float) -> None:
        index = bisect.bisect_left(self.buckets, seconds)
        with self._lock:
            self._counts[index] += 1
            self._sum += seconds

    def snapshot(self) -> dict[str, Any]:
        """``{"buckets": {"0.005": n, ..., "+Inf": n}, "sum": s}``, counts per bucket (not
        cumulative), JSON-able and summable across workers."""
        with self._lock:
            counts = list(self._counts)
            total = self._sum
        bounds = [*(repr(b) for b in self.buckets), "+Inf"]
        return {"buckets": dict(zip(bounds, counts, strict=True)), "sum": total}
