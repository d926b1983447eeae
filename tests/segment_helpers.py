"""Building a Segment destination wired to the local receiver, for tests."""

from __future__ import annotations

from typing import Any

from collector.collector import ActiveDestination, Collector, build_destination

WRITE_KEY = "wk-test-9f8e7d6c5b4a"


def segment_flow(
    receiver_url: str, settings: dict[str, Any] | None = None, **config: Any
) -> tuple[Collector, ActiveDestination]:
    """A collector with one Segment destination posting to ``receiver_url`` quickly."""
    merged = {
        "writeKey": WRITE_KEY,
        "host": receiver_url,
        "flushInterval": 20,
        "maxRetries": 3,
        "httpRequestTimeout": 2000,
        **(settings or {}),
    }
    active = build_destination("segment", "segment", {"settings": merged, **config})
    collector = Collector(None, [active])
    collector.start()
    return collector, active
