"""The compiled list filter gives exactly what jsonpath_ng gives, on any shape of input."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from jsonpath_ng.ext.parser import parse

from collector.paths import UNDEFINED, compile_path

EXPRESSIONS = [
    "$.nested[?entity = 'product']",
    "$.nested[?(@.entity == 'product')]",
    "$.data.items[?kind='a b']",
]
SCALARS = st.none() | st.booleans() | st.integers(-3, 3) | st.sampled_from(["product", "a b", "x"])
ITEM = st.dictionaries(st.sampled_from(["entity", "kind", "data"]), SCALARS, max_size=3)
LISTS = st.lists(ITEM | SCALARS | st.lists(SCALARS, max_size=2), max_size=6)
DOCUMENTS = st.fixed_dictionaries(
    {},
    optional={
        "nested": LISTS | ITEM | SCALARS,
        "data": st.fixed_dictionaries({}, optional={"items": LISTS | ITEM | SCALARS}) | SCALARS,
    },
)


def _reference(expression: str, document: Any) -> Any:
    matches = [match.value for match in parse(expression).find(document)]
    return matches or UNDEFINED


@settings(max_examples=300)
@given(document=DOCUMENTS, expression=st.sampled_from(EXPRESSIONS))
def test_fast_filter_matches_jsonpath_ng(document: dict[str, Any], expression: str) -> None:
    assert compile_path(expression)(document) == _reference(expression, document)


def test_the_shop_loop_selects_products_in_order() -> None:
    nested = [
        {"entity": "product", "data": {"id": "a"}},
        {"entity": "gift"},
        {"entity": "product", "data": {"id": "b"}},
    ]
    found = compile_path("$.nested[?entity = 'product']")({"nested": nested})
    assert [item["data"]["id"] for item in found] == ["a", "b"]
