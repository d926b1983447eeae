"""The validate transformer against walkerOS's cases, its format schema and its load-time errors."""

from __future__ import annotations

import copy
import json
import logging
import re
from collections import Counter
from importlib import metadata, resources
from typing import Any

import jsonschema_rs
import pytest
from pydantic import ValidationError

from collector.collector import Collector
from collector.destination import EventRejected
from collector.event import Entity, Event, Source, User
from collector.transformer import TransformerContext
from collector.transformers.contract import (
    FORMAT_SCHEMA_FILE,
    MAX_CACHED_LOOKUPS,
    ContractError,
    format_validator,
)
from collector.transformers.validate import SHOWN_ERRORS, ValidateSettings, ValidateTransformer
from tests.shared_fixtures import load_fixture

FIXTURE = load_fixture("walkeros-transformer-validate-examples.json")
CASES = FIXTURE["cases"]
FORMAT_CASES = [case for case in CASES if case["settings"].get("format")]

WRAPPERS = re.compile(
    r'Property ".*" does not match schema\.|A subschema had errors\.'
    r"|Instance does not match every subschema\."
)
"""@cfworker/json-schema's messages for an applicator whose subschema failed: the failure
itself is reported again at its own path, and jsonschema-rs reports only that."""


def build(settings: dict[str, Any]) -> ValidateTransformer:
    return ValidateTransformer(ValidateSettings.model_validate(settings))


def context(ingest: dict[str, Any] | None = None) -> TransformerContext:
    return TransformerContext(ingest={} if ingest is None else ingest, logger=logging.getLogger())


def run(
    transformer: ValidateTransformer, event: dict[str, Any], ingest: dict[str, Any]
) -> tuple[Any, str | None]:
    """walkerOS's result shape: ``False`` for a refused event (with our reason), else the event."""
    try:
        result = transformer.push(event, context(ingest))
    except EventRejected as refused:
        return False, refused.reason
    return (event if result is None else result), None


def leaf_paths(issues: list[dict[str, Any]]) -> Counter[str]:
    return Counter(issue["path"] for issue in issues if not WRAPPERS.fullmatch(issue["message"]))


def errors_at(ingest: dict[str, Any], path: str) -> Any:
    value: Any = ingest
    for key in path.split("."):
        value = value[key]
    return value


@pytest.mark.parametrize("case", CASES, ids=[case["name"] for case in CASES])
def test_walkeros_case(case: dict[str, Any]) -> None:
    transformer = build(case["settings"])
    event = copy.deepcopy(case["in"]["event"])
    ingest: dict[str, Any] = {}

    result, reason = run(transformer, event, ingest)

    ((kind, expected),) = case["out"]
    assert kind == "return"
    assert event == case["in"]["event"], "the input event must not be changed in place"
    if expected is False:
        assert result is False
        assert reason is not None
    else:
        assert result == expected["event"]
    errors_path = case["settings"].get("output", {}).get("errors", "validation")
    if not errors_path:
        assert ingest == case["ingest_after"] == {}
        return
    ours = errors_at(ingest, errors_path)
    theirs = errors_at(case["ingest_after"], errors_path)
    assert ingest.keys() == case["ingest_after"].keys()
    assert bool(ours) == bool(theirs)
    assert leaf_paths(ours) == leaf_paths(theirs)
    assert all(issue["level"] == "error" and issue["message"] for issue in ours)
    if reason is not None:
        assert reason.startswith(f"failed validation: {ours[0]['path']}: ")


def test_strict_reason_names_the_first_errors_and_counts_the_rest() -> None:
    required = [f"f{i}" for i in range(SHOWN_ERRORS + 2)]
    transformer = build({"mode": "strict", "contract": [{"required": required}]})
    ingest: dict[str, Any] = {}

    result, reason = run(transformer, {"name": "page view"}, ingest)

    assert result is False
    assert reason is not None
    assert reason.count("is a required property") == SHOWN_ERRORS
    assert reason.endswith("(and 2 more)")
    assert len(ingest["validation"]) == SHOWN_ERRORS + 2, "the ingest keeps every error"


def test_long_messages_are_clipped_in_the_reason_only() -> None:
    transformer = build(
        {"mode": "strict", "contract": [{"properties": {"name": {"const": "x" * 500}}}]}
    )
    ingest: dict[str, Any] = {}

    _, reason = run(transformer, {"name": "page view"}, ingest)

    assert reason is not None
    assert len(reason) < 200
    assert reason.endswith("...")
    assert len(ingest["validation"][0]["message"]) > 500


def test_verdict_copies_the_path_and_shares_the_rest() -> None:
    event = {"name": "page view", "source": {"type": "web"}, "data": {"title": "Home"}}
    result = build({"format": True}).push(event, context())

    assert result == {**event, "source": {"type": "web", "valid": True}}
    assert event["source"] == {"type": "web"}
    assert result is not None
    assert result["data"] is event["data"]


def test_verdict_replaces_a_value_in_the_way() -> None:
    result = build({"output": {"isValid": "data.ok.flag"}}).push(
        {"name": "page view", "data": {"ok": "text"}}, context()
    )

    assert result == {"name": "page view", "data": {"ok": {"flag": True}}}


def test_errors_are_written_in_place_into_the_ingest() -> None:
    ingest: dict[str, Any] = {"diag": {"kept": 1}, "other": "x"}
    transformer = build(
        {"contract": [{"required": ["data"]}], "output": {"errors": "diag.problems"}}
    )

    transformer.push({"name": "page view"}, context(ingest))

    assert ingest["other"] == "x"
    assert ingest["diag"]["kept"] == 1
    assert [issue["path"] for issue in ingest["diag"]["problems"]] == ["#"]


def test_error_paths_are_json_pointers() -> None:
    transformer = build(
        {"contract": [{"properties": {"data": {"properties": {"a/b~c": {"type": "string"}}}}}]}
    )
    ingest: dict[str, Any] = {}

    transformer.push({"name": "x y", "data": {"a/b~c": 1}}, context(ingest))

    assert [issue["path"] for issue in ingest["validation"]] == ["#/data/a~1b~0c"]


def test_rule_lookup_falls_back_through_the_wildcards_in_order() -> None:
    marks = {
        ("page", "view"): "page.view",
        ("page", "*"): "page.*",
        ("*", "view"): "*.view",
        ("*", "*"): "*.*",
    }
    events: dict[str, dict[str, Any]] = {}
    for (entity, action), mark in marks.items():
        events.setdefault(entity, {})[action] = {"properties": {"name": {"const": mark}}}
    transformer = build({"contract": [{"events": events}]})

    def chosen(entity: str, action: str) -> str:
        ingest: dict[str, Any] = {}
        transformer.push({"name": "?", "entity": entity, "action": action}, context(ingest))
        (issue,) = ingest["validation"]
        return str(re.search(r'"([^"]+)" was expected', issue["message"]).group(1))  # type: ignore[union-attr]

    assert chosen("page", "view") == "page.view"
    assert chosen("page", "click") == "page.*"
    assert chosen("order", "view") == "*.view"
    assert chosen("order", "click") == "*.*"


def test_lookup_cache_is_bounded() -> None:
    transformer = build({"contract": [{"events": {"*": {"*": {"type": "object"}}}}]})
    for number in range(MAX_CACHED_LOOKUPS + 10):
        transformer.push({"name": "x y", "entity": f"e{number}", "action": "a"}, context())

    assert len(transformer.contract._lookups) == MAX_CACHED_LOOKUPS


def test_registered_as_an_entry_point() -> None:
    (found,) = [
        ep for ep in metadata.entry_points(group="flows.transformers") if ep.name == "validate"
    ]
    assert found.load() is ValidateTransformer
    assert ValidateTransformer.type == "validate"


# -- load-time errors --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("contract", "path", "reason"),
    [
        (
            [{"events": {"page": {"view": {"type": "strin"}}}}],
            "contract.0.events.page.view.type",
            "not a valid JSON Schema",
        ),
        (
            [{"type": "object"}, {"properties": {"data": {"required": "title"}}}],
            "contract.1.properties.data.required",
            "not a valid JSON Schema",
        ),
        ([{"schema": {"pattern": "(["}}], "contract.0.schema.pattern", "not a valid JSON Schema"),
        ([{"events": {"page": "view"}}], "contract.0.events.page", "must map each action"),
        ([{"events": {"page": {"view": True}}}], "contract.0.events.page.view", "a boolean"),
        ([{"schema": ["type"]}], "contract.0.schema", "an array"),
        ([{"$ref": "#/$defs/missing"}], "contract.0", "does not exist"),
        ([{"$ref": "https://example.com/s.json"}], "contract.0", "Retrieval is disabled"),
    ],
)
def test_a_bad_schema_names_its_place_in_the_contract(
    contract: list[Any], path: str, reason: str
) -> None:
    settings = ValidateSettings.model_validate({"contract": contract})

    with pytest.raises(ContractError) as raised:
        ValidateTransformer(settings)

    assert raised.value.path == path
    assert reason in raised.value.reason
    assert str(raised.value).startswith(f"{path}: ")


@pytest.mark.parametrize(
    ("settings", "loc", "words"),
    [
        ({"contract": ["$contract.web"]}, ("contract", 0), "must be resolved"),
        ({"contract": [3]}, ("contract", 0), "dictionary"),
        ({"contract": {"type": "object"}}, ("contract",), "list"),
        ({"mode": "strct"}, ("mode",), "strict"),
        ({"format": "yes"}, ("format",), "boolean"),
        ({"modes": "strict"}, ("modes",), "Extra"),
        ({"output": {"isvalid": "x"}}, ("output", "isvalid"), "Extra"),
        ({"output": {"isValid": "source..valid"}}, ("output", "isValid"), "empty key"),
    ],
)
def test_settings_errors_carry_their_path(
    settings: dict[str, Any], loc: tuple[Any, ...], words: str
) -> None:
    with pytest.raises(ValidationError) as raised:
        ValidateSettings.model_validate(settings)

    (error,) = raised.value.errors()
    assert error["loc"] == loc
    assert words in error["msg"]


# -- the format schema: ours against walkerOS's ------------------------------------------------

OURS = format_validator()
THEIRS = jsonschema_rs.validator_for(FIXTURE["format_schema"])

AGREED_VALID = [
    {
        "name": "page view",
        "data": {"title": "Home", "tags": ["a", 1, True], "x": {"y": [{"z": 1}]}},
    },
    {"user": {"id": "u", "email": "a@example.com", "internal": True}},
    {"nested": [{"entity": "product", "data": {"id": "p"}, "nested": [], "context": {}}]},
    {"source": {"type": "web", "count": 3, "release": {"web": "1"}}},
    {"consent": {"marketing": False}, "timing": 1.5, "trigger": "load"},
]
AGREED_INVALID = [
    {"data": {"gone": None}},
    {"data": {"grid": [[1]]}},
    {"data": "text"},
    {"context": {"stage": ["checkout", "first"]}},
    {"user": {"nickname": "x"}},
    {"user": {"email": "not an address"}},
    {"nested": [{"entity": "product"}]},
    {"nested": [{"entity": "product", "data": {}, "extra": 1}]},
    {"source": {"url": "https://x"}},
    {"source": {"type": "web", "count": -1}},
    {"consent": {"marketing": "yes"}},
    {"timestamp": 1.5},
    {"timestamp": 0},
    {"id": 5},
    {"unknown": 1},
]
"""Events both schemas decide the same way."""

OURS_ONLY = [
    {"count": 1, "group": "g", "version": {"source": "1", "tagging": 2}},
    {"source": {"type": "web", "id": "s", "previous_id": "p", "valid": True}},
]
"""Fields our collector sets that walkerOS's schema has not: ours accepts them, theirs not."""


@pytest.mark.parametrize("case", FORMAT_CASES, ids=[case["name"] for case in FORMAT_CASES])
def test_format_cases_decided_like_walkeros(case: dict[str, Any]) -> None:
    event = case["in"]["event"]
    expected = not case["ingest_after"]["validation"]

    assert OURS.is_valid(event) is THEIRS.is_valid(event) is expected


@pytest.mark.parametrize(
    ("event", "verdict"),
    [(event, True) for event in AGREED_VALID] + [(event, False) for event in AGREED_INVALID],
    ids=[json.dumps(event)[:50] for event in AGREED_VALID + AGREED_INVALID],
)
def test_format_schema_agrees_with_walkeros(event: dict[str, Any], verdict: bool) -> None:
    assert OURS.is_valid(event) is THEIRS.is_valid(event) is verdict


@pytest.mark.parametrize("event", OURS_ONLY, ids=[json.dumps(e)[:50] for e in OURS_ONLY])
def test_format_schema_allows_our_collectors_fields(event: dict[str, Any]) -> None:
    assert OURS.is_valid(event)
    assert not THEIRS.is_valid(event)


def test_format_schema_names_the_fields_of_our_event_model() -> None:
    schema = json.loads(
        resources.files("collector.transformers").joinpath(FORMAT_SCHEMA_FILE).read_text()
    )
    definitions = schema["$defs"]

    assert set(schema["properties"]) == set(Event.__annotations__)
    assert set(definitions["user"]["properties"]) == set(User.__annotations__)
    assert set(definitions["entity"]["properties"]) == set(Entity.__annotations__)
    assert set(Source.__annotations__) <= set(definitions["source"]["properties"])
    jsonschema_rs.meta.validate(schema)


def test_format_schema_accepts_what_our_collector_prepares() -> None:
    collector = Collector(
        {"globals": {"env": "test"}, "user": {"id": "u"}, "source": {"type": "server"}}
    )
    raw = [
        {"name": "page view", "data": {"title": "Home"}},
        {
            "name": "order complete",
            "context": {"shopping": ["complete", 0]},
            "nested": [{"entity": "product", "data": {"id": "p", "price": 1.5}}],
            "consent": {"functional": True},
        },
    ]
    for event in raw:
        prepared = collector.prepare(event)
        assert OURS.is_valid(prepared), list(OURS.iter_errors(prepared))
