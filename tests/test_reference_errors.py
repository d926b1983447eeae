"""What a wrong ``$var``/``$env`` reference is told, word for word, and the corners of
deferred markers (bundles) that the walkerOS cases do not reach.

A flow author fixes a flow from these messages, so they are pinned; the
marker cases keep a bundle meaning what its flow file means.
"""

from __future__ import annotations

from typing import Any

import pytest

from flows.flowfile.references import (
    FlowReferenceError,
    _kind,
    resolve_deferred,
    resolve_references,
)

MARKER = "__WALKEROS_ENV:"


def reference_error(value: Any, variables: dict[str, Any], **kwargs: Any) -> FlowReferenceError:
    with pytest.raises(FlowReferenceError) as caught:
        resolve_references(value, variables, kwargs.pop("env", {}), **kwargs)
    return caught.value


def test_the_message_names_the_place_and_adds_the_hint_only_when_there_is_one() -> None:
    error = reference_error("$var.nope", {})
    assert (error.name, error.path) == ("nope", "")
    assert error.hint == 'define it under "variables" (of the file or of the flow)'
    assert str(error) == (
        'Variable "nope" not found (used at (root)); '
        'define it under "variables" (of the file or of the flow)'
    )
    error = reference_error({"a": "$var.port.x"}, {"port": 8080})
    assert error.hint is None
    assert (
        str(error) == 'Variable "port.x" not found: "port" is a number, not an object (used at a)'
    )


def test_list_items_are_named_by_index_from_the_root() -> None:
    assert reference_error(["ok", "$var.nope"], {}).path == "1"
    assert reference_error({"a": [["$var.nope"]]}, {}).path == "a.0.0"


def test_a_missing_step_suggests_a_close_key_or_says_what_is_there() -> None:
    variables = {"db": {"host": "h"}}
    close = reference_error("$var.db.hots", variables)
    assert close.hint == 'did you mean "host"?'
    far = reference_error("$var.db.zz", variables)
    assert str(far) == (
        'Variable "db.zz" not found: "zz" does not exist in "db" (used at (root)); '
        '"db" has no key "zz"'
    )


def test_a_structure_cannot_be_glued_into_text() -> None:
    error = reference_error("x-$var.cfg", {"cfg": {"a": 1}})
    assert str(error) == (
        'Variable "cfg" is an object and cannot be part of a string (used at (root)); '
        'use "$var.cfg" as the whole value to keep its type, or reference a scalar'
    )


def test_inline_numbers_are_written_as_javascript_writes_them() -> None:
    assert resolve_references("n=$var.n", {"n": 1e20}) == "n=100000000000000000000"
    assert resolve_references("n=$var.n", {"n": 1e21}) == "n=1e+21"
    assert resolve_references("n=$var.n", {"n": 2.5}) == "n=2.5"


def test_kinds_in_messages() -> None:
    values: list[Any] = [{}, [], "s", True, 1, 1.5, None, {1}]
    assert [_kind(v) for v in values] == [
        "an object",
        "a list",
        "a string",
        "a boolean",
        "a number",
        "a number",
        "null",
        "a set",
    ]


# -- deferred markers ----------------------------------------------------------------------------


def test_a_whole_variable_is_copied_deeply_into_a_bundle() -> None:
    variables = {"cfg": {"a": {"b": 1}}}
    bundled = resolve_references({"x": "$var.cfg"}, variables, {}, deferred=True)
    bundled["x"]["a"]["b"] = 2
    assert variables == {"cfg": {"a": {"b": 1}}}


def test_markers_in_a_whole_variable_are_resolved_from_the_given_environment() -> None:
    variables = {"host": f"{MARKER}FLOWS_TEST_ONLY_HOST:fallback"}
    env = {"FLOWS_TEST_ONLY_HOST": "from-env"}
    assert resolve_references({"h": "$var.host"}, variables, env) == {"h": "from-env"}
    missing = reference_error({"h": "$var.v"}, {"v": f"{MARKER}FLOWS_TEST_ONLY_UNSET"})
    assert missing.path == "h"
    assert missing.hint == "set FLOWS_TEST_ONLY_UNSET in the environment the bundle runs in"


def test_a_missing_marker_variable_tells_to_set_it_where_the_bundle_runs() -> None:
    inline = reference_error(f"http://{MARKER}FLOWS_TEST_ONLY_UNSET/v1", {})
    assert inline.hint == "set FLOWS_TEST_ONLY_UNSET in the environment the bundle runs in"
    with pytest.raises(FlowReferenceError) as caught:
        resolve_deferred(f"{MARKER}FLOWS_TEST_ONLY_UNSET", env={})
    assert caught.value.path == ""
    assert "(used at (root))" in str(caught.value)
    assert caught.value.hint == "set FLOWS_TEST_ONLY_UNSET in the environment the bundle runs in"
    plain = reference_error("$env.FLOWS_TEST_ONLY_UNSET", {})
    assert plain.hint == "set it or write $env.FLOWS_TEST_ONLY_UNSET:default"


def test_text_after_a_kept_marker_is_refused_only_where_it_would_join_the_default() -> None:
    ok = resolve_references("$var.host/v1", {"host": f"http://{MARKER}HOST"}, {}, deferred=True)
    assert ok == f"http://{MARKER}HOST/v1", "no default: the marker ends at the slash"
    not_a_marker = resolve_references("$var.v-x", {"v": f"a{MARKER}"}, {}, deferred=True)
    assert not_a_marker == f"a{MARKER}-x"
    following = "/a-path-longer-than-twenty"
    error = reference_error(
        f"$var.host{following}", {"host": f"{MARKER}HOST:http://x"}, deferred=True
    )
    assert str(error) == (
        'Variable "host" ends in an $env reference that cannot be kept in a bundle here: '
        f"the text after it ({following[:20]!r}) would become part of it (used at (root)); "
        "an $env default runs to the next whitespace, '\"' or '}'; make the variable hold "
        "the whole value, or give its $env no default"
    )
