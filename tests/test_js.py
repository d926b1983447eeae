"""JavaScript's String() and JSON.stringify, as Node prints them (the expected values are what Node prints)."""

from __future__ import annotations

import pytest

from collector.js import js_json, js_number, js_string
from collector.paths import UNDEFINED


@pytest.mark.parametrize(
    ("number", "printed"),
    [
        (3.0, "3"),
        (-0.0, "0"),
        (0.1, "0.1"),
        (5.22, "5.22"),
        (1e-6, "0.000001"),
        (1e-7, "1e-7"),
        (2.5e-10, "2.5e-10"),
        (1e21, "1e+21"),
        (1.5e21, "1.5e+21"),
        (123456789012345680000.0, "123456789012345680000"),
        (-1234.5678, "-1234.5678"),
        (float("nan"), "NaN"),
        (float("-inf"), "-Infinity"),
    ],
)
def test_numbers_print_as_in_javascript(number: float, printed: str) -> None:
    assert js_number(number) == printed


def test_string_of_each_json_kind() -> None:
    assert [js_string(v) for v in (True, False, None, UNDEFINED, 8080, "x")] == [
        "true",
        "false",
        "null",
        "undefined",
        "8080",
        "x",
    ]
    assert js_string(2**60) == "1152921504606847000", "beyond 2**53 a JS number is a double"
    assert js_string({"a": 1}) == "[object Object]"
    assert js_string([1, None, [2, 3], UNDEFINED, True]) == "1,,2,3,,true"


def test_json_stringify_with_indent_two() -> None:
    value = {"a": [1, {}], "b": {}, "c": 'é\n"', "d": 3.0, "e": None, "f": UNDEFINED}
    assert js_json(value) == (
        '{\n  "a": [\n    1,\n    {}\n  ],\n  "b": {},\n  "c": "é\\n\\"",\n  "d": 3,\n  "e": null\n}'
    )
    assert js_json([UNDEFINED, float("inf"), ("x", 1)], 0) == '[null,null,["x",1]]'
