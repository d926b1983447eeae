"""The request-body helpers on their own: limits and pixel queries."""

from __future__ import annotations

import json
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from flows.http.input import (
    Limits,
    _first_violation,
    _within,
    body_within,
    check_limits,
    parse_pixel_query,
)

SMALL = Limits(max_batch_size=10, max_depth=4, max_string_length=8, max_keys=3)
VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=40,
)


@settings(max_examples=400)
@given(value=VALUES)
def test_the_fast_check_and_the_path_naming_check_agree(value: Any) -> None:
    assert _within(value, SMALL) == (_first_violation(value, SMALL) is None)
    assert (check_limits(value, SMALL) is None) == _within(value, SMALL)


ROOMY = Limits(max_batch_size=10, max_depth=6, max_string_length=120, max_keys=12)


@settings(max_examples=400)
@given(value=VALUES, encoding=st.sampled_from(["compact", "ascii", "spaced", "batch"]))
def test_a_body_judged_within_from_its_bytes_holds_events_within(value: Any, encoding: str) -> None:
    events = [value, value] if encoding == "batch" else [value]
    document: Any = {"batch": events} if encoding == "batch" else value
    if encoding in ("compact", "batch"):
        body = json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()
    else:
        body = json.dumps(document, ensure_ascii=encoding == "ascii").encode()
    for limits in (SMALL, ROOMY):
        if body_within(body, limits):
            assert all(_within(event, limits) for event in events)


def test_a_small_event_is_within_from_its_bytes_and_a_large_one_is_walked() -> None:
    event = {"name": "page view", "data": {"id": "/docs", "tags": ["a", "b"]}}
    assert body_within(orjson.dumps(event), ROOMY)
    assert not body_within(orjson.dumps({**event, "text": "x" * 200}), ROOMY)


def test_violations_name_their_path() -> None:
    error = check_limits({"data": {"list": [1, "x" * 9]}}, SMALL)
    assert error is not None
    assert (error.path, error.reason) == ("data.list.1", "string of 9 characters is over 8")
    deep = check_limits({"a": {"b": {"c": {"d": {}}}}}, SMALL)
    assert deep is not None
    assert deep.path == "a.b.c.d"


def test_pixel_query_nests_and_casts_like_walkeros() -> None:
    limits = Limits(100, 20, 1000, 100)
    event = parse_pixel_query(
        "name=page%20view&data[title]=Home&data[n]=3&data[ok]=true&timestamp=1700000000000",
        limits,
    )
    assert event == {
        "name": "page view",
        "data": {"title": "Home", "n": 3, "ok": True},
        "timestamp": 1700000000000,
    }
