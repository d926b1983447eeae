"""Prometheus metrics, read from plain counters at scrape time.

The request path only bumps ints; this module turns them into metric
families when ``/metrics`` is scraped, so metrics cost nothing per event.
"""

from __future__ import annotations

import contextlib
import logging
import os
import platform
from collections.abc import Callable, Iterator
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector as MetricsCollector

from collector.collector import Collector

if TYPE_CHECKING:
    from flows.buffer.stream import BufferStats, EventBuffer
    from flows.http.source import HttpSource

GAUGES = {"queue_depth", "queue_capacity"}
logger = logging.getLogger("flows.server.metrics")


Snapshot = dict[str, Any]
"""Plain counters of one process, JSON-able, so workers can add up each other's."""


def snapshot(collector: Collector, source: HttpSource) -> Snapshot:
    """This process's counters, read now."""
    stats = source.stats
    return {
        "requests": {str(status): count for status, count in stats.requests.items()},
        "received": stats.received,
        "accepted": stats.accepted,
        "rejected": stats.rejected,
        "overloaded": stats.overloaded,
        "destinations": {
            active.id: {
                "sent": active.stats.sent,
                "failed": active.stats.failed,
                "rejected": active.stats.rejected,
                "skipped": dict(active.stats.skipped),
                "stats": active.destination.stats(),
                "histograms": active.destination.histograms(),
            }
            for active in collector.destinations
        },
        "transformers": {
            transformer_id: {
                "passed": stats.passed,
                "changed": stats.changed,
                "dropped": stats.dropped,
                "rejected": stats.rejected,
                "failed": stats.failed,
            }
            for transformer_id, stats in collector.transformer_stats.items()
        },
        **({} if source.buffer is None else {"buffer": _buffer_counters(source.buffer.stats)}),
    }


def _buffer_counters(stats: BufferStats) -> dict[str, int]:
    """The ``BUFFER_COUNTERS`` of this process, to be summed over the workers."""
    return {name: getattr(stats, name) for name, _ in BUFFER_COUNTERS}


def merge(snapshots: list[Snapshot]) -> Snapshot:
    """Add snapshots up key by key (counters and queue gauges both sum across workers)."""
    total: Snapshot = {}
    for snap in snapshots:
        _add(total, snap)
    return total


def _add(total: dict[str, Any], part: dict[str, Any]) -> None:
    for key, value in part.items():
        if isinstance(value, dict):
            _add(total.setdefault(key, {}), value)
        elif isinstance(value, int | float):
            total[key] = total.get(key, 0) + value


class SharedSnapshots:
    """Each worker's counters as a file in a directory the workers share.

    Every worker publishes its snapshot once a second and when scraped; a
    scrape adds the others' latest files to its own live counters, so any
    worker answers /metrics for the whole server (at most a second behind).
    A worker restarted in the same slot carries on from its predecessor's
    last counters, so the server's totals never go down (which Prometheus
    would read as a reset).
    """

    def __init__(self, directory: Path, worker: int) -> None:
        self.directory = directory
        self.worker = worker
        self.path = directory / f"worker-{worker}.json"
        self.carried: Snapshot = _counters(_read(self.path) or {})

    def publish(self, snap: Snapshot) -> None:
        partial = self.path.with_suffix(".tmp")
        try:
            partial.write_bytes(orjson.dumps(merge([snap, self.carried])))
            os.replace(partial, self.path)
        except OSError as error:
            logger.warning("metrics of worker %d not shared: %s", self.worker, error.strerror)

    def leave(self) -> None:
        """Remove this worker's file, and the directory once it is the last one out.

        For a worker whose parent died: nobody else will clean the directory up.
        The files go before the ``rmdir``, so of workers leaving together the
        last one's ``rmdir`` finds the directory empty.
        """
        for path in (self.path, self.path.with_suffix(".tmp")):
            path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):  # not empty: another worker is still there
            self.directory.rmdir()

    def others(self) -> list[Snapshot]:
        found: list[Snapshot] = []
        for path in sorted(self.directory.glob("worker-*.json")):
            if path != self.path and (snap := _read(path)) is not None:
                found.append(snap)
        return found


def _read(path: Path) -> Snapshot | None:
    """A published snapshot; None for a worker that never published yet."""
    try:
        snap: Snapshot = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    return snap


def _counters(snap: Snapshot) -> Snapshot:
    """``snap`` without its gauges: what a dead worker's queue held is not queued any more."""
    return {
        key: _counters(value) if isinstance(value, dict) else value
        for key, value in snap.items()
        if key not in GAUGES
    }


class FlowMetrics(MetricsCollector):
    """Metric families for one collector and its http source (and its sibling workers)."""

    def __init__(
        self, collector: Collector, source: HttpSource, shared: SharedSnapshots | None = None
    ) -> None:
        self.collector = collector
        self.source = source
        self.shared = shared

    def collect(self) -> Iterator[Metric]:
        snap = snapshot(self.collector, self.source)
        if self.shared is not None:
            self.shared.publish(snap)
            snap = merge([snap, self.shared.carried, *self.shared.others()])
        requests = CounterMetricFamily(
            "flows_http_requests", "HTTP requests answered, by status", labels=["status"]
        )
        for status, count in sorted(snap["requests"].items()):
            requests.add_metric([status], count)
        yield requests
        for name, key, text in (
            ("flows_events_received", "received", "Events received over HTTP"),
            ("flows_events_accepted", "accepted", "Events accepted (answered as accepted)"),
            ("flows_events_rejected", "rejected", "Events rejected as invalid"),
            ("flows_http_overloaded", "overloaded", "Requests refused with 503 (busy)"),
        ):
            yield CounterMetricFamily(name, text, value=snap[key])
        yield from _destinations(snap["destinations"])
        transformers = CounterMetricFamily(
            "flows_transformer_events",
            "Events per transformer by outcome (passed, changed, dropped, rejected, failed)",
            labels=["transformer", "outcome"],
        )
        for transformer_id, counted in sorted(snap.get("transformers", {}).items()):
            for outcome, count in counted.items():
                transformers.add_metric([transformer_id, outcome], count)
        yield transformers
        if self.source.buffer is not None:
            yield from _buffer(self.source.buffer, snap.get("buffer", {}))


BUFFER_COUNTERS = (
    ("appended", "Events stored in the buffer"),
    ("acked", "Entries acknowledged after their destination settled them"),
    ("claimed", "Entries claimed from a stopped reader"),
    ("full", "Requests answered 503 at maxLength"),
    ("unreachable", "Requests answered 503: redis unreachable"),
)


def _buffer(buffer: EventBuffer, counted: dict[str, int]) -> Iterator[Metric]:
    """``flows_buffer_*``: the stream's length and pending entries read from Redis at
    scrape (one value for all workers and replicas), the counters summed over the workers."""
    gauges = buffer.gauges()
    if gauges is not None:
        yield GaugeMetricFamily("flows_buffer_length", "Entries in the buffer's stream", gauges[0])
        yield GaugeMetricFamily(
            "flows_buffer_pending",
            "Entries read by a destination, not yet acknowledged",
            gauges[1],
        )
    for name, text in BUFFER_COUNTERS:
        yield CounterMetricFamily(f"flows_buffer_{name}", text, value=counted.get(name, 0))


def _destinations(destinations: dict[str, Any]) -> Iterator[Metric]:
    outcomes = CounterMetricFamily(
        "flows_destination_events",
        "Events per destination by outcome (queued, failed, rejected, skipped; sent: old name"
        " of queued)",
        labels=["destination", "outcome", "reason"],
    )
    messages = CounterMetricFamily(
        "flows_destination_messages",
        "Destination messages by what happened (queued, delivered, dropped, rejected, failed,"
        " dead-lettered)",
        labels=["destination", "outcome"],
    )
    uploads = HistogramMetricFamily(
        "flows_destination_upload_seconds",
        "Time to upload one batch, retries included",
        labels=["destination"],
    )
    sizes = HistogramMetricFamily(
        "flows_destination_batch_size",
        "Messages per uploaded batch (delivered or not)",
        labels=["destination"],
    )
    gauges = GaugeMetricFamily(
        "flows_destination_queue",
        "Destination queue depth and capacity",
        labels=["destination", "measure"],
    )
    for destination_id, counted in destinations.items():
        outcomes.add_metric([destination_id, "queued", ""], counted["sent"])
        outcomes.add_metric([destination_id, "sent", ""], counted["sent"])  # deprecated
        outcomes.add_metric([destination_id, "failed", ""], counted["failed"])
        outcomes.add_metric([destination_id, "rejected", ""], counted.get("rejected", 0))
        for reason, count in sorted(counted["skipped"].items()):
            outcomes.add_metric([destination_id, "skipped", reason], count)
        for key, value in sorted(counted["stats"].items()):
            if key in GAUGES:
                gauges.add_metric([destination_id, key.removeprefix("queue_")], value)
            else:
                messages.add_metric([destination_id, key], value)
        histograms = counted.get("histograms", {})
        for family, name in ((uploads, "upload_seconds"), (sizes, "batch_size")):
            if found := histograms.get(name):
                family.add_metric([destination_id], _cumulative(found["buckets"]), found["sum"])
    yield outcomes
    yield messages
    yield gauges
    yield uploads
    yield sizes


def _cumulative(counts: dict[str, int]) -> list[tuple[str, float]]:
    """Per-bucket counts (summed across workers) as Prometheus' cumulative buckets."""
    running = 0
    buckets = []
    for bound, count in counts.items():
        running += count
        buckets.append((bound, float(running)))
    return buckets


class BuildInfo(MetricsCollector):
    """``flows_build_info{version, python, segment_sdk} 1``: what runs, read once at start."""

    def __init__(self) -> None:
        self.labels = [
            _installed("walkeros-flows"),
            platform.python_version(),
            _installed("segment-analytics-python"),
        ]

    def collect(self) -> Iterator[Metric]:
        info = GaugeMetricFamily(
            "flows_build_info",
            "Always 1; the labels say which release of flows, Python and the Segment SDK run",
            labels=["version", "python", "segment_sdk"],
        )
        info.add_metric(self.labels, 1)
        yield info


def _installed(distribution: str) -> str:
    """The installed version of ``distribution`` ("" when it is not installed)."""
    try:
        return version(distribution)
    except PackageNotFoundError:
        return ""


def metrics_renderer(
    collector: Collector, source: HttpSource, shared: SharedSnapshots | None = None
) -> Callable[[], bytes]:
    """A function that renders the current metrics in the Prometheus text format.

    Besides the flow's counters (summed over the workers): ``flows_build_info``
    and the standard ``process_*`` metrics (CPU, memory, open files) of the
    process that answers the scrape; with ``--workers`` that is one worker's own.
    """
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FlowMetrics(collector, source, shared))
    registry.register(BuildInfo())
    ProcessCollector(registry=registry)
    return lambda: generate_latest(registry)
