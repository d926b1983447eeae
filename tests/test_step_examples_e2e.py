"""The 10 walkerOS Segment step examples end to end: event in, what Segment receives out.

``test_segment_examples.py`` compares the calls built in memory. This runs
each example through the collector, the real destination and the SDK over
HTTP to the local receiver, and compares what arrived with the example's
expected calls: what the SDK adds, drops or renames on the way shows here.
"""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Any

import pytest

from destination_segment.receiver import SegmentReceiver
from tests.segment_helpers import segment_flow
from tests.test_segment_examples import STEPS, destination_config

PAYLOAD = ("event", "traits", "properties", "groupId", "name", "category")
"""Fields of a Spec call that carry what the example maps (absent on calls that lack them)."""
EMPTY_WHEN_ABSENT = {"traits", "properties"}
"""The SDK sends ``{}`` for these when a call has none, as Segment treats a missing one."""


def _expected(example: dict[str, Any]) -> list[dict[str, Any]]:
    """The example's calls in the shape a message arrives in (type, not method)."""
    calls = []
    for method, params in example["out"]:
        calls.append({"type": method.removeprefix("analytics."), **params})
    return calls


def _compared(message: dict[str, Any], expected: dict[str, Any]) -> dict[str, Any]:
    """The fields of ``message`` that the example speaks about, normalised as the SDK sends."""
    kind = expected["type"]
    view: dict[str, Any] = {
        "type": message["type"],
        "userId": message.get("userId"),
        "anonymousId": message.get("anonymousId"),
        "timestamp": datetime.fromisoformat(message["timestamp"]),
        "consent": message.get("context", {}).get("consent"),
        "integrations": message.get("integrations") or {},
    }
    for key in PAYLOAD:
        value = message.get(key)
        if key in EMPTY_WHEN_ABSENT and value == {} and key not in expected:
            continue
        if value is not None:
            view[key] = value
    assert message["messageId"].endswith(f"-{kind}")
    return view


def _want(expected: dict[str, Any]) -> dict[str, Any]:
    view: dict[str, Any] = {
        "type": expected["type"],
        "userId": expected.get("userId"),
        "anonymousId": expected.get("anonymousId"),
        "timestamp": datetime.fromisoformat(expected["timestamp"]),
        "consent": expected.get("context", {}).get("consent"),
        "integrations": expected.get("integrations") or {},
    }
    view.update({key: expected[key] for key in PAYLOAD if key in expected})
    return view


@pytest.mark.parametrize("example", STEPS["examples"], ids=lambda e: e["key"])
def test_step_example_arrives_at_segment_as_expected(
    example: dict[str, Any], segment_receiver: SegmentReceiver
) -> None:
    config = destination_config(example)
    settings = config.pop("settings")
    collector, _ = segment_flow(segment_receiver.url, settings, **config)
    event = copy.deepcopy(example["in"])
    collector.push(event)
    report = collector.shutdown(5)["segment"]
    assert (report.undelivered, report.timed_out) == (0, False)
    received = segment_receiver.messages()  # shut down: everything sent has arrived
    expected = _expected(example)
    assert [_compared(m, e) for m, e in zip(received, expected, strict=False)] == [
        _want(e) for e in expected
    ]
    assert len(received) == len(expected)
    assert [m["messageId"] for m in received] == [f"{event['id']}-{e['type']}" for e in expected]


def test_every_example_is_run_end_to_end() -> None:
    """Ten examples, and between them every Spec call type and the no-call case."""
    kinds = {method for example in STEPS["examples"] for method, _ in example["out"]}
    assert len(STEPS["examples"]) == 10
    assert kinds == {f"analytics.{k}" for k in ("track", "identify", "group", "page", "screen")}
    assert any(example["out"] == [] for example in STEPS["examples"])
