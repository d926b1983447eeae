"""Consent denied must arrive as denied, and a key the event does not carry must not arrive.

The Segment destination maps walkerOS consent keys to ``categoryPreferences``.
A ``false`` sent as ``true`` would tell every downstream tool the user agreed,
so both the pure call building and what reaches the receiver are checked.
"""

from __future__ import annotations

from typing import Any

import pytest

from collector.collector import Collector, build_destination
from destination_segment.calls import SegmentCall
from destination_segment.receiver import SegmentReceiver
from tests.segment_helpers import WRITE_KEY, segment_flow

CONSENT_MAP = {"analytics": "Analytics", "marketing": "Advertising"}

# (the event's consent, the categoryPreferences expected; None: no context.consent at all)
CASES: list[tuple[dict[str, bool], dict[str, bool] | None]] = [
    ({"analytics": True, "marketing": False}, {"Analytics": True, "Advertising": False}),
    ({"analytics": False, "marketing": True}, {"Analytics": False, "Advertising": True}),
    ({"analytics": False, "marketing": False}, {"Analytics": False, "Advertising": False}),
    ({"marketing": False}, {"Advertising": False}),
    ({"analytics": True}, {"Analytics": True}),
    ({"functional": True}, None),
]


def _event(event_id: str, consent: dict[str, bool]) -> dict[str, Any]:
    return {
        "name": "product view",
        "id": event_id,
        "user": {"id": "u-consent"},
        "consent": consent,
        "timestamp": 1700000000000,
    }


def _calls(consent: dict[str, bool]) -> list[SegmentCall]:
    active = build_destination(
        "segment", "segment", {"settings": {"writeKey": WRITE_KEY, "consent": CONSENT_MAP}}
    )
    event = Collector(None, [active]).prepare(_event("pure", consent))
    routed = active.route(event, event["consent"])
    assert isinstance(routed, tuple), routed
    calls = active.destination.calls(*routed)  # type: ignore[attr-defined]
    assert calls is not None
    return list(calls)


@pytest.mark.parametrize(("consent", "expected"), CASES)
def test_the_built_call_carries_each_state_as_sent(
    consent: dict[str, bool], expected: dict[str, bool] | None
) -> None:
    [call] = _calls(consent)
    if expected is None:
        assert "context" not in call.params
    else:
        assert call.params["context"] == {"consent": {"categoryPreferences": expected}}


def test_what_arrives_carries_denied_as_false_and_leaves_absent_keys_out(
    segment_receiver: SegmentReceiver,
) -> None:
    collector, _ = segment_flow(segment_receiver.url, {"consent": CONSENT_MAP})
    for index, (consent, _expected) in enumerate(CASES):
        collector.push(_event(f"consent-{index}", consent))
    assert collector.shutdown(5)["segment"].undelivered == 0
    received = {m["messageId"]: m for m in segment_receiver.wait_for(len(CASES))}
    for index, (_consent, expected) in enumerate(CASES):
        context = received[f"consent-{index}-track"]["context"]
        if expected is None:
            assert "consent" not in context, context
        else:
            assert context["consent"] == {"categoryPreferences": expected}, index


def test_collector_defaults_are_overridden_by_the_events_denial(
    segment_receiver: SegmentReceiver,
) -> None:
    """A collector default of granted must not survive an event that says no."""
    _, active = segment_flow(segment_receiver.url, {"consent": CONSENT_MAP})
    collector = Collector({"consent": {"analytics": True, "marketing": True}}, [active])
    collector.start()
    collector.push(_event("override", {"marketing": False}))
    assert collector.shutdown(5)["segment"].undelivered == 0
    [message] = segment_receiver.wait_for(1)
    assert message["context"]["consent"] == {
        "categoryPreferences": {"Analytics": True, "Advertising": False}
    }
