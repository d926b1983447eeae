"""identify/group de-dup: key order never matters, and a call that was not sent is not remembered.

Two trait dicts with the same items in two key orders must fingerprint the
same, built directly (not through a ``map``, whose key order is fixed). A
call the SDK did not queue must be forgotten, or that user is never
identified again while the traits stay the same.
"""

from __future__ import annotations

from typing import Any

from collector.collector import Collector, build_destination
from destination_segment.calls import SegmentCall
from destination_segment.identity import SeenCache, traits_fingerprint
from destination_segment.receiver import SegmentReceiver
from tests.segment_helpers import WRITE_KEY, segment_flow

TRAITS = {"email": "jane@example.com", "plan": "pro", "seats": 3, "tags": ["a", "b"]}
OTHER_ORDER = {"tags": ["a", "b"], "seats": 3, "plan": "pro", "email": "jane@example.com"}
IDENTIFY = {"identify": {"map": {"traits": "data.profile"}}}
GROUP = {"group": {"map": {"groupId": "data.company", "traits": "data.profile"}}}


def _event(event_id: str, profile: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {
        "name": "product view",
        "id": event_id,
        "user": {"id": "u-dedup"},
        "data": {"profile": profile, "company": "acme"},
        **fields,
    }


def test_the_same_traits_in_two_key_orders_fingerprint_the_same() -> None:
    assert list(TRAITS) != list(OTHER_ORDER)
    assert traits_fingerprint(TRAITS) == traits_fingerprint(OTHER_ORDER)
    nested = {"address": {"city": "Berlin", "zip": "10115"}, "name": "Jane"}
    nested_other = {"name": "Jane", "address": {"zip": "10115", "city": "Berlin"}}
    assert traits_fingerprint(nested) == traits_fingerprint(nested_other)
    assert traits_fingerprint(TRAITS) != traits_fingerprint({**TRAITS, "plan": "team"})
    assert traits_fingerprint(TRAITS) != traits_fingerprint(None)
    assert traits_fingerprint({"tags": ["a", "b"]}) != traits_fingerprint({"tags": ["b", "a"]})


class _Plan:
    """The destination's pure call building, as ``flows push`` runs it."""

    def __init__(self, settings: dict[str, Any]) -> None:
        self.active = build_destination(
            "segment", "segment", {"settings": {"writeKey": WRITE_KEY, **settings}}
        )
        self.collector = Collector(None, [self.active])

    def calls(self, raw: dict[str, Any]) -> list[SegmentCall]:
        event = self.collector.prepare(raw)
        routed = self.active.route(event, event["consent"])
        assert isinstance(routed, tuple), routed
        built = self.active.destination.calls(*routed)  # type: ignore[attr-defined]
        assert built is not None
        return list(built)


def test_the_same_traits_in_another_key_order_make_one_identify_and_one_group() -> None:
    plan = _Plan({**IDENTIFY, **GROUP})
    first = plan.calls(_event("o1", TRAITS))
    second = plan.calls(_event("o2", OTHER_ORDER))
    assert [c.type for c in first] == ["identify", "group", "track"]
    assert [c.type for c in second] == ["track"]
    changed = plan.calls(_event("o3", {**OTHER_ORDER, "seats": 4}))
    assert [c.type for c in changed] == ["identify", "group", "track"]


def test_only_one_identify_arrives_for_the_same_traits_in_another_order(
    segment_receiver: SegmentReceiver,
) -> None:
    collector, _ = segment_flow(segment_receiver.url, IDENTIFY)
    collector.push(_event("r1", TRAITS))
    collector.push(_event("r2", OTHER_ORDER))
    assert collector.shutdown(5)["segment"].undelivered == 0
    identifies = [m for m in segment_receiver.messages() if m["type"] == "identify"]
    assert [m["messageId"] for m in identifies] == ["r1-identify"]
    assert identifies[0]["traits"] == TRAITS
    assert segment_receiver.message_ids() == {"r1-identify", "r1-track", "r2-track"}


def test_forget_lets_identify_and_group_fire_again_each_in_its_own_memory() -> None:
    plan = _Plan({**IDENTIFY, **GROUP})
    identify, group, _track = plan.calls(_event("f1", TRAITS))
    assert [c.type for c in plan.calls(_event("f2", TRAITS))] == ["track"]
    plan_of = plan.active.destination.plan  # type: ignore[attr-defined]
    plan_of.forget(group)
    assert [c.type for c in plan.calls(_event("f3", TRAITS))] == ["group", "track"]
    plan_of.forget(identify)
    assert [c.type for c in plan.calls(_event("f4", TRAITS))] == ["identify", "track"]
    plan_of.forget(_track)  # a track has no de-dup memory: nothing to forget, nothing breaks
    assert [c.type for c in plan.calls(_event("f5", TRAITS))] == ["track"]


def test_an_identify_dropped_on_a_full_queue_is_sent_with_the_next_event(
    segment_receiver: SegmentReceiver,
) -> None:
    """The queue is full while the only upload hangs; the login's identify is dropped.

    Once Segment answers again, the same user with the same traits must be
    identified: the drop was forgotten, not remembered as sent.
    """
    segment_receiver.delay(30, count=1)
    collector, active = segment_flow(
        segment_receiver.url,
        {"maxQueueSize": 2, "flushAt": 1, "httpRequestTimeout": 500},
        mapping={"user": {"login": {"silent": True, "settings": IDENTIFY}}},
    )
    collector.push({"name": "page view", "id": "held", "user": {"id": "filler"}})
    segment_receiver.wait_for_requests(1, timeout=5)  # the consumer holds it, hanging
    for index in range(2):  # two tracks fill the queue
        collector.push({"name": "page view", "id": f"fill{index}", "user": {"id": "filler"}})
    stats = active.destination.stats()
    assert (stats["enqueued"], stats["queue_depth"]) == (3, 2)
    collector.push(_event("login1", TRAITS, name="user login"))
    assert active.destination.stats()["dropped_queue_full"] == 1
    # the held upload times out after 0.5 s and is retried; then the queue drains
    segment_receiver.wait_for(3, timeout=10)
    collector.push(_event("login2", TRAITS, name="user login"))
    assert collector.shutdown(5)["segment"].undelivered == 0
    assert segment_receiver.message_ids() == {
        "held-track",
        "fill0-track",
        "fill1-track",
        "login2-identify",
    }


def test_the_memory_keeps_exactly_max_size_identities_and_evicts_the_least_recent() -> None:
    seen = SeenCache(max_size=2)
    assert seen.changed("a", 1)
    assert seen.changed("b", 1)
    assert len(seen) == 2, "exactly max_size fit"
    assert not seen.changed("a", 1)  # a is now the most recent
    assert seen.changed("c", 1)  # evicts b, the least recent
    assert len(seen) == 2
    assert not seen.changed("a", 1), "a was kept"
    assert not seen.changed("c", 1), "the newest was kept"
    assert seen.changed("b", 1), "b was evicted"


def test_forgetting_an_unknown_identity_is_harmless() -> None:
    seen = SeenCache(max_size=2)
    seen.forget("never-seen")  # e.g. a failed send of a call evicted meanwhile
    assert seen.changed("a", 1)
    seen.forget("a")
    seen.forget("a")
    assert seen.changed("a", 1)
