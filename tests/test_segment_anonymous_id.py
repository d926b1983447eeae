"""Visitors without a userId: the default anonymousId falls back session -> device -> hash.

Through the real SDK over loopback into the local receiver, as the other
delivery tests run.
"""

from __future__ import annotations

import logging
from typing import Any

from collector.transformer import TransformerContext
from collector.transformers.fingerprint import FingerprintSettings, FingerprintTransformer
from destination_segment.receiver import SegmentReceiver
from tests.segment_helpers import segment_flow
from tests.shared_fixtures import load_fixture


def event(event_id: str, **user: str) -> dict[str, Any]:
    return {"name": "page view", "id": event_id, "user": user, "timestamp": 1700000000000}


def test_device_then_hash_stand_in_for_a_missing_session(
    segment_receiver: SegmentReceiver,
) -> None:
    collector, active = segment_flow(segment_receiver.url)
    collector.push(event("device", device="dev-1"))
    collector.push(event("hash", hash="1046d0b20a098789"))
    collector.push(event("all", session="s-1", device="dev-1", hash="h-1"))
    collector.push(event("device-hash", device="dev-2", hash="h-2"))
    outcome = collector.push(event("nobody", email="e@example.com", id=""))
    collector.shutdown(5)
    tracks = {m["messageId"]: m for m in segment_receiver.wait_for(4, type="track")}
    assert {k: (m["anonymousId"], m["userId"]) for k, m in tracks.items()} == {
        "device-track": ("dev-1", None),
        "hash-track": ("1046d0b20a098789", None),
        "all-track": ("s-1", None),
        "device-hash-track": ("dev-2", None),
    }
    assert outcome.outcomes["segment"].reason == "no identity"  # type: ignore[union-attr]
    assert active.stats.skipped == {"no identity": 1}
    assert active.stats.sent == 4


def test_a_user_set_anonymous_id_replaces_the_whole_fallback(
    segment_receiver: SegmentReceiver,
) -> None:
    collector, active = segment_flow(segment_receiver.url, {"anonymousId": "user.hash"})
    collector.push(event("hash-wins", session="s-1", device="dev-1", hash="h-1"))
    collector.push(event("no-fallback", session="s-2", device="dev-2"))
    collector.shutdown(5)
    [track] = segment_receiver.wait_for(1, type="track")
    assert (track["messageId"], track["anonymousId"]) == ("hash-wins-track", "h-1")
    assert active.stats.skipped == {"no identity": 1}, "session and device are not looked at"


def test_a_fingerprinted_visitor_reaches_segment_by_its_hash(
    segment_receiver: SegmentReceiver,
) -> None:
    """The fingerprint transformer's ``user.hash`` becomes the anonymousId, as walkerOS pairs them."""
    case = next(
        c
        for c in load_fixture("walkeros-transformer-fingerprint-examples.json")["cases"]
        if c["name"] == "serverFingerprint"
    )
    fingerprint = FingerprintTransformer(FingerprintSettings.model_validate(case["settings"]))
    context = TransformerContext(ingest=case["in"]["ingest"], logger=logging.getLogger("test"))
    hashed = fingerprint.push(case["in"]["event"], context)
    assert isinstance(hashed, dict)
    collector, _ = segment_flow(segment_receiver.url)
    collector.push(hashed)
    collector.shutdown(5)
    [track] = segment_receiver.wait_for(1, type="track")
    assert track["anonymousId"] == case["actual_hash"]
    assert track["userId"] is None
