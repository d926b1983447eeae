"""The 10 walkerOS Segment step examples: event in, the same ordered SDK calls out."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from collector.collector import build_destination
from collector.destination import Skipped
from destination_segment.calls import SegmentCall
from tests.shared_fixtures import load_fixture

STEPS = load_fixture("walkeros-segment-server-step-examples.json")
HARNESS = STEPS["harness"]


def destination_config(example: dict[str, Any]) -> dict[str, Any]:
    """The harness rules: settings merged over the base, mapping placed under entity/action."""
    settings = {**HARNESS["baseSettings"], **example.get("settings", {})}
    config: dict[str, Any] = {"settings": settings}
    if "mapping" in example:
        event = example["in"]
        config["mapping"] = {event["entity"]: {event["action"]: example["mapping"]}}
    return config


def as_upstream(call: SegmentCall) -> list[Any]:
    """Our call in the fixture's form: [method, params], timestamp as ISO-8601 UTC with ms."""
    params = dict(call.params)
    params.pop("messageId")
    timestamp = params.pop("timestamp")
    assert isinstance(timestamp, datetime)
    assert timestamp.tzinfo is UTC
    params["timestamp"] = timestamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return [f"analytics.{call.type}", params]


def test_all_ten_examples_are_present() -> None:
    assert len(STEPS["examples"]) == 10


@pytest.mark.parametrize("example", STEPS["examples"], ids=lambda e: e["key"])
def test_step_example(example: dict[str, Any]) -> None:
    active = build_destination("segment", "segment", destination_config(example))
    event = copy.deepcopy(example["in"])
    routed = active.route(event, event.get("consent", {}))
    if isinstance(routed, Skipped):
        calls: list[SegmentCall] = []
    else:
        built = active.destination.calls(*routed)  # type: ignore[attr-defined]
        assert built is not None
        calls = built
    assert [as_upstream(call) for call in calls] == example["out"]
    for call in calls:
        assert call.params["messageId"] == f"{event['id']}-{call.type}"
