"""The Segment destination through the real SDK over real HTTP into the local receiver."""

from __future__ import annotations

import logging
import multiprocessing
import time
from typing import Any

import pytest

from destination_segment.receiver import SegmentReceiver
from tests.segment_helpers import WRITE_KEY, segment_flow

USER_A = {"id": "user-a", "session": "sess-a"}


def event(name: str = "product view", **fields: Any) -> dict[str, Any]:
    return {"name": name, "user": dict(USER_A), "timestamp": 1700000000000, **fields}


def test_every_spec_call_arrives_with_the_exact_fields(segment_receiver: SegmentReceiver) -> None:
    collector, _ = segment_flow(
        segment_receiver.url,
        {
            "identify": {"map": {"traits": {"map": {"email": "user.email"}}}},
            "integrations": {"All": True, "Mixpanel": False},
            "consent": {"marketing": "Advertising", "analytics": "Analytics"},
        },
        mapping={
            "page": {"view": {"settings": {"page": {"map": {"name": "data.title"}}}}},
            "screen": {"view": {"silent": True, "settings": {"screen": True}}},
            "company": {
                "update": {
                    "silent": True,
                    "settings": {
                        "group": {
                            "map": {"groupId": "data.id", "traits": {"map": {"name": "data.name"}}}
                        }
                    },
                }
            },
            "product": {"view": {"name": "Product Viewed", "data": {"map": {"sku": "data.id"}}}},
        },
    )
    base = {
        "user": {**USER_A, "email": "a@example.com"},
        "consent": {"marketing": True},
        "timestamp": 1700000000000,
    }
    collector.push({"name": "page view", "id": "e1", "data": {"title": "Home"}, **base})
    collector.push({"name": "screen view", "id": "e2", **base})
    collector.push(
        {"name": "company update", "id": "e3", "data": {"id": "g1", "name": "Acme"}, **base}
    )
    collector.push({"name": "product view", "id": "e4", "data": {"id": "ers"}, **base})
    report = collector.shutdown(5)["segment"]
    assert report.undelivered == 0
    received = segment_receiver.wait_for(6)
    by_id = {m["messageId"]: m for m in received}
    assert sorted(by_id) == [
        "e1-identify",
        "e1-page",
        "e1-track",
        "e2-screen",
        "e3-group",
        "e4-track",
    ]
    identify = by_id["e1-identify"]
    assert identify["type"] == "identify"
    assert identify["userId"] == "user-a"
    assert identify["anonymousId"] == "sess-a"
    assert identify["traits"] == {"email": "a@example.com"}
    assert by_id["e1-page"]["name"] == "Home"
    assert by_id["e3-group"]["groupId"] == "g1"
    assert by_id["e3-group"]["traits"] == {"name": "Acme"}
    track = by_id["e4-track"]
    assert track["event"] == "Product Viewed"
    assert track["properties"] == {"sku": "ers"}
    assert track["timestamp"].startswith("2023-11-14T22:13:20")
    for message in received:
        assert message["integrations"] == {"All": True, "Mixpanel": False}
        assert message["context"]["consent"] == {"categoryPreferences": {"Advertising": True}}
    assert "e2-track" not in by_id, "silent suppresses the track call"


def test_identity_fallbacks_and_skips(segment_receiver: SegmentReceiver) -> None:
    collector, active = segment_flow(segment_receiver.url)
    collector.push(event(id="only-user", user={"id": "u"}))
    collector.push(event(id="only-anon", user={"session": "s"}))
    outcome = collector.push(event(id="nobody", user={"id": "", "email": "e@example.com"}))
    collector.shutdown(5)
    received = {m["messageId"]: m for m in segment_receiver.wait_for(2)}
    assert received["only-user-track"]["userId"] == "u"
    assert received["only-user-track"]["anonymousId"] is None
    assert received["only-anon-track"]["anonymousId"] == "s"
    assert received["only-anon-track"]["userId"] is None
    assert outcome.outcomes["segment"].reason == "no identity"  # type: ignore[union-attr]
    assert active.stats.skipped == {"no identity": 1}
    assert "nobody-track" not in received


def _identify_flow(url: str, **settings: Any) -> Any:
    return segment_flow(
        url,
        {
            "identify": {"map": {"traits": {"map": {"plan": "user.plan", "tier": "user.tier"}}}},
            **settings,
        },
    )[0]


def test_identify_dedup_is_per_identity_for_interleaved_users(
    segment_receiver: SegmentReceiver,
) -> None:
    collector = _identify_flow(segment_receiver.url)
    a = {"id": "A", "plan": "pro", "tier": "1"}
    b = {"id": "B", "plan": "free", "tier": "2"}
    collector.push(event(id="1", user=a))
    collector.push(event(id="2", user=b))
    collector.push(event(id="3", user=dict(reversed(list(a.items())))))  # same traits, other order
    collector.push(event(id="4", user={**a, "plan": "team"}))  # changed traits: fires again
    collector.shutdown(5)
    messages = segment_receiver.wait_for(4 + 3)  # 4 tracks, 3 identifies
    identify_ids = sorted(m["messageId"] for m in messages if m["type"] == "identify")
    assert identify_ids == ["1-identify", "2-identify", "4-identify"]


def test_identify_memory_is_bounded_lru(segment_receiver: SegmentReceiver) -> None:
    collector = _identify_flow(segment_receiver.url, dedupCacheSize=2)
    for index, user in enumerate(["A", "B", "C", "A"]):
        collector.push(event(id=f"{index}", user={"id": user, "plan": "p"}))
    collector.shutdown(5)
    messages = segment_receiver.wait_for(8)
    identified = [
        m["userId"]
        for m in sorted(messages, key=lambda m: m["messageId"])
        if m["type"] == "identify"
    ]
    assert identified == ["A", "B", "C", "A"], "A was evicted by C, so it fires again"


def test_message_ids_are_deterministic_so_resends_deduplicate(
    segment_receiver: SegmentReceiver,
) -> None:
    collector, _ = segment_flow(segment_receiver.url)
    for _ in range(3):
        collector.push(event(id="same-event"))
    collector.shutdown(5)
    segment_receiver.wait_for(3)
    assert segment_receiver.message_ids() == {"same-event-track"}


def test_queue_full_drops_are_counted_and_logged(
    segment_receiver: SegmentReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    segment_receiver.delay(30)
    collector, active = segment_flow(
        segment_receiver.url, {"maxQueueSize": 2, "flushAt": 1, "flushInterval": 1}
    )
    with caplog.at_level(logging.WARNING, logger="flows.destination.segment"):
        for index in range(20):
            collector.push(event(id=f"q{index}"))
    stats = active.destination.stats()
    assert stats["dropped_queue_full"] >= 15
    assert stats["dropped_queue_full"] + stats["enqueued"] == 20
    assert "queue is full" in caplog.text
    segment_receiver.reset_faults()
    collector.shutdown(0.5)


def test_shutdown_is_bounded_when_segment_hangs(segment_receiver: SegmentReceiver) -> None:
    segment_receiver.delay(60)
    collector, active = segment_flow(segment_receiver.url, {"httpRequestTimeout": 30000})
    for index in range(5):
        collector.push(event(id=f"h{index}"))
    segment_receiver.wait_for_requests(1, timeout=5)  # the upload is hanging now
    started = time.monotonic()
    report = collector.shutdown(1.0)["segment"]
    elapsed = time.monotonic() - started
    assert 1.0 <= elapsed < 1.0 + 0.5, "the full timeout, then only the 0.05 s join allowance"
    assert report.timed_out
    assert report.undelivered == 5, "every message: held by the hanging upload or still queued"
    assert active.destination.client.alive_consumers() <= 1  # type: ignore[attr-defined]


def test_several_consumers_all_stop_on_shutdown(segment_receiver: SegmentReceiver) -> None:
    collector, active = segment_flow(segment_receiver.url, {"consumerThreads": 3})
    for index in range(30):
        collector.push(event(id=f"c{index}"))
    client = active.destination.client  # type: ignore[attr-defined]
    assert client.alive_consumers() == 3
    report = collector.shutdown(5)["segment"]
    assert report.undelivered == 0
    assert client.alive_consumers() == 0
    assert len(segment_receiver.wait_for(30)) == 30


def test_rejected_batches_are_counted_and_the_consumer_survives(
    segment_receiver: SegmentReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    segment_receiver.fail(400, count=1)
    collector, active = segment_flow(segment_receiver.url, {"flushAt": 1})
    with caplog.at_level(logging.DEBUG):
        collector.push(event(id="bad"))
        client = active.destination.client  # type: ignore[attr-defined]
        deadline = time.monotonic() + 5
        while client.stats.failed == 0 and time.monotonic() < deadline:
            client.client().flush()
        collector.push(event(id="good"))
        report = collector.shutdown(5)["segment"]
    assert client.stats.failed == 1
    assert report.undelivered == 0
    assert segment_receiver.message_ids() == {"good-track"}
    assert WRITE_KEY not in caplog.text, "the write key must never be logged"


def test_retries_deliver_after_server_errors(segment_receiver: SegmentReceiver) -> None:
    segment_receiver.fail(500, count=2)
    collector, _active = segment_flow(segment_receiver.url)
    collector.push(event(id="retry"))
    report = collector.shutdown(10)["segment"]
    assert report.undelivered == 0
    assert segment_receiver.message_ids() == {"retry-track"}


def test_a_destination_made_before_fork_sends_from_the_child(
    segment_receiver: SegmentReceiver,
) -> None:
    collector, _active = segment_flow(segment_receiver.url)
    collector.push(event(id="from-parent"))  # the parent's client exists before the fork
    context = multiprocessing.get_context("fork")

    def child() -> None:
        collector.push(event(id="forked"))
        report = collector.shutdown(5)
        raise SystemExit(0 if report["segment"].undelivered == 0 else 3)

    process = context.Process(target=child)
    process.start()
    process.join(15)
    assert process.exitcode == 0
    collector.shutdown(5)
    segment_receiver.wait_for(2)
    assert segment_receiver.message_ids() == {"from-parent-track", "forked-track"}


def test_connection_check_tells_working_wrong_and_unreachable_apart(
    segment_receiver: SegmentReceiver,
) -> None:
    _, ok = segment_flow(segment_receiver.url)
    assert ok.destination.check_connection().ok
    assert segment_receiver.messages() == [], "the check sends no data"
    _, wrong = segment_flow(segment_receiver.url, {"path": "/not-segment/v1/batch"})
    report = wrong.destination.check_connection()
    assert not report.ok
    assert "404" in report.detail
    _, down = segment_flow("http://127.0.0.1:9", {"httpRequestTimeout": 500})
    report = down.destination.check_connection()
    assert not report.ok
    assert "cannot connect" in report.detail
    assert WRITE_KEY not in report.detail
