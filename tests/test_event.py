"""The walkerOS event model: what is accepted, filled in, and rejected with which path."""

from __future__ import annotations

import math
from typing import Any

import pytest

from collector.event import EventValidationError, fill_defaults, validate_event


def test_name_is_split_at_the_first_space() -> None:
    event = validate_event({"name": "order complete now"})
    assert (event["entity"], event["action"]) == ("order", "complete now")


def test_input_is_not_modified_and_extra_keys_are_kept() -> None:
    raw: dict[str, Any] = {"name": "page view", "user": {"id": "u", "custom_id": "x"}, "ingest": 1}
    event = validate_event(raw)
    assert "entity" not in raw
    assert event["user"]["custom_id"] == "x"  # type: ignore[typeddict-item]
    assert event["ingest"] == 1  # type: ignore[typeddict-item]


def test_missing_id_and_timestamp_are_filled() -> None:
    event = fill_defaults(validate_event({"name": "page view"}))
    assert len(event["id"]) == 32
    assert isinstance(event["timestamp"], int)
    assert event["timestamp"] > 1_700_000_000_000
    kept = fill_defaults(validate_event({"name": "page view", "id": "abc", "timestamp": 5}))
    assert (kept["id"], kept["timestamp"]) == ("abc", 5)


@pytest.mark.parametrize(
    ("raw", "path", "reason"),
    [
        ({}, "name", "is required"),
        ({"name": "ping"}, "name", "entity action"),
        ({"name": " view"}, "name", "entity action"),
        ({"name": 3}, "name", "valid string"),
        ({"name": "a b", "data": {"price": math.nan}}, "data.price", "finite number"),
        ({"name": "a b", "data": {"l": [1, {"x": math.inf}]}}, "data.l.1.x", "finite number"),
        ({"name": "a b", "timestamp": -math.inf}, "timestamp", "finite number"),
        ({"name": "a b", "user": {"id": 5}}, "user.id", "valid string"),
        ({"name": "a b", "consent": {"marketing": "yes"}}, "consent.marketing", "boolean"),
        ({"name": "a b", "context": {"stage": ["x"]}}, "context.stage.1", "required"),
        ({"name": "a b", "nested": [{"data": {"p": math.nan}}]}, "nested.0.data.p", "finite"),
        ({"name": "a b", "data": "text"}, "data", "object"),
        ({"name": "a b", "timestamp": "now"}, "timestamp", "must be a number"),
        ({"name": "a b", "count": 1.5}, "count", "whole number"),
        ({"name": "a b", "count": "3"}, "count", "whole number"),
        ({"name": "a b", "count": True}, "count", "whole number"),
        ({"name": "a b", "count": 2**53}, "count", "whole number"),
        ({"name": "a b", "source": {"count": 2.0**60}}, "source.count", "whole number"),
        ([], "", "object"),
    ],
)
def test_malformed_events_name_the_field_and_reason(raw: Any, path: str, reason: str) -> None:
    with pytest.raises(EventValidationError) as caught:
        validate_event(raw)
    paths = {e.path: e.reason for e in caught.value.errors}
    assert path in paths, paths
    assert reason in paths[path]


def test_every_bad_field_is_reported() -> None:
    with pytest.raises(EventValidationError) as caught:
        validate_event({"name": "a b", "user": {"id": 1}, "data": {"x": math.nan}})
    assert {e.path for e in caught.value.errors} == {"user.id", "data.x"}


def test_a_count_is_whole_however_json_writes_it() -> None:
    """JSON (and the JavaScript that sends walkerOS events) has one number type: 3.0 is 3."""
    assert validate_event({"name": "a b", "count": 3.0})["count"] == 3
    assert validate_event({"name": "a b", "count": 2**53 - 1})["count"] == 2**53 - 1
    assert validate_event({"name": "a b", "source": {"count": -4.0}})["source"]["count"] == -4
