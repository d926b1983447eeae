"""Key paths read as mapping values: the inline readers agree with the general getters."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from collector.paths import UNDEFINED, compile_path, compile_value_reader

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
