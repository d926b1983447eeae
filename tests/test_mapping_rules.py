"""Mapping rules beyond the shared walkerOS cases: conditional rules, wildcard fallbacks,
whose consent a mapping sees, ``include``, list merging, policy and the load errors.

Pinned here because ``make mutate`` showed the shared fixtures leave them
open (docs/mutation-survivors.md).
"""

from __future__ import annotations

from typing import Any

import pytest

from collector.mapping import (
    MappingConfigError,
    MappingContext,
    compile_mapping,
    compile_rule,
    compile_rules,
    flatten_include,
    get_mapping_value,
)
from collector.paths import UNDEFINED
from tests import mapping_callables

IS_PRODUCT = "tests.mapping_callables:is_product"


def load_error(config: dict[str, Any], path: str = "") -> tuple[str, str]:
    with pytest.raises(MappingConfigError) as caught:
        compile_mapping(config, path)
    return caught.value.path, caught.value.reason


def test_rule_errors_name_the_rule_path() -> None:
    rule = "mapping.page.view"
    assert load_error({"mapping": {"page": {"view": 5}}}) == (
        rule,
        "a rule must be an object, got a number",
    )
    assert load_error({"mapping": {"page": {"view": {"nmae": "x", "zzz": 1}}}}) == (
        f"{rule}.nmae",
        "unknown rule key 'nmae'; did you mean \"name\"?",
    )
    assert load_error({"mapping": {"page": {"view": {"settings": []}}}}) == (
        f"{rule}.settings",
        "must be an object",
    )
    assert load_error({"mapping": {"page": {"view": {"name": 5}}}}) == (
        f"{rule}.name",
        "must be a string, got a number",
    )
    for include in ("data", ["data", 5]):
        assert load_error({"mapping": {"page": {"view": {"include": include}}}}) == (
            f"{rule}.include",
            "must be a list of strings",
        )
    assert load_error({"mapping": {"page": {"view": {"policy": ["x"]}}}}) == (
        f"{rule}.policy",
        "must be an object of dot path -> value config",
    )
    assert load_error({"mapping": {"page": {"view": {"policy": {"data.x": {"mpa": 1}}}}}})[0] == (
        f"{rule}.policy.data.x.mpa"
    )
    assert (
        load_error({"mapping": {"page": {"view": {"data": {"mpa": 1}}}}})[0] == f"{rule}.data.mpa"
    )
    assert load_error({"mapping": {"page": {"view": [{"name": "a"}, {"nmae": "b"}]}}})[0] == (
        f"{rule}.1.nmae"
    )


def test_table_errors_and_the_prefix_of_every_path() -> None:
    assert load_error({"mapping": 5}) == ("mapping", "must be an object: {entity: {action: rule}}")
    assert load_error({"mapping": {"page": 5}}) == (
        "mapping.page",
        "must be an object: {action: rule}",
    )
    assert load_error({"include": "data"}) == ("include", "must be a list of strings")
    assert load_error({"data": {"mpa": 1}}, "dest") == (
        "dest.data.mpa",
        load_error({"data": {"mpa": 1}})[1],
    )
    with pytest.raises(MappingConfigError) as caught:
        compile_rules(5)
    assert caught.value.path == "mapping"
    with pytest.raises(MappingConfigError) as caught:
        compile_mapping({"mapping": 5})
    assert caught.value.path == "mapping", "no path given: no prefix"


def test_a_compiled_rule_keeps_what_it_was_given() -> None:
    settings = {"page": True}
    rule = compile_rule(
        {"settings": settings, "include": ["data"], "batch": 5, "condition": IS_PRODUCT},
        "page view",
        "r",
    )
    assert rule.raw_settings is settings
    assert rule.settings is settings, "no destination compiler: kept as written"
    assert (rule.include, rule.batch) == (("data",), 5)
    assert rule.condition is mapping_callables.is_product
    assert (rule.ignore, rule.silent) == (False, False)
    listed = compile_rules(
        {"page": {"view": [{"settings": {"a": 1}}]}}, compile_settings=lambda s, p: (p, s)
    )
    found = listed.find({"name": "page view"}, MappingContext({}, None))
    assert found is not None
    assert found.settings == ("mapping.page.view.0.settings", {"a": 1})


# -- finding the rule ----------------------------------------------------------------------------


def _find(mapping: dict[str, Any], event: dict[str, Any]) -> str | None:
    rule = compile_rules(mapping).find(event, MappingContext(event, None))
    return rule.name if rule is not None else None


def test_a_conditional_rule_list_takes_the_first_rule_whose_condition_holds_on_the_event() -> None:
    mapping = {"product": {"view": [{"condition": IS_PRODUCT, "name": "A"}, {"name": "B"}]}}
    assert _find(mapping, {"name": "product view", "data": {"kind": "product"}}) == "A"
    assert _find(mapping, {"name": "product view", "data": {"kind": "other"}}) == "B"


def test_the_action_is_everything_after_the_first_space() -> None:
    mapping = {"order": {"complete now": {"name": "A"}}, "order complete": {"now": {"name": "B"}}}
    assert _find(mapping, {"name": "order complete now"}) == "A"


def test_a_name_without_an_action_matches_no_rule() -> None:
    assert (
        _find({"page": {"*": {"name": "A"}}, "*": {"*": {"name": "Z"}}}, {"name": "page"}) is None
    )
    assert _find({"*": {"*": {"name": "Z"}}}, {"name": " view"}) is None
    assert _find({"*": {"*": {"name": "Z"}}}, {}) is None


def test_when_a_wildcard_rule_does_not_hold_star_star_is_the_last_resort() -> None:
    mapping = {"*": {"view": [{"condition": IS_PRODUCT, "name": "A"}], "*": {"name": "Z"}}}
    assert _find(mapping, {"name": "page view", "data": {"kind": "product"}}) == "A"
    assert _find(mapping, {"name": "page view", "data": {}}) == "Z"
    assert (
        _find({"page": {"*": {"name": "P"}}, "*": {"*": {"name": "Z"}}}, {"name": "page x"}) == "P"
    )


# -- processing ----------------------------------------------------------------------------------


def test_the_mapping_sees_the_consent_it_is_given_else_the_events() -> None:
    mapping = compile_mapping(
        {"data": {"map": {"email": {"key": "user.email", "consent": {"marketing": True}}}}}
    )
    event = {"name": "a b", "user": {"email": "e@x"}, "consent": {"marketing": True}}
    assert mapping.process(event).data == {"email": "e@x"}
    assert mapping.process(event, {"marketing": False}).data == {}
    assert mapping.process({**event, "consent": {}}, {"marketing": True}).data == {"email": "e@x"}


def test_an_ignored_event_still_reports_its_rule_and_data() -> None:
    mapping = compile_mapping(
        {"data": {"map": {"id": "data.id"}}, "mapping": {"debug": {"*": {"ignore": True}}}}
    )
    result = mapping.process({"name": "debug view", "data": {"id": "d1"}})
    assert (result.ignore, result.data, result.mapping_key) == (True, {"id": "d1"}, "debug *")


def test_include_flattens_sections_and_the_rules_include_wins() -> None:
    event = {
        "name": "page view",
        "id": "e1",
        "data": {"title": "Home", "gone": None, "id": "p"},
        "globals": {"g": 1},
        "context": {"stage": ["checkout", 2]},
        "user": "not an object",
        "version": {"source": "1"},
    }
    assert flatten_include(event, ["user", "data", "context"]) == {
        "data_title": "Home",
        "data_id": "p",
        "context_stage": "checkout",
    }
    assert flatten_include({"data": {"tags": ["a", "b"]}}, ["data"]) == {"data_tags": ["a", "b"]}
    assert flatten_include(event, ["event"]) == {
        "event_id": "e1",
        "event_name": "page view",
    }
    everything = flatten_include(event, ["all"])
    assert set(everything) == {
        "data_title",
        "data_id",
        "globals_g",
        "context_stage",
        "version_source",
        "event_id",
        "event_name",
    }
    destination = compile_mapping(
        {"include": ["globals"], "mapping": {"page": {"view": {"include": ["data"]}}}}
    )
    assert destination.process(event).data == {"data_title": "Home", "data_id": "p"}
    assert destination.process({**event, "name": "other view"}).data == {"globals_g": 1}


def test_include_goes_under_the_mapped_data_and_never_over_a_non_object() -> None:
    event = {"name": "page view", "data": {"title": "Home"}}
    with_data = compile_mapping(
        {"include": ["data"], "data": {"map": {"data_title": {"value": "mine"}}}}
    )
    assert with_data.process(event).data == {"data_title": "mine"}
    as_list = compile_mapping({"include": ["data"], "data": {"set": ["data.title"]}})
    assert as_list.process(event).data == ["Home"]
    merged = compile_mapping({"include": ["data"], "data": {"map": {"x": {"value": 1}}}})
    assert merged.process(event).data == {"data_title": "Home", "x": 1}
    nothing = compile_mapping({"include": ["globals"]})
    assert nothing.process(event).data is UNDEFINED


def test_rule_data_is_merged_over_destination_data_and_lists_are_joined() -> None:
    mapping = compile_mapping(
        {
            "data": {"map": {"tags": {"value": ["a", "c"]}, "keep": {"value": 1}}},
            "mapping": {"page": {"view": {"data": {"map": {"tags": {"value": ["b", "a"]}}}}}},
        }
    )
    assert mapping.process({"name": "page view"}).data == {"tags": ["a", "c", "b"], "keep": 1}


def test_policy_values_are_read_from_the_event() -> None:
    mapping = compile_mapping({"policy": {"data.copy": "data.id"}, "data": "data.copy"})
    assert mapping.process({"name": "a b", "data": {"id": "x"}}).data == "x"


def test_get_mapping_value_maps_against_the_event_it_is_given() -> None:
    config = {"fn": "tests.mapping_callables:event_name"}
    assert get_mapping_value({"v": 1}, config, event={"name": "page view"}) == "page view"
    assert get_mapping_value({"name": "self"}, config) == "self", "no event: the value is the event"
    assert get_mapping_value("text", {"fn": "tests.mapping_callables:event_type"}) == "dict"
    assert get_mapping_value(None, {"value": 5}) is UNDEFINED
    assert get_mapping_value(UNDEFINED, {"value": 5}) is UNDEFINED
