"""What a 200 promises: whole requests admitted into held queue room, nothing refused after it."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from collector.collector import Collector, build_destination
from destination_segment.receiver import SegmentReceiver
from tests.http_helpers import serving, serving_collector
from tests.segment_helpers import segment_flow
from tests.slow_client import post_slowly
from tests.user_destinations import SkuDestination, WebhookDestination

CLIENTS = 48
REQUESTS_PER_CLIENT = 6
BATCH = 10


def event(event_id: str, **extra: Any) -> dict[str, Any]:
    return {"name": "product view", "id": event_id, "user": {"id": "u1"}, **extra}


def test_slow_bodies_against_a_slow_segment_drop_nothing_answered_200(
    segment_receiver: SegmentReceiver, dead_letters_in_a_temp_dir: Path
) -> None:
    """48 clients whose bodies arrive 20 ms after their headers, Segment taking 0.2 s a batch.

    The old check ran before the body was read, so every waiting request passed it
    and then overfilled the queue: thousands answered 200 were dropped.
    """
    segment_receiver.delay(0.2)
    segment = {"maxQueueSize": 200, "flushAt": 20, "httpRequestTimeout": 5000}
    answered: dict[str, int] = {}
    errors: list[BaseException] = []
    lock = threading.Lock()
    with serving(segment_receiver.url, {"queueHighWater": 1.0}, segment) as served:

        def client(index: int) -> None:
            deadline = time.monotonic() + 8
            try:
                for request in range(REQUESTS_PER_CLIENT):
                    if time.monotonic() > deadline:
                        return
                    ids = [f"c{index}-r{request}-e{n}" for n in range(BATCH)]
                    status, body = post_slowly(served.collect, [event(i) for i in ids], 0.02)
                    assert status in (0, 200, 503), (status, body)
                    with lock:
                        answered.update(dict.fromkeys(ids, status))
            except BaseException as error:
                errors.append(error)

        threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert not errors, errors[:3]
        stats = served.segment.destination.stats()
        assert stats["dropped_queue_full"] == 0
        accepted = {i for i, status in answered.items() if status == 200}
        refused = {i for i, status in answered.items() if status == 503}
        assert refused, "the load never filled the queue: the test proves nothing"
        assert accepted, "nothing was accepted"
        segment_receiver.reset_faults()
        segment_receiver.wait_for(len(accepted), timeout=60)
    arrived = {m["messageId"].removesuffix("-track") for m in segment_receiver.messages()}
    assert arrived == accepted, "exactly the events answered 200 arrive"


def test_a_message_over_32_kb_is_refused_with_its_index_and_the_rest_kept(
    segment_receiver: SegmentReceiver,
) -> None:
    big = event("big", data=dict.fromkeys("abc", "x" * 15000))
    with serving(segment_receiver.url, data="data") as served, httpx.Client() as client:
        answer = client.post(served.collect, json=[event("ok1"), big, event("ok2")])
    assert answer.status_code == 400
    body = answer.json()
    assert body["accepted"] == 2
    [rejection] = body["rejected"]
    assert rejection["index"] == 1
    [error] = rejection["errors"]
    assert error["path"] == "destinations.segment"
    assert "over Segment's 32 KB limit" in error["reason"]
    assert "track message is 45" in error["reason"], "the size is named"
    segment_receiver.wait_for(2)
    assert segment_receiver.message_ids() == {"ok1-track", "ok2-track"}


def test_an_event_is_sent_whole_or_not_at_all(segment_receiver: SegmentReceiver) -> None:
    """An identify that fits is not sent when the same event's track is over 32 KB."""
    segment = {"identify": {"map": {"traits": {"map": {"plan": {"value": "pro"}}}}}}
    big = event("big", data=dict.fromkeys("abc", "x" * 15000))
    with (
        serving(segment_receiver.url, segment=segment, data="data") as served,
        httpx.Client() as client,
    ):
        assert client.post(served.collect, json=big).status_code == 400
        assert client.post(served.collect, json=event("small")).status_code == 200
    segment_receiver.wait_for(2)
    assert segment_receiver.message_ids() == {"small-identify", "small-track"}, (
        "the refused event's identify was neither sent nor remembered as sent"
    )


@pytest.mark.parametrize("timestamp", [1e300, -1e15, 253_402_300_800_000])
def test_a_timestamp_no_date_holds_is_refused_before_the_answer(
    segment_receiver: SegmentReceiver, timestamp: float
) -> None:
    with serving(segment_receiver.url) as served, httpx.Client() as client:
        answer = client.post(
            served.collect, json=[event("late", timestamp=timestamp), event("fine")]
        )
    assert answer.status_code == 400
    assert answer.json()["rejected"] == [
        {
            "index": 0,
            "errors": [
                {
                    "path": "timestamp",
                    "reason": "must be epoch milliseconds between year 1 and 9999 "
                    "(an ISO 8601 date)",
                }
            ],
        }
    ]
    segment_receiver.wait_for(1)
    assert segment_receiver.message_ids() == {"fine-track"}


def test_a_destination_that_raises_dead_letters_the_event(
    segment_receiver: SegmentReceiver, dead_letters_in_a_temp_dir: Path
) -> None:
    collector, _segment = segment_flow(segment_receiver.url)
    buggy = build_destination("sku", SkuDestination, {})
    collector.add_destination(buggy)
    with serving_collector(collector) as (url, _source), httpx.Client() as client:
        answer = client.post(
            url + "/collect",
            json=[event("with-sku", data={"sku": "s1"}), event("without-sku", data={})],
        )
    assert answer.status_code == 200, "both were accepted: one delivered, one dead-lettered"
    assert buggy.destination.skus == ["s1"]  # type: ignore[attr-defined]
    assert buggy.stats.failed == 1
    path = dead_letters_in_a_temp_dir / "dead-letter" / "sku.events.jsonl"
    [line] = [orjson.loads(text) for text in path.read_text().splitlines() if "without-sku" in text]
    assert line["destination"] == "sku"
    assert line["event"]["id"] == "without-sku"
    assert line["event"]["name"] == "product view"
    assert line["reason"] == "push failed: KeyError: 'sku'"
    segment_receiver.wait_for(2)
    assert segment_receiver.message_ids() == {"with-sku-track", "without-sku-track"}


def test_a_blocking_destination_leaves_the_event_loop_serving(
    segment_receiver: SegmentReceiver,
) -> None:
    """A push that waits 3 s on HTTP runs on a worker thread: /health answers meanwhile."""
    webhook = build_destination(
        "webhook", WebhookDestination, {"settings": {"url": segment_receiver.url}}
    )
    collector = Collector(None, [webhook])
    collector.start()
    segment_receiver.delay(3, count=1)
    with serving_collector(collector) as (url, _source), httpx.Client(timeout=20) as client:
        answers: list[int] = []
        post = threading.Thread(
            target=lambda: answers.append(
                client.post(url + "/collect", json=event("slow")).status_code
            )
        )
        post.start()
        segment_receiver.wait_for_requests(1)  # the push is now waiting on the webhook
        started = time.monotonic()
        health = httpx.get(url + "/health")
        elapsed = time.monotonic() - started
        assert health.status_code == 200
        assert post.is_alive(), "the push had not finished: /health ran beside it"
        post.join(20)
    assert elapsed < 0.5, f"/health took {elapsed:.2f} s beside a blocking push"
    assert answers == [200]
    assert segment_receiver.message_ids() == {"slow-webhook"}
