"""What an operator scrapes beside the flow's counters: build info, process metrics, batch sizes."""

from __future__ import annotations

import platform
import re
import time
from importlib.metadata import version

import httpx

from collector.collector import Collector, build_destination
from collector.destinations.api import ApiDestination
from destination_segment.receiver import SegmentReceiver
from tests.http_helpers import serving, serving_collector
from tests.http_receiver import Receiver


def _value(text: str, name: str, **labels: str) -> float | None:
    """One sample of the Prometheus text, by name and exact labels (None when absent)."""
    wanted = ",".join(f'{key}="{value}"' for key, value in labels.items())
    shown = rf"\{{{re.escape(wanted)}\}}" if labels else ""
    match = re.search(rf"^{re.escape(name)}{shown} (\S+)$", text, re.M)
    return float(match.group(1)) if match else None


def _wait_until(condition: object, what: str) -> None:
    deadline = time.monotonic() + 10
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


def test_build_info_process_metrics_and_segment_batch_sizes(
    segment_receiver: SegmentReceiver,
) -> None:
    segment = {"flushAt": 5, "flushInterval": 1000}
    with serving(segment_receiver.url, segment=segment) as served, httpx.Client() as client:
        events = [{"name": "page view", "id": f"p{i}", "user": {"id": "u1"}} for i in range(5)]
        assert client.post(served.collect, json=events).status_code == 200
        segment_receiver.wait_for(5)
        stats = served.segment.destination.stats
        _wait_until(lambda: stats()["delivered"] == 5, "the batch was never counted")
        text = client.get(served.url + "/metrics").text
    info = {  # in the order the client writes labels (sorted)
        "python": platform.python_version(),
        "segment_sdk": version("segment-analytics-python"),
        "version": version("walkeros-flows"),
    }
    assert _value(text, "flows_build_info", **info) == 1
    assert (_value(text, "process_resident_memory_bytes") or 0) > 10_000_000
    assert (_value(text, "process_cpu_seconds_total") or 0) > 0
    assert (_value(text, "process_open_fds") or 0) > 2
    assert (_value(text, "process_start_time_seconds") or 0) > time.time() - 3600
    sizes = "flows_destination_batch_size"
    assert _value(text, sizes + "_count", destination="segment") == 1, "one upload of 5"
    assert _value(text, sizes + "_sum", destination="segment") == 5
    assert _value(text, sizes + "_bucket", destination="segment", le="2.0") == 0
    assert _value(text, sizes + "_bucket", destination="segment", le="5.0") == 1
    assert _value(text, sizes + "_bucket", destination="segment", le="+Inf") == 1


def test_batch_sizes_of_the_api_destination_failed_batches_included() -> None:
    with Receiver() as receiver:
        settings = {"url": receiver.url, "batch": {"size": 3, "wait": 10_000}, "maxRetries": 0}
        active = build_destination("api", ApiDestination, {"settings": settings})
        with serving_collector(Collector(destinations=[active])) as (url, _), httpx.Client() as c:
            receiver.answer(400)  # the first batch of 3 is refused: given up
            events = [{"name": "page view", "id": f"m{i}"} for i in range(6)]
            assert c.post(url + "/collect", json=events).status_code == 200
            stats = active.destination.stats
            _wait_until(lambda: stats()["delivered"] + stats()["failed"] == 6, "not settled")
            text = c.get(url + "/metrics").text
    sizes = "flows_destination_batch_size"
    assert _value(text, sizes + "_count", destination="api") == 2
    assert _value(text, sizes + "_sum", destination="api") == 6
    assert _value(text, sizes + "_bucket", destination="api", le="2.0") == 0
    assert _value(text, sizes + "_bucket", destination="api", le="5.0") == 2
