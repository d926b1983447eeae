"""Value configs beyond the shared walkerOS cases: ``fn``, ``condition``, ``validate``,
value-level ``consent``, fallbacks, loops and the errors a wrong config gets.

The shared fixtures cannot name Python callables, so these parts of the
mapping language are pinned here (``make mutate`` found them untested).
"""

from __future__ import annotations

import logging
from typing import Any

import pytest

from collector.errors import suggestion
from collector.mapping import MappingConfigError, MappingContext, compile_value
from collector.mapping_config import ValueObject
from collector.paths import UNDEFINED
from collector.values import kind_name, safe_call

CALLABLES = "tests.mapping_callables"


def resolve(config: Any, value: Any, consent: dict[str, bool] | None = None) -> Any:
    return compile_value(config, "cfg")(value, MappingContext({}, consent))


def config_error(config: Any, path: str = "cfg") -> tuple[str, str, str]:
    with pytest.raises(MappingConfigError) as caught:
        compile_value(config, path)
    return caught.value.path, caught.value.reason, str(caught.value)


# -- fn ----------------------------------------------------------------------------------------


def test_fn_gets_the_value_and_the_context_and_none_is_no_value() -> None:
    assert resolve({"fn": f"{CALLABLES}:double"}, 21) == 42
    assert resolve({"fn": f"{CALLABLES}:double"}, "x") is UNDEFINED
    assert resolve({"fn": f"{CALLABLES}:seen"}, {"a": 1}, {"marketing": True}) == {
        "value": {"a": 1},
        "consent": {"marketing": True},
    }
    assert resolve({"fn": f"{CALLABLES}:double", "value": 7}, "x") == 7, "the static fallback"


def test_a_failing_fn_is_no_value_and_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="collector.mapping"):
        assert resolve({"fn": f"{CALLABLES}:fails"}, 1) is UNDEFINED
    [record] = caplog.records
    assert record.getMessage() == f"mapping fn {CALLABLES}:fails failed"
    assert record.exc_info is not None


# -- condition, validate, consent: the guarded value ----------------------------------------------


def test_condition_sees_the_value_and_gates_the_result() -> None:
    config = {"key": "id", "condition": f"{CALLABLES}:is_flagged"}
    assert resolve(config, {"flag": True, "id": "p1"}) == "p1"
    assert resolve(config, {"flag": False, "id": "p1"}) is UNDEFINED
    fallback = {**config, "value": "none"}
    assert resolve(fallback, {"flag": False, "id": "p1"}) is UNDEFINED, (
        "a failed condition: nothing"
    )


def test_validate_sees_the_result_and_a_refused_one_falls_back() -> None:
    config = {"key": "n", "validate": f"{CALLABLES}:positive"}
    assert resolve(config, {"n": 5}) == 5
    assert resolve(config, {"n": -5}) is UNDEFINED
    assert resolve({**config, "value": 1}, {"n": -5}) == 1


def test_a_failing_check_means_no_and_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="collector.mapping"):
        assert resolve({"key": "n", "condition": f"{CALLABLES}:fails"}, {"n": 1}) is UNDEFINED
        assert resolve({"key": "n", "validate": f"{CALLABLES}:fails"}, {"n": 1}) is UNDEFINED
    assert [r.getMessage() for r in caplog.records] == [
        "mapping callable at cfg failed",
        "mapping callable at cfg failed",
    ]
    context = MappingContext({}, None)
    assert safe_call(lambda v, c: v == 3 and c is context, 3, context, "p") is True
    assert safe_call(lambda v, c: 0, 3, context, "p") is False


def test_value_consent_gates_and_falls_back_to_the_static_value() -> None:
    email = {"key": "email", "consent": {"marketing": True}}
    user = {"email": "jane@example.com"}
    assert resolve(email, user, {"marketing": True}) == "jane@example.com"
    assert resolve(email, user, {"marketing": False}) is UNDEFINED
    assert resolve({**email, "value": "hidden"}, user, {}) == "hidden"
    # no producer: granted gives the static value, else the value itself
    assert resolve({"consent": {"marketing": True}, "value": 7}, user, {"marketing": True}) == 7
    assert resolve({"consent": {"marketing": True}}, user, {"marketing": True}) == user
    assert config_error({"key": "a", "consent": True}) == (
        "cfg.consent",
        "must be an object of consent states",
        "cfg.consent: must be an object of consent states",
    )


def test_an_object_without_a_producer_gives_the_value_or_its_static_value() -> None:
    assert resolve({"value": 42}, {"a": 1}) == 42
    assert resolve({"key": None}, {"a": 1}) == {"a": 1}, "walkerOS: the value itself"
    assert resolve({"key": None}, None) is UNDEFINED
    assert resolve({"value": None}, {"a": 1}) == {"a": 1}, "a null value is no static value"
    assert resolve({}, {"a": 1}) is UNDEFINED


def test_a_settings_model_compiles_as_what_the_user_wrote() -> None:
    """Settings validate value configs as models; ``validate`` is an alias there."""
    model = ValueObject.model_validate({"key": "n", "validate": f"{CALLABLES}:positive"})
    assert resolve(model, {"n": -1}) is UNDEFINED
    assert resolve(model, {"n": 2}) == 2


# -- loop, set, map, first-of ---------------------------------------------------------------------


def test_loop_over_this_and_over_a_list_with_holes() -> None:
    assert resolve({"loop": ["this", {"key": "id"}]}, {"id": "x", "this": [{"id": "no"}]}) == ["x"]
    items = {"items": [{"id": "a"}, None, {"id": "b"}, {"other": 1}]}
    assert resolve({"loop": ["items", {"key": "id"}]}, items) == ["a", "b"]
    assert resolve({"loop": ["missing", "id"], "value": "none"}, items) == "none"
    assert resolve({"loop": ["l", {"value": "x"}]}, {"l": [1, None]}) == ["x"], "null is skipped"


def test_each_wrong_shape_is_named_where_it_is() -> None:
    assert config_error(42, "") == (
        "",
        "a value config must be a key path, an object or a list, got a number",
        "a value config must be a key path, an object or a list, got a number",
    )
    assert config_error(True)[1].endswith("got a boolean")
    assert config_error(1.5)[1].endswith("got a number")
    assert config_error(("a",))[1].endswith("got tuple")
    assert config_error({"set": "data.a"})[:2] == ("cfg.set", "must be a list of value configs")
    assert config_error({"map": ["a"]})[:2] == ("cfg.map", "must be an object of value configs")
    assert config_error({"loop": "items"})[:2] == (
        "cfg.loop",
        'must be a list: [path or "this", value config]',
    )
    assert config_error({"loop": ["a", "b", "c"]})[:2] == (
        "cfg.loop",
        'must be a list of two: [path or "this", value config]',
    )
    assert config_error({"mpa": {}, "zzz": 1})[:2] == (
        "cfg.mpa",
        "unknown value config key 'mpa'; did you mean \"map\"?",
    )
    assert config_error({"zzz": 1}, "")[:2] == ("zzz", "unknown value config key 'zzz'")
    with pytest.raises(MappingConfigError) as caught:
        compile_value({"zzz": 1})
    assert caught.value.path == "zzz", "no path given: the key alone"


def test_nested_errors_carry_the_full_path() -> None:
    bad = "$.[["
    for config, where in (
        (["data.a", bad], "cfg.1"),
        ({"set": ["a", bad]}, "cfg.set.1"),
        ({"map": {"x": bad}}, "cfg.map.x"),
        ({"loop": [bad, "a"]}, "cfg.loop.0"),
        ({"loop": ["a", bad]}, "cfg.loop.1"),
        ({"key": bad, "value": "fallback"}, "cfg.key"),
    ):
        path, reason, _ = config_error(config)
        assert (path, reason.split(":")[0]) == (where, "invalid JSONPath '$.[['"), config


def test_kind_names_and_suggestions() -> None:
    assert [kind_name(v) for v in (True, 1, 1.5, "s", None, [1])] == [
        "a boolean",
        "a number",
        "a number",
        "str",
        "NoneType",
        "list",
    ]
    assert suggestion("mpa", frozenset({"map", "set"})) == '; did you mean "map"?'
    assert suggestion("zzz", frozenset({"map", "set"})) == ""
    assert suggestion("sett", ["set", "settings"]) == '; did you mean "set"?'
