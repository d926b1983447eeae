"""Key paths compiled once: readers agree with the general getters; setters copy on write."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from collector.paths import (
    UNDEFINED,
    compile_deleter,
    compile_path,
    compile_setter,
    compile_value_reader,
)

KEYS = st.sampled_from(["a", "b", "0"])
VALUES = st.recursive(
    st.none() | st.integers(0, 3) | st.text(max_size=2),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=3),
    max_leaves=12,
)
PATHS = st.sampled_from(["a", "b", "a.b", "a.a", "a.0", "0", "a.*", "*.b", "a.b.a", "$.a.b"])


@settings(max_examples=400)
@given(value=VALUES, key=PATHS, default=st.sampled_from([UNDEFINED, "fallback", 0]))
def test_a_value_reader_is_its_getter_with_null_as_missing(
    value: Any, key: str, default: Any
) -> None:
    found = compile_path(key, default)(value)
    expected = UNDEFINED if found is None else found
    assert compile_value_reader(key, default)(value, None) == expected


def test_null_reads_as_undefined_and_a_missing_key_as_the_default() -> None:
    read = compile_value_reader("data.id", "none")
    assert read({"data": {"id": None}}, None) is UNDEFINED
    assert read({"data": {}}, None) == "none"
    assert read({"data": {"id": "p1"}}, None) == "p1"


def test_a_compiled_setter_copies_only_along_its_path() -> None:
    event = {"data": {"id": "p1"}, "user": {"id": "u1"}}
    updated = compile_setter("data.flag")(event, True)
    assert updated == {"data": {"id": "p1", "flag": True}, "user": {"id": "u1"}}
    assert event == {"data": {"id": "p1"}, "user": {"id": "u1"}}  # untouched
    assert updated["user"] is event["user"]  # not on the path: shared, not copied
    assert compile_setter("data.id")(event, UNDEFINED) == {"data": {}, "user": {"id": "u1"}}


def test_a_compiled_deleter_removes_and_leaves_the_input_alone() -> None:
    data = {"a": {"b": 1, "c": 2}, "d": 3}
    assert compile_deleter("a.b")(data) == {"a": {"c": 2}, "d": 3}
    assert compile_deleter("x.y")(data) == data
    assert data == {"a": {"b": 1, "c": 2}, "d": 3}


def test_a_numeric_segment_indexes_a_context_pair_of_a_validated_event() -> None:
    """Validation makes context ``[value, order]`` pairs tuples; ``context.shopping.0`` still reads.

    It read nothing in ``flows push`` and ``flows run`` (only lists were indexed), while a
    mapping tested on a raw dict worked.
    """
    from collector.collector import Collector

    event = Collector().prepare({"name": "product view", "context": {"shopping": ["detail", 0]}})
    assert type(event["context"]["shopping"]) is tuple
    assert compile_value_reader("context.shopping.0")(event, None) == "detail"
    assert compile_value_reader("context.shopping.1")(event, None) == 0
