"""Counters that mean what they say: queued is not delivered; delivered is what Segment took."""

from __future__ import annotations

import re
import time

import httpx

from destination_segment.receiver import SegmentReceiver
from tests.http_helpers import serving


def _value(text: str, name: str, **labels: str) -> float:
    """One sample of the Prometheus text, by name and labels (0 when absent)."""
    wanted = ",".join(f'{key}="{value}"' for key, value in labels.items())
    match = re.search(rf"^{re.escape(name)}\{{{re.escape(wanted)}\}} (\S+)$", text, re.M)
    return float(match.group(1)) if match else 0.0


def _event(event_id: str) -> dict[str, object]:
    return {"name": "product view", "id": event_id, "user": {"id": "u1"}}


def test_queued_delivered_and_dead_lettered_are_told_apart(
    segment_receiver: SegmentReceiver,
) -> None:
    # Batches of exactly 5: the consumer waits up to a second for a batch to fill.
    segment = {"flushAt": 5, "flushInterval": 1000, "maxRetries": 0, "maxTotalBackoffDuration": 0}
    with serving(segment_receiver.url, segment=segment) as served, httpx.Client() as client:
        segment_receiver.fail(400, count=1)  # Segment refuses the first batch: dead-lettered
        assert (
            client.post(served.collect, json=[_event(f"a{i}") for i in range(5)]).status_code == 200
        )
        deadline = time.monotonic() + 10
        while served.segment.destination.stats()["failed"] < 5:
            assert time.monotonic() < deadline, "the refused batch was never reported"
            time.sleep(0.02)
        assert (
            client.post(served.collect, json=[_event(f"b{i}") for i in range(5)]).status_code == 200
        )
        segment_receiver.wait_for(5)
        deadline = time.monotonic() + 10
        while served.segment.destination.stats()["delivered"] < 5:  # counted after the answer
            assert time.monotonic() < deadline, "the delivered batch was never counted"
            time.sleep(0.02)
        text = client.get(served.url + "/metrics").text
    assert segment_receiver.stats["requests"] == 2
    events = "flows_destination_events_total"
    messages = "flows_destination_messages_total"
    assert _value(text, events, destination="segment", outcome="queued", reason="") == 10
    assert _value(text, events, destination="segment", outcome="sent", reason="") == 10
    assert _value(text, messages, destination="segment", outcome="queued") == 10
    assert _value(text, messages, destination="segment", outcome="delivered") == 5
    assert _value(text, messages, destination="segment", outcome="failed") == 5
    assert _value(text, messages, destination="segment", outcome="dead_lettered") == 5
    uploads = "flows_destination_upload_seconds"
    assert _value(text, uploads + "_count", destination="segment") == 2, "both uploads timed"
    assert _value(text, uploads + "_bucket", destination="segment", le="+Inf") == 2
    assert _value(text, uploads + "_sum", destination="segment") > 0


def test_nothing_is_delivered_while_segment_is_down(segment_receiver: SegmentReceiver) -> None:
    """The old "sent" counted queued events as sent while nothing reached Segment."""
    segment_receiver.delay(30)
    with serving(segment_receiver.url) as served, httpx.Client() as client:
        for index in range(20):
            assert client.post(served.collect, json=_event(f"d{index}")).status_code == 200
        segment_receiver.wait_for_requests(1)
        text = client.get(served.url + "/metrics").text
        segment_receiver.reset_faults()
    assert (
        _value(text, "flows_destination_messages_total", destination="segment", outcome="queued")
        == 20
    )
    assert (
        _value(text, "flows_destination_messages_total", destination="segment", outcome="delivered")
        == 0
    )
