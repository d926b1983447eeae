"""``$var`` and ``$env`` references in flow files, resolved the walkerOS way.

The grammar is walkerOS's (``packages/core/src/references.ts``) so one flow
file means the same thing to both implementations. Per string, in order:

1. ``$secret.NAME`` (whole string) is not supported here and is left as is.
2. A whole-string ``$var.a.b`` becomes the variable's value with its JSON type.
3. Inline ``$var.a.b`` is replaced by the stringified scalar.
4. Inline ``$env.NAME`` / ``$env.NAME:default`` is replaced by the
   environment's value, else the default; ``$env`` results are always strings.
   The default runs to whitespace, ``"`` or ``}``, so in
   ``http://$env.HOST:localhost:8080`` the default is ``localhost:8080`` and a
   set ``HOST`` replaces the port too.

For bundles (``deferred=True``) step 4 writes the walkerOS marker
``__WALKEROS_ENV:NAME[:default]`` instead, so no environment value (a
secret) ever lands in a file; :func:`resolve_deferred` (and a non-deferred
:func:`resolve_references`) turns markers into values at run time.
"""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Callable, Mapping
from typing import Any, Final

from collector.js import js_string
from flows.errors import did_you_mean

__all__ = [
    "ENV_MARKER_PREFIX",
    "FlowReferenceError",
    "resolve_deferred",
    "resolve_references",
]

ENV_MARKER_PREFIX: Final = "__WALKEROS_ENV:"
"""walkerOS's prefix for a deferred ``$env`` reference (``ENV_MARKER_PREFIX`` upstream)."""

_NAME: Final = r"[a-zA-Z_][a-zA-Z0-9_]*"
_VAR_PATH: Final = rf"\$var\.({_NAME}(?:\.{_NAME})*)"
_ENV_DEFAULT: Final = r'[^"}\s]'

REF_VAR_FULL: Final = re.compile(_VAR_PATH)
"""Whole-string ``$var.name(.deep.path)``; used with ``fullmatch`` (``$`` would allow a newline)."""
REF_VAR_INLINE: Final = re.compile(_VAR_PATH)
REF_ENV: Final = re.compile(rf"\$env\.({_NAME})(?::({_ENV_DEFAULT}*))?")
REF_SECRET: Final = re.compile(r"\$secret\.([A-Z0-9_]+)")
"""Whole-string ``$secret.NAME``; used with ``fullmatch``."""

_MARKER_PATTERN: Final = (
    rf"{re.escape(ENV_MARKER_PREFIX)}({_NAME})"
    rf"(?::((?:(?!{re.escape(ENV_MARKER_PREFIX)}){_ENV_DEFAULT})*))?"
)
ENV_MARKER: Final = re.compile(_MARKER_PATTERN)
"""A deferred ``$env``; the default stops where ``$env``'s does, or at the next marker."""
_ENV_OR_MARKER: Final = re.compile(f"{REF_ENV.pattern}|{_MARKER_PATTERN}")
"""Both in one pass, so an environment value is never itself scanned for references."""


class FlowReferenceError(ValueError):
    """A reference cannot be resolved; ``path`` is where it is used, ``name`` what it names."""

    def __init__(self, problem: str, *, name: str, path: str, hint: str | None = None) -> None:
        self.problem = problem
        self.name = name
        self.path = path
        self.hint = hint
        message = f"{problem} (used at {path or '(root)'})"
        super().__init__(f"{message}; {hint}" if hint else message)


def resolve_references(
    value: Any,
    variables: Mapping[str, Any],
    env: Mapping[str, str] | None = None,
    *,
    deferred: bool = False,
    path: str = "",
) -> Any:
    """Return a copy of ``value`` with ``$var``/``$env`` references (and markers) resolved.

    Dicts and lists are walked; keys are kept verbatim. ``env`` defaults to
    ``os.environ``. With ``deferred=True`` ``$env`` becomes a marker and
    markers already present are kept; otherwise markers are resolved too, so
    a bundle loads through the same call. ``path`` is the JSON path of
    ``value`` and prefixes the paths in errors.
    """
    environment: Mapping[str, str] = os.environ if env is None else env

    def on_string(text: str, where: str) -> Any:
        return _resolve_string(text, variables, environment, deferred, where)

    return _walk(value, path, on_string)


def resolve_deferred(value: Any, env: Mapping[str, str] | None = None, path: str = "") -> Any:
    """Return a copy of ``value`` with ``__WALKEROS_ENV`` markers replaced, at run time.

    Only markers are touched (``$env``/``$var`` text stays as is); a marker
    without a default whose variable is not set raises FlowReferenceError.
    """
    environment: Mapping[str, str] = os.environ if env is None else env
    return _walk(value, path, lambda text, where: _resolve_markers(text, environment, where))


def _walk(value: Any, path: str, on_string: Callable[[str, str], Any]) -> Any:
    """Rebuild dicts and lists around resolved strings; other values are returned as is."""
    if isinstance(value, str):
        return on_string(value, path)
    if isinstance(value, Mapping):
        return {key: _walk(item, _join(path, key), on_string) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_walk(item, _join(path, index), on_string) for index, item in enumerate(value)]
    return value


def _join(path: str, key: object) -> str:
    return f"{path}.{key}" if path else str(key)


def _resolve_string(
    text: str, variables: Mapping[str, Any], env: Mapping[str, str], deferred: bool, path: str
) -> Any:
    if "$" not in text and ENV_MARKER_PREFIX not in text:
        return text
    if REF_SECRET.fullmatch(text):
        return text
    whole = REF_VAR_FULL.fullmatch(text)
    if whole:
        found = _lookup(variables, whole.group(1), path)
        if deferred:
            return copy.deepcopy(found)
        # A variable resolved for a bundle may hold markers; none survive a run-time resolve.
        return resolve_deferred(found, env, path)

    def inline_var(match: re.Match[str]) -> str:
        name = match.group(1)
        value = _stringify(_lookup(variables, name, path), name, path)
        if deferred:
            _check_kept_marker(value, text[match.end() :], name, path)
        return value

    result = REF_VAR_INLINE.sub(inline_var, text)

    if deferred:

        def to_marker(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            return f"{ENV_MARKER_PREFIX}{name}" + ("" if default is None else f":{default}")

        return REF_ENV.sub(to_marker, result)

    def from_env(match: re.Match[str]) -> str:
        if match.group(1) is not None:
            return _env_value(env, match.group(1), match.group(2), path, deferred=False)
        return _env_value(env, match.group(3), match.group(4), path, deferred=True)

    return _ENV_OR_MARKER.sub(from_env, result)


def _check_kept_marker(value: str, following: str, name: str, path: str) -> None:
    """Refuse to glue text onto a marker that would then read that text as its own.

    A bundle's variable may end in a marker (``__WALKEROS_ENV:HOST:http://x``);
    in ``$var.host/v1`` the ``/v1`` would join the default and vanish whenever
    HOST is set, so the bundle would not mean what the flow file means.
    """
    if not following or ENV_MARKER_PREFIX not in value:
        return
    markers = list(ENV_MARKER.finditer(value))
    last = markers[-1] if markers else None
    if last is None or last.end() != len(value):
        return
    glued = ENV_MARKER.match(value + following, last.start())
    if glued is not None and glued.group(0) == last.group(0):
        return
    raise FlowReferenceError(
        f'Variable "{name}" ends in an $env reference that cannot be kept in a bundle here: '
        f"the text after it ({following[:20]!r}) would become part of it",
        name=name,
        path=path,
        hint="an $env default runs to the next whitespace, '\"' or '}'; make the variable hold "
        "the whole value, or give its $env no default",
    )


def _resolve_markers(text: str, env: Mapping[str, str], path: str) -> str:
    if ENV_MARKER_PREFIX not in text:
        return text
    return ENV_MARKER.sub(
        lambda match: _env_value(env, match.group(1), match.group(2), path, deferred=True), text
    )


def _env_value(
    env: Mapping[str, str], name: str, default: str | None, path: str, *, deferred: bool
) -> str:
    """The environment's value, else the default (an empty default counts, as upstream)."""
    value = env.get(name)
    if value is not None:
        return value
    if default is not None:
        return default
    hint = (
        f"set {name} in the environment the bundle runs in"
        if deferred
        else f"set it or write $env.{name}:default"
    )
    raise FlowReferenceError(
        f'Environment variable "{name}" not found and no default provided',
        name=name,
        path=path,
        hint=hint,
    )


def _lookup(variables: Mapping[str, Any], dotted: str, path: str) -> Any:
    """Walk ``a.b.c`` into the variables; the error says which step failed."""
    head, *rest = dotted.split(".")
    if head not in variables:
        raise FlowReferenceError(
            f'Variable "{dotted}" not found',
            name=dotted,
            path=path,
            hint=_var_hint(head, variables),
        )
    current = variables[head]
    walked = head
    for step in rest:
        if not isinstance(current, Mapping):
            raise FlowReferenceError(
                f'Variable "{dotted}" not found: "{walked}" is {_kind(current)}, not an object',
                name=dotted,
                path=path,
            )
        if step not in current:
            raise FlowReferenceError(
                f'Variable "{dotted}" not found: "{step}" does not exist in "{walked}"',
                name=dotted,
                path=path,
                hint=_var_hint(step, current, where=walked),
            )
        current = current[step]
        walked = f"{walked}.{step}"
    return current


def _var_hint(name: str, choices: Mapping[str, Any], where: str | None = None) -> str:
    close = did_you_mean(name, [key for key in choices if isinstance(key, str)])
    if close:
        return f'did you mean "{close}"?'
    if where is None:
        return 'define it under "variables" (of the file or of the flow)'
    return f'"{where}" has no key "{name}"'


def _stringify(value: Any, name: str, path: str) -> str:
    """A scalar as JavaScript's ``String()`` writes it (``true``, ``null``, ``8080``)."""
    if value is None or isinstance(value, str | bool | int | float):
        return js_string(value)
    raise FlowReferenceError(
        f'Variable "{name}" is {_kind(value)} and cannot be part of a string',
        name=name,
        path=path,
        hint=f'use "$var.{name}" as the whole value to keep its type, or reference a scalar',
    )


def _kind(value: Any) -> str:
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if value is None:
        return "null"
    return f"a {type(value).__name__}"
