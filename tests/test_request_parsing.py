"""Request bodies and pixel queries on their own: the exact status and reason of each
refusal, the walkerOS casts, and the byte-level shortcut of the limits walk.

The answers name what a client must fix, so their wording is part of the
contract; ``make mutate`` showed it was not pinned anywhere.
"""

from __future__ import annotations

from typing import Any

import pytest

from flows.http.input import (
    BadRequestError,
    Limits,
    _first_violation,
    _within,
    body_within,
    parse_body,
    parse_pixel_query,
)

LIMITS = Limits(max_batch_size=100, max_depth=5, max_string_length=64, max_keys=8)


def refusal(body: bytes) -> tuple[int, str]:
    with pytest.raises(BadRequestError) as caught:
        parse_body(body, LIMITS)
    assert str(caught.value) == caught.value.reason
    return caught.value.status, caught.value.reason


def pixel_refusal(query: str) -> tuple[int, str]:
    with pytest.raises(BadRequestError) as caught:
        parse_pixel_query(query, LIMITS)
    return caught.value.status, caught.value.reason


def test_each_unusable_body_gets_its_own_400() -> None:
    assert refusal(b" \n") == (400, "empty body: send a walkerOS event as JSON")
    assert refusal(b'{"a":') == (400, "invalid JSON: unexpected end of data at position 5")
    assert refusal(b'{"name": nope}') == (
        400,
        "invalid JSON: invalid literal, expected 'null' at position 9",
    )
    assert refusal(b'{"batch": {"name": "a b"}}') == (400, "batch: must be a list of events")


def test_a_body_nested_past_orjsons_limit_is_named_as_too_deep() -> None:
    deep = b"[" * 1030 + b"]" * 1030
    assert refusal(deep) == (400, "invalid JSON: nested too deeply (over 1024 levels)")


def test_an_event_that_has_a_batch_field_is_one_event_not_a_batch() -> None:
    event = b'{"name": "a b", "batch": [1, 2]}'
    assert parse_body(event, LIMITS) == [{"name": "a b", "batch": [1, 2]}]
    assert parse_body(b'{"batch": [{"name": "a b"}]}', LIMITS) == [{"name": "a b"}]


def test_a_pixel_query_refusal_says_what_to_send() -> None:
    assert pixel_refusal("") == (400, "no event in the query string: use ?name=entity%20action&...")
    assert pixel_refusal("e=%7B") == (400, "e: invalid JSON: unexpected end of data at position 1")
    assert pixel_refusal("e=%5B1%5D") == (400, "e: must be a JSON object (one event)")
    assert pixel_refusal("name=" + "x" * 300) == (414, "query string is too long")
    long_key = "data" + "[k]" * 30
    assert pixel_refusal(long_key + "=1") == (400, f"{long_key[:60]}: nested deeper than 5 levels")
    empty = "data[" + "k" * 70 + "][]"
    assert pixel_refusal(empty + "=1") == (400, f"{empty[:60]}: empty key in query parameter name")


def test_the_whole_event_may_come_as_json_in_e() -> None:
    assert parse_pixel_query("e=%7B%22name%22%3A%22a%20b%22%7D&x=1", LIMITS) == {"name": "a b"}
    assert parse_pixel_query("E=1&name=a%20b", LIMITS) == {"E": 1, "name": "a b"}


def test_pixel_keys_nest_and_blank_values_are_kept() -> None:
    assert parse_pixel_query("name=a%20b&data[boX]=1&data[empty]=", LIMITS) == {
        "name": "a b",
        "data": {"boX": 1, "empty": ""},
    }


@pytest.mark.parametrize(
    ("raw", "cast"),
    [
        ("true", True),
        ("false", False),
        ("False", "False"),
        ("12", 12),
        ("-5", -5),
        ("-", "-"),
        ("+5", "+5"),
        (" 5", " 5"),
        ("5a", "5a"),
        ("1.5", 1.5),
        ("1e3", 1000.0),
        ("1E3", 1000.0),
        ("1e999", "1e999"),
        ("1" * 19, int("1" * 19)),
        ("1" * 20, "1" * 20),
    ],
)
def test_pixel_values_are_cast_as_walkeros_casts_them(raw: str, cast: Any) -> None:
    value = parse_pixel_query(
        f"name=a%20b&data[v]={raw.replace('+', '%2B').replace(' ', '%20')}", LIMITS
    )
    assert value["data"]["v"] == cast
    assert type(value["data"]["v"]) is type(cast)


def test_a_body_is_proven_within_by_its_bytes_only_inside_every_bound() -> None:
    """Shorter than a string may be, fewer commas than keys, fewer brackets than levels."""
    assert body_within(b"[" + b",".join([b"1"] * 8) + b"]", LIMITS), "8 items, 7 commas"
    assert not body_within(b"[" + b",".join([b"1"] * 9) + b"]", LIMITS), "8 commas"
    assert body_within(b"[[[{}]]]" + b"{", LIMITS), "5 brackets"
    assert not body_within(b"[[[{{{}}}]]]", LIMITS), "6 brackets, however they mix"
    assert not body_within(b"{{{{{{}}}}}}", LIMITS)
    assert not body_within(b"[[[[[[]]]]]]", LIMITS)
    assert body_within(b" " * 64, LIMITS)
    assert not body_within(b" " * 65, LIMITS)


def test_a_whole_event_that_is_a_string_is_judged_by_its_length() -> None:
    assert _within("x" * 64, LIMITS)
    assert not _within("x" * 65, LIMITS)


def test_violations_in_lists_name_their_index_from_the_root() -> None:
    deep = _first_violation({"data": {"l": [[[[]]]]}}, LIMITS)
    assert deep is not None
    assert (deep.path, deep.reason) == ("data.l.0.0.0", "nested deeper than 5 levels")
    rooted = _first_violation([["x" * 65]], LIMITS)
    assert rooted is not None
    assert rooted.path == "0.0"
