"""Match expressions: each operator as walkerOS compares, and/or/not, errors at compile."""

from __future__ import annotations

import math
from typing import Any

import pytest

from collector.js import js_text, js_to_number
from collector.matcher import OPERATORS, MatcherConfigError, compile_matcher


def matches(operator: str, value: str, found: Any, **extra: Any) -> bool:
    predicate = compile_matcher({"key": "ingest.x", "operator": operator, "value": value, **extra})
    return predicate({"ingest": {"x": found}} if found is not ... else {"ingest": {}})


@pytest.mark.parametrize(
    ("operator", "value", "found", "expected"),
    [
        ("eq", "GET", "GET", True),
        ("eq", "GET", "get", False),
        ("eq", "1", 1, True),
        ("eq", "1", 1.0, True),
        ("eq", "0.5", 0.5, True),
        ("eq", "true", True, True),
        ("eq", "", ..., True),  # missing compares as ''
        ("eq", "", None, True),  # null too
        ("eq", "a,b", ["a", "b"], True),
        ("contains", "hook", "/api/webhooks", True),
        ("contains", "hook", "/api/events", False),
        ("contains", "", ..., True),
        ("prefix", "/gtag", "/gtag/collect", True),
        ("prefix", "/gtag", "/collect", False),
        ("suffix", ".json", "/data.json", True),
        ("suffix", ".json", "/data.xml", False),
        ("regex", r"^/v\d+/events$", "/v2/events", True),
        ("regex", r"^/v\d+/events$", "/latest/events", False),
        ("regex", r"\d", "a1b", True),  # searched, as JavaScript's test
        ("regex", "^$", ..., True),
        ("gt", "100", 200, True),
        ("gt", "100", 100, False),
        ("gt", "100", "150", True),
        ("gt", "-1", None, True),  # Number(null) is 0
        ("gt", "-1", ..., False),  # Number(undefined) is NaN
        ("gt", "0", "abc", False),
        ("lt", "100", 50, True),
        ("lt", "100", 200, False),
        ("lt", "1", True, False),  # Number(true) is 1
        ("lt", "1", "", True),  # Number('') is 0
        ("exists", "", "events", True),
        ("exists", "", 0, True),
        ("exists", "", "", True),
        ("exists", "", None, False),
        ("exists", "", ..., False),
    ],
)
def test_each_operator_compares_as_walkeros(
    operator: str, value: str, found: Any, expected: bool
) -> None:
    assert matches(operator, value, found) is expected
    assert matches(operator, value, found, **{"not": True}) is not expected


def test_every_schema_operator_is_covered() -> None:
    covered = {"eq", "contains", "prefix", "suffix", "regex", "gt", "lt", "exists"}
    assert set(OPERATORS) == covered


def test_and_or_nest_and_omitted_matches_all() -> None:
    predicate = compile_matcher(
        {
            "and": [
                {"key": "path", "operator": "prefix", "value": "/api"},
                {
                    "or": [
                        {"key": "method", "operator": "eq", "value": "POST"},
                        {"key": "method", "operator": "eq", "value": "PUT"},
                    ]
                },
            ]
        }
    )
    assert predicate({"path": "/api/x", "method": "PUT"})
    assert not predicate({"path": "/api/x", "method": "GET"})
    assert not predicate({"path": "/other", "method": "POST"})
    assert compile_matcher(None)({})
    assert compile_matcher("*")({})
    assert compile_matcher({"and": []})({})
    assert not compile_matcher({"or": []})({})


def test_and_stops_at_the_first_false() -> None:
    seen: list[str] = []

    class Recorder(dict[str, Any]):
        def get(self, key: str, default: Any = None) -> Any:
            seen.append(key)
            return super().get(key, default)

    predicate = compile_matcher(
        {
            "and": [
                {"key": "a", "operator": "eq", "value": "no"},
                {"key": "b", "operator": "eq", "value": "yes"},
            ]
        }
    )
    assert not predicate(Recorder(a="yes", b="yes"))
    assert "b" not in seen


def test_dot_paths_reach_into_lists_and_json_paths_work() -> None:
    assert compile_matcher({"key": "event.nested.0.type", "operator": "eq", "value": "product"})(
        {"event": {"nested": [{"type": "product"}]}}
    )
    assert compile_matcher({"key": "$.event.data.id", "operator": "eq", "value": "7"})(
        {"event": {"data": {"id": 7}}}
    )


@pytest.mark.parametrize(
    ("expression", "path", "reason"),
    [
        ([], "match", "must be an object"),
        ({"key": "a", "operator": "eq"}, "match", "needs 'value'"),
        (
            {"key": "a", "operator": "contain", "value": "x"},
            "match.operator",
            'did you mean "contains"',
        ),
        ({"key": "a", "operator": "equals", "value": "x"}, "match.operator", "one of eq, contains"),
        ({"key": "a", "operator": "eq", "value": 5}, "match.value", "must be a string"),
        ({"key": "a", "operator": "eq", "value": "x", "nott": True}, "match.nott", '"not"'),
        ({"key": "a", "operator": "eq", "value": "x", "not": "yes"}, "match.not", "boolean"),
        ({"key": "", "operator": "eq", "value": "x"}, "match.key", "must not be empty"),
        ({"key": "$[", "operator": "eq", "value": "x"}, "match.key", "invalid JSONPath"),
        ({"key": "a", "operator": "regex", "value": "(unclosed"}, "match.value", "invalid regex"),
        ({"key": "a", "operator": "regex", "value": "(?<n>x)"}, "match.value", "invalid regex"),
        ({"key": "a", "operator": "gt", "value": "ten"}, "match.value", "is not one"),
        ({"and": {"key": "a"}}, "match.and", "must be a list"),
        ({"and": [], "or": []}, "match", "not both"),
        ({"and": [], "key": "a"}, "match.key", "beside"),
        ({"or": [{"key": "a", "operator": "eq", "value": "x"}, 3]}, "match.or.1", "an object"),
    ],
)
def test_errors_name_the_path_and_the_reason(expression: Any, path: str, reason: str) -> None:
    with pytest.raises(MatcherConfigError) as raised:
        compile_matcher(expression)
    assert raised.value.path == path
    assert reason in raised.value.reason
    assert str(raised.value).startswith(f"{path}: ")


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, ""),
        (True, "true"),
        (3, "3"),
        (3.0, "3"),
        (-0.25, "-0.25"),
        (1e-7, "1e-7"),
        (1e21, "1e+21"),
        (1e20, "100000000000000000000"),
        (1e-5, "0.00001"),
        (math.inf, "Infinity"),
        ([1, None, [2, 3]], "1,,2,3"),
        ({"b": 1, "a": 2}, '{"a":2,"b":1}'),
    ],
)
def test_js_string_is_javascripts_string(value: Any, text: str) -> None:
    assert js_text(value) == text


@pytest.mark.parametrize(
    ("value", "number"),
    [
        ("  12 ", 12.0),
        ("", 0.0),
        ("0x1f", 31.0),
        ("1e3", 1000.0),
        ("-Infinity", -math.inf),
        (False, 0.0),
        ([5], 5.0),
        (10**400, math.inf),
    ],
)
def test_js_number_is_javascripts_number(value: Any, number: float) -> None:
    assert js_to_number(value) == number


@pytest.mark.parametrize("value", ["1_0", "inf", "nan", "abc", "-0x10", [1, 2], {}])
def test_js_number_is_nan_where_javascript_says_so(value: Any) -> None:
    assert math.isnan(js_to_number(value))
