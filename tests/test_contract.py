"""Contract resolution (extend, wildcards, annotations) against walkerOS's resolved rules."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from flows.flowfile.contract import ContractError, merge_schemas, resolve_contracts
from tests.shared_fixtures import load_fixture

VALIDATE = load_fixture("walkeros-transformer-validate-examples.json")
RESOLVED_CASES = [case for case in VALIDATE["cases"] if "contract_before_resolution" in case]


def test_the_validate_fixture_has_three_resolved_contract_cases() -> None:
    assert len(RESOLVED_CASES) == 3


@pytest.mark.parametrize("case", RESOLVED_CASES, ids=[case["name"] for case in RESOLVED_CASES])
def test_resolved_rules_match_walkeros(case: dict[str, Any]) -> None:
    """Upstream's test feeds ``Object.values(resolveContracts(contract))`` to validate."""
    before = copy.deepcopy(case["contract_before_resolution"])
    resolved = resolve_contracts(case["contract_before_resolution"])
    assert list(resolved.values()) == case["settings"]["contract"]
    assert case["contract_before_resolution"] == before


def test_the_complete_example_contract() -> None:
    contract = load_fixture("walkeros-flows/cli-flow-complete.json")["contract"]
    resolved = resolve_contracts(contract)["default"]
    assert resolved["description"] == "Web shop tracking contract", "entry metadata is kept"
    assert resolved["schema"] == contract["default"]["schema"]
    product = resolved["events"]["product"]
    id_and_name = {"id": {"type": "string"}, "name": {"type": "string"}}
    assert product["*"] == {
        "properties": {
            "data": {"type": "object", "required": ["id", "name"], "properties": id_and_name}
        }
    }
    assert product["add"] == {
        "properties": {
            "data": {
                "type": "object",
                "required": ["id", "name", "quantity"],
                "properties": {**id_and_name, "quantity": {"type": "integer", "minimum": 1}},
            }
        }
    }
    assert "description" not in resolved["events"]["order"]["complete"]


def test_wildcards_merge_in_order_and_star_entries_are_kept() -> None:
    events = {
        "*": {"*": {"required": ["a"], "x": 1}, "view": {"required": ["b"], "x": 2}},
        "page": {"*": {"required": ["c"], "x": 3}, "view": {"required": ["d"]}, "load": {}},
    }
    resolved = resolve_contracts({"c": {"events": events}})["c"]["events"]
    assert resolved["page"]["view"] == {"required": ["a", "b", "c", "d"], "x": 3}
    assert resolved["page"]["load"] == {"required": ["a", "c"], "x": 3}
    assert resolved["page"]["*"] == {"required": ["a", "c"], "x": 3}, "*.* then page.* only"
    assert resolved["*"] == events["*"]


def test_extend_merges_additively_and_the_child_wins_on_scalars() -> None:
    contracts = {
        "base": {
            "tagging": 1,
            "description": "base",
            "schema": {"required": ["consent"], "properties": {"a": {"type": "string"}}},
            "events": {"page": {"view": {"required": ["id"], "maxProperties": 5}}},
            "custom": "not inherited",
        },
        "web": {
            "extend": "base",
            "tagging": 2,
            "schema": {"required": ["globals"], "properties": {"a": {"minLength": 1}}},
            "events": {"page": {"view": {"required": ["url"], "maxProperties": 9}}, "x": {"y": {}}},
        },
        "shop": {"extend": "web", "description": None},
    }
    resolved = resolve_contracts(contracts)
    web = resolved["web"]
    assert web == {
        "tagging": 2,
        "description": "base",
        "schema": {
            "required": ["consent", "globals"],
            "properties": {"a": {"type": "string", "minLength": 1}},
        },
        "events": {
            "page": {"view": {"required": ["id", "url"], "maxProperties": 9}},
            "x": {"y": {}},
        },
    }
    assert resolved["shop"] == web, "a null description inherits, as upstream's ??"
    assert resolved["base"]["custom"] == "not inherited"


def test_annotations_go_only_at_schema_positions() -> None:
    schema = {
        "title": "drop",
        "description": "drop",
        "$comment": "drop",
        "examples": [1],
        "properties": {
            "title": {"type": "string", "description": "drop"},
            "description": {"type": "string"},
        },
        "items": [{"title": "drop", "type": "number"}],
        "anyOf": [{"examples": [], "minimum": 1}, True],
        "not": {"title": "drop", "const": 0},
        "enum": [{"title": "Tee"}],
        "const": {"description": "kept"},
        "x-vendor": {"title": "kept"},
        "dependentRequired": {"a": ["b"]},
        "additionalProperties": False,
    }
    resolved = resolve_contracts({"c": {"events": {"p": {"v": schema}}, "schema": schema}})["c"]
    assert resolved["events"]["p"]["v"] == {
        "properties": {"title": {"type": "string"}, "description": {"type": "string"}},
        "items": [{"type": "number"}],
        "anyOf": [{"minimum": 1}, True],
        "not": {"const": 0},
        "enum": [{"title": "Tee"}],
        "const": {"description": "kept"},
        "x-vendor": {"title": "kept"},
        "dependentRequired": {"a": ["b"]},
        "additionalProperties": False,
    }
    assert resolved["schema"] == schema, "section schemas keep their annotations"


def test_extend_errors_name_the_place() -> None:
    with pytest.raises(ContractError) as caught:
        resolve_contracts({"a": {"extend": "b"}, "b": {"extend": "c"}, "c": {"extend": "a"}})
    assert str(caught.value) == (
        "Circular extend chain detected: a → b → c → a (at contract.c.extend)"
    )
    with pytest.raises(ContractError, match=r'^Contract "x" not found \(at contract.a.extend\)$'):
        resolve_contracts({"a": {"extend": "x"}})
    with pytest.raises(ContractError, match=r"\(at contract.a.events.p.v\)$"):
        resolve_contracts({"a": {"events": {"p": {"v": "schema?"}}}})


def test_merge_schemas_unions_required_without_duplicates_and_copies() -> None:
    parent = {"required": ["a", "b"], "p": {"q": [1]}}
    merged = merge_schemas(parent, {"required": ["b", "c"], "p": {"r": 2}})
    assert merged == {"required": ["a", "b", "c"], "p": {"q": [1], "r": 2}}
    merged["p"]["q"].append(9)
    assert parent == {"required": ["a", "b"], "p": {"q": [1]}}
    assert merge_schemas({"required": "a"}, {"required": ["b"]}) == {"required": ["b"]}
