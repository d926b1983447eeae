"""``$var``/``$env`` references: the walkerOS cases, then what the cases leave open."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from flows.flowfile.references import FlowReferenceError, resolve_deferred, resolve_references
from tests.shared_fixtures import load_fixture

# shared/fixtures beside the checkout; a missing folder is a clear error, never a skip.
CASES: list[dict[str, Any]] = load_fixture("walkeros-env-var-resolution.json")["cases"]


def test_the_fixture_has_all_twelve_cases() -> None:
    assert len(CASES) == 12


@pytest.mark.parametrize("case", CASES, ids=[case["test"] for case in CASES])
def test_walkeros_case(case: dict[str, Any]) -> None:
    kwargs: dict[str, Any] = {"deferred": bool(case.get("deferred", False))}
    if "error" in case:
        with pytest.raises(FlowReferenceError) as caught:
            resolve_references(case["input"], case["variables"], case["env"], **kwargs)
        assert case["error"] in str(caught.value)
    else:
        result = resolve_references(case["input"], case["variables"], case["env"], **kwargs)
        assert result == case["expected"]
        assert type(result) is type(case["expected"])


def test_nested_structures_are_walked_and_keys_kept_verbatim() -> None:
    value = {
        "$var.key": "$var.host",
        "$env.KEY": ["$env.PORT:80", {"deep": "$var.port"}, 3, None, True],
        "list": [["$var.rule"]],
    }
    variables = {"host": "api.example.com", "port": 8080, "rule": {"ttl": 300}, "key": "k"}
    result = resolve_references(value, variables, {"PORT": "8443"})
    assert result == {
        "$var.key": "api.example.com",
        "$env.KEY": ["8443", {"deep": 8080}, 3, None, True],
        "list": [[{"ttl": 300}]],
    }


def test_input_and_variables_are_not_mutated_or_shared() -> None:
    value = {"a": ["$var.rule", "$env.X:1"], "b": "$var.rule"}
    variables = {"rule": {"match": {"key": "method"}}}
    before_value, before_vars = copy.deepcopy(value), copy.deepcopy(variables)
    result = resolve_references(value, variables, {})
    assert value == before_value
    assert variables == before_vars
    result["b"]["match"]["key"] = "changed"
    assert variables == before_vars
    assert result["a"][0] == {"match": {"key": "method"}}


def test_errors_name_the_json_path_of_the_value() -> None:
    settings = {"writeKey": "$env.SEGMENT_WRITE_KEY"}
    spec = {"destinations": {"segment": {"config": {"settings": settings}}}}
    with pytest.raises(FlowReferenceError) as caught:
        resolve_references(spec, {}, {}, path="flows.default")
    error = caught.value
    where = "flows.default.destinations.segment.config.settings.writeKey"
    assert error.path == where
    assert error.name == "SEGMENT_WRITE_KEY"
    assert str(error) == (
        'Environment variable "SEGMENT_WRITE_KEY" not found and no default provided '
        f"(used at {where}); set it or write $env.SEGMENT_WRITE_KEY:default"
    )


def test_list_indexes_are_numbers_in_the_path() -> None:
    with pytest.raises(FlowReferenceError) as caught:
        resolve_references({"include": ["ok", "$var.nope"]}, {"nop": 1}, {}, path="flows.x")
    assert caught.value.path == "flows.x.include.1"
    assert str(caught.value) == (
        'Variable "nope" not found (used at flows.x.include.1); did you mean "nop"?'
    )


def test_whole_string_var_takes_a_deep_path_and_keeps_the_type() -> None:
    variables = {"api": {"v2": {"url": "https://x", "retries": 3}}}
    assert resolve_references("$var.api.v2.retries", variables, {}) == 3
    assert resolve_references("$var.api.v2", variables, {}) == {"url": "https://x", "retries": 3}
    with pytest.raises(FlowReferenceError, match=r'"v3" does not exist in "api"'):
        resolve_references("$var.api.v3", variables, {})


def test_inline_scalars_are_written_as_walkeros_does() -> None:
    variables = {"on": True, "off": False, "none": None, "n": 2.0, "f": 0.5}
    assert resolve_references("$var.on/$var.off/$var.none/$var.n/$var.f", variables, {}) == (
        "true/false/null/2/0.5"
    )


@pytest.mark.parametrize(
    ("variable", "kind"), [({"a": 1}, "an object"), ([1, 2], "a list")], ids=["object", "list"]
)
def test_inline_non_scalar_var_is_an_error_naming_the_path(variable: Any, kind: str) -> None:
    with pytest.raises(FlowReferenceError) as caught:
        resolve_references({"url": "https://$var.thing/x"}, {"thing": variable}, {}, path="p")
    assert caught.value.path == "p.url"
    assert str(caught.value).startswith(
        f'Variable "thing" is {kind} and cannot be part of a string (used at p.url)'
    )


def test_env_values_are_always_strings_and_never_rescanned() -> None:
    env = {"PORT": "8080", "ODD": "$env.PORT and $var.x"}
    assert resolve_references("$env.PORT", {}, env) == "8080"
    assert resolve_references("$env.ODD", {}, env) == "$env.PORT and $var.x"


def test_an_empty_default_is_a_default() -> None:
    assert resolve_references("x$env.NOPE:", {}, {}) == "x"


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "http://localhost:8080"),
        # The default runs to whitespace, '"' or '}', so ":8080" belongs to the
        # default and is dropped with it when HOST is set (walkerOS does the same).
        ({"HOST": "example.com"}, "http://example.com"),
    ],
    ids=["default", "set"],
)
def test_env_default_inside_a_larger_string_runs_to_the_end(
    env: dict[str, str], expected: str
) -> None:
    assert resolve_references("http://$env.HOST:localhost:8080", {}, env) == expected


def test_env_default_stops_at_whitespace_quote_and_brace() -> None:
    text = 'a $env.A:x b {"k": "$env.B:y"} $env.C:z}'
    assert resolve_references(text, {}, {}) == 'a x b {"k": "y"} z}'


def test_secrets_become_markers_in_bundles_and_values_at_run_time(tmp_path: Path) -> None:
    value = {"token": "$secret.API_TOKEN", "other": "$secret.lower", "text": "x $secret.API_TOKEN"}
    no_dir = {"FLOWS_SECRETS_DIR": str(tmp_path / "none")}
    bundled = resolve_references(value, {}, {"API_TOKEN": "tok-1", **no_dir}, deferred=True)
    assert bundled == {**value, "token": "__WALKEROS_SECRET:API_TOKEN"}
    assert resolve_references(bundled, {}, {}, deferred=True) == bundled
    expected = {**value, "token": "tok-1"}
    assert resolve_references(value, {}, {"API_TOKEN": "tok-1", **no_dir}) == expected
    assert resolve_references(bundled, {}, {"API_TOKEN": "tok-1", **no_dir}) == expected
    assert resolve_deferred(bundled, {"API_TOKEN": "tok-1", **no_dir}) == expected
    with pytest.raises(FlowReferenceError) as caught:
        resolve_deferred(bundled, no_dir, path="f")
    assert caught.value.path == "f.token"
    assert str(caught.value).startswith('WalkerOS: required secret "API_TOKEN" is not set')


def test_a_secret_glued_into_text_cannot_be_bundled() -> None:
    variables = resolve_references({"t": "$secret.API_TOKEN"}, {}, {}, deferred=True)
    assert resolve_references("$var.t", variables, {}, deferred=True) == (
        "__WALKEROS_SECRET:API_TOKEN"
    )
    with pytest.raises(FlowReferenceError) as caught:
        resolve_references({"h": "Bearer $var.t"}, variables, {}, deferred=True, path="f")
    assert caught.value.path == "f.h"
    assert str(caught.value).startswith(
        'Variable "t" holds a $secret, which cannot be part of a string in a bundle'
    )


def test_deferred_keeps_env_as_markers_but_resolves_var() -> None:
    value = {
        "writeKey": "$env.SEGMENT_WRITE_KEY",
        "host": "https://$var.host/$env.PATH_PREFIX:v1",
        "url": "$env.REDIS_URL:redis://localhost:6379",
    }
    secret_env = {"SEGMENT_WRITE_KEY": "sk-secret", "REDIS_URL": "redis://prod"}
    bundled = resolve_references(value, {"host": "h"}, secret_env, deferred=True)
    assert bundled == {
        "writeKey": "__WALKEROS_ENV:SEGMENT_WRITE_KEY",
        "host": "https://h/__WALKEROS_ENV:PATH_PREFIX:v1",
        "url": "__WALKEROS_ENV:REDIS_URL:redis://localhost:6379",
    }
    assert "sk-secret" not in json.dumps(bundled)
    assert resolve_references(bundled, {}, {}, deferred=True) == bundled


def test_deferred_refuses_text_glued_onto_a_kept_env_default() -> None:
    variables = resolve_references({"host": "$env.HOST:http://x"}, {}, {}, deferred=True)
    assert resolve_references("$var.host", variables, {}, deferred=True) == (
        "__WALKEROS_ENV:HOST:http://x"
    )
    assert resolve_references("$var.host v1", variables, {}, deferred=True) == (
        "__WALKEROS_ENV:HOST:http://x v1"
    )
    # Kept as a marker, "/v1" would join the default and vanish once HOST is set,
    # unlike the same flow resolved directly ("https://eu/v1").
    with pytest.raises(FlowReferenceError) as caught:
        resolve_references({"url": "$var.host/v1"}, variables, {}, deferred=True, path="f")
    assert caught.value.path == "f.url"
    assert str(caught.value).startswith('Variable "host" ends in an $env reference')
    no_default = resolve_references({"h": "$env.HOST"}, {}, {}, deferred=True)
    assert resolve_references("$var.h/v1", no_default, {}, deferred=True) == (
        "__WALKEROS_ENV:HOST/v1"
    )


def test_markers_are_resolved_at_run_time() -> None:
    bundled = {
        "writeKey": "__WALKEROS_ENV:SEGMENT_WRITE_KEY",
        "host": "https://h/__WALKEROS_ENV:PATH_PREFIX:v1",
        "both": "__WALKEROS_ENV:A:x://__WALKEROS_ENV:B:y",
        "n": 5,
    }
    env = {"SEGMENT_WRITE_KEY": "sk-secret", "B": "b"}
    expected = {"writeKey": "sk-secret", "host": "https://h/v1", "both": "x://b", "n": 5}
    assert resolve_deferred(bundled, env) == expected
    # A bundle loads through the same call as a flow file.
    assert resolve_references(bundled, {}, env) == expected


def test_a_marker_without_default_or_value_is_an_error() -> None:
    with pytest.raises(FlowReferenceError) as caught:
        resolve_deferred({"s": {"writeKey": "__WALKEROS_ENV:SEGMENT_WRITE_KEY"}}, {}, path="f")
    assert caught.value.path == "f.s.writeKey"
    assert caught.value.name == "SEGMENT_WRITE_KEY"
    assert "not found and no default provided" in str(caught.value)


def test_deferred_round_trip_equals_direct_resolution() -> None:
    value = ["$env.A:it's", "$env.B:{x}", "p $env.C: q", "$env.D:"]
    for env in ({}, {"A": "1", "B": "2", "C": "3", "D": "4"}):
        bundled = resolve_references(value, {}, env, deferred=True)
        assert resolve_deferred(bundled, env) == resolve_references(value, {}, env)


def test_env_var_default_uses_var_and_env_defaults_to_os_environ(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FLOWS_TEST_REF", "from-os")
    assert resolve_references("$env.FLOWS_TEST_REF:$var.d", {"d": "x"}) == "from-os"
    monkeypatch.delenv("FLOWS_TEST_REF")
    assert resolve_references("$env.FLOWS_TEST_REF:$var.d", {"d": "x"}) == "x"
