"""Key paths at their edges: deep paths, numeric keys on objects, ``*`` on a non-list,
JSONPath results that are one value or a list, and removing what is not there.

The property tests compare the fast readers with the general getter; these
pin what the general getter itself returns, so a bug in both is still seen.
"""

from __future__ import annotations

import pickle

import pytest

from collector.paths import (
    UNDEFINED,
    PathError,
    compile_deleter,
    compile_path,
    compile_setter,
    compile_value_reader,
)


def test_undefined_is_one_falsy_value_that_survives_pickling() -> None:
    assert repr(UNDEFINED) == "UNDEFINED"
    assert not UNDEFINED
    assert pickle.loads(pickle.dumps(UNDEFINED)) is UNDEFINED


def test_a_path_must_be_a_string() -> None:
    with pytest.raises(PathError, match=r"^a key path must be a string, got int$"):
        compile_path(5)  # type: ignore[arg-type]
    with pytest.raises(PathError, match=r"^invalid JSONPath '\$\.\[\[': "):
        compile_path("$.[[")


def test_paths_of_three_keys_and_more_read_through_and_null_is_no_value() -> None:
    event = {"data": {"a": {"b": {"c": 1}}, "none": {"x": None}}}
    read = compile_value_reader("data.a.b.c")
    assert read(event, None) == 1
    assert compile_value_reader("data.none.x", "d")(event, None) is UNDEFINED
    assert compile_value_reader("data.a.b.missing", "d")(event, None) == "d"


def test_numeric_keys_index_lists_and_also_read_object_keys() -> None:
    value = {"a": {"0": {"b": 1}}, "l": [{"b": 2}]}
    assert compile_path("a.0.b")(value) == 1
    assert compile_path("l.0.b")(value) == 2
    assert compile_path("a.0.x", "d")(value) == "d"
    assert compile_path("l.5.b", "d")(value) == "d"
    assert compile_path("a.1.b", "d")(value) == "d"
    assert compile_path("a.1", "d")(value) == "d", "a missing numeric key of an object"


def test_a_missing_middle_key_gives_the_default() -> None:
    assert compile_path("a.b", "d")({"a": 5}) == "d"
    assert compile_path("a.b", "d")({"a": {}}) == "d"
    assert compile_path("a.b", "d")({"a": [1]}) == "d"
    assert compile_path("a.b.c", "d")({"a": {"b": 5}}) == "d"


def test_star_maps_over_a_list_and_is_a_plain_key_elsewhere() -> None:
    assert compile_path("a.*")({"a": [1, None, 3]}) == [1, None, 3]
    assert compile_path("a.*.id")({"a": [{"id": 1}, {}, {"id": 3}]}) == [1, None, 3]
    assert compile_path("a.*")({"a": {"*": "star"}}) == "star"
    assert compile_path("a.*", "d")({"a": {}}) == "d"
    assert compile_path("*.b")([{"b": 1}, {"b": 2}]) == [1, 2]


@pytest.mark.parametrize(
    ("expression", "value", "expected"),
    [
        ("$.data.id", {"data": {"id": "p1"}}, "p1"),
        ("$.a.b", {"a": {"b": [1]}}, [1]),
        ("$.a[*]", {"a": [1]}, [1]),
        ("$..id", {"a": {"id": 1}}, [1]),
        ("$.a[0:2]", {"a": [1, 2, 3]}, [1, 2]),
        ("$.a['b','c']", {"a": {"b": 1, "c": 2}}, [1, 2]),
        ("$.a[?b = 'x']", {"a": [{"b": "x"}]}, [{"b": "x"}]),
        (
            "$.nested[?entity = 'product']",
            {"nested": {"x": {"entity": "product"}}},
            [{"entity": "product"}],
        ),
    ],
)
def test_jsonpath_gives_one_value_only_where_it_can_match_only_one(
    expression: str, value: object, expected: object
) -> None:
    assert compile_path(expression)(value) == expected


def test_setting_or_deleting_a_key_that_is_not_there_is_harmless() -> None:
    event = {"data": {"id": "p1"}}
    assert compile_setter("data.missing")(event, UNDEFINED) == event
    assert compile_deleter("data.missing")(event) == event
    assert compile_deleter("data.id")(event) == {"data": {}}
    assert event == {"data": {"id": "p1"}}
