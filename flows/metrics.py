"""Prometheus metrics, read from plain counters at scrape time.

The request path only bumps ints; this module turns them into metric
families when ``/metrics`` is scraped, so metrics cost nothing per event.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector as MetricsCollector

from collector.collector import Collector

if TYPE_CHECKING:
    from flows.http import HttpSource

GAUGES = {"queue_depth", "queue_capacity"}


class FlowMetrics(MetricsCollector):
    """Metric families for one collector and its http source."""

    def __init__(self, collector: Collector, source: HttpSource) -> None:
        self.collector = collector
        self.source = source

    def collect(self) -> Iterator[Metric]:
        stats = self.source.stats
        requests = CounterMetricFamily(
            "flows_http_requests", "HTTP requests answered, by status", labels=["status"]
        )
        for status, count in sorted(stats.requests.items()):
            requests.add_metric([str(status)], count)
        yield requests
        for name, value, text in (
            ("flows_events_received", stats.received, "Events received over HTTP"),
            ("flows_events_accepted", stats.accepted, "Events accepted (answered as accepted)"),
            ("flows_events_rejected", stats.rejected, "Events rejected as invalid"),
            ("flows_http_overloaded", stats.overloaded, "Requests refused with 503 (busy)"),
        ):
            yield CounterMetricFamily(name, text, value=value)
        yield from self._destinations()

    def _destinations(self) -> Iterator[Metric]:
        outcomes = CounterMetricFamily(
            "flows_destination_events",
            "Events per destination by outcome (sent, failed, skipped)",
            labels=["destination", "outcome", "reason"],
        )
        messages = CounterMetricFamily(
            "flows_destination_messages",
            "Destination messages by what happened (enqueued, dropped, failed, dead-lettered)",
            labels=["destination", "outcome"],
        )
        gauges = GaugeMetricFamily(
            "flows_destination_queue",
            "Destination queue depth and capacity",
            labels=["destination", "measure"],
        )
        for active in self.collector.destinations:
            counted = active.stats
            outcomes.add_metric([active.id, "sent", ""], counted.sent)
            outcomes.add_metric([active.id, "failed", ""], counted.failed)
            for reason, count in sorted(counted.skipped.items()):
                outcomes.add_metric([active.id, "skipped", reason], count)
            for key, value in sorted(active.destination.stats().items()):
                if key in GAUGES:
                    gauges.add_metric([active.id, key.removeprefix("queue_")], value)
                else:
                    messages.add_metric([active.id, key], value)
        yield outcomes
        yield messages
        yield gauges


def metrics_renderer(collector: Collector, source: HttpSource) -> Callable[[], bytes]:
    """A function that renders the current metrics in the Prometheus text format."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FlowMetrics(collector, source))
    return lambda: generate_latest(registry)
