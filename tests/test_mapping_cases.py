"""All 66 walkerOS mapping cases from shared/fixtures, run against our engine."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from collector.mapping import MappingContext, compile_mapping, compile_rules, get_mapping_value
from collector.paths import UNDEFINED, compile_path
from tests.shared_fixtures import load_fixture

CASES = load_fixture("walkeros-mapping-cases.json")
EVENTS = CASES["fixtures_events"]


def _value(raw: Any) -> Any:
    if isinstance(raw, str) and raw in EVENTS:
        return copy.deepcopy(EVENTS[raw])
    return raw


def _expected(case: dict[str, Any]) -> Any:
    return UNDEFINED if case.get("expectedUndefined") else case["expected"]


def _ids(section: str) -> list[str]:
    return [
        f"{section}-{i}-{c.get('test', c.get('key', ''))}" for i, c in enumerate(CASES[section])
    ]


def test_every_section_of_the_fixture_is_run() -> None:
    sections = {k for k, v in CASES.items() if isinstance(v, list) and k != "notes"}
    assert sections == {"getMappingValue", "getMappingEvent", "processEventMapping", "getByPath"}
    assert sum(len(CASES[s]) for s in sections) == 57
    # 66 checks: each dotted path expected of a processEventMapping case is one check
    checks = 57 - len(CASES["processEventMapping"])
    checks += sum(len(case["expected"]) for case in CASES["processEventMapping"])
    assert checks == 66


@pytest.mark.parametrize("case", CASES["getMappingValue"], ids=_ids("getMappingValue"))
def test_get_mapping_value(case: dict[str, Any]) -> None:
    result = get_mapping_value(
        _value(case["value"]),
        case["mapping"],
        consent=case.get("contextConsent"),
        collector_consent=case.get("collectorConsent"),
    )
    assert result == _expected(case)


@pytest.mark.parametrize("case", CASES["getMappingEvent"], ids=_ids("getMappingEvent"))
def test_get_mapping_event(case: dict[str, Any]) -> None:
    table = compile_rules(case["rules"])
    event = case["event"]
    rule = table.find(event, MappingContext(event, None))
    assert rule is not None
    assert rule.name == case["expected"]["eventMapping"]["name"]
    assert rule.key == case["expected"]["mappingKey"]


@pytest.mark.parametrize("case", CASES["processEventMapping"], ids=_ids("processEventMapping"))
def test_process_event_mapping(case: dict[str, Any]) -> None:
    original = copy.deepcopy(case["event"])
    result = compile_mapping(case["config"]).process(case["event"])
    view = {
        "event": result.event,
        "data": result.data,
        "ignore": result.ignore,
        "silent": result.silent,
        "mappingKey": result.mapping_key,
    }
    for dotted, expected in case["expected"].items():
        assert compile_path(dotted)(view) == expected, dotted
    assert case["event"] == original, "the caller's event must not be modified"


@pytest.mark.parametrize("case", CASES["getByPath"], ids=_ids("getByPath"))
def test_get_by_path(case: dict[str, Any]) -> None:
    getter = compile_path(case["key"], case.get("default", UNDEFINED))
    assert getter(case["obj"]) == _expected(case)
