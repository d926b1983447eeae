"""``$var``, ``$env`` and ``$secret`` references in flow files, resolved the walkerOS way.

The grammar is walkerOS's (``packages/core/src/references.ts``) so one flow
file means the same thing to both implementations. Per string, in order:

1. A whole-string ``$secret.NAME`` (``NAME`` upper case, digits, ``_``) is
   read from a :class:`~flows.secrets.SecretSource` (the environment, then
   the secrets directory); a missing or empty one is an error naming it,
   never its value. Anything else (``$secret.lower``, text around it) stays.
2. A whole-string ``$var.a.b`` becomes the variable's value with its JSON type.
3. Inline ``$var.a.b`` is replaced by the stringified scalar.
4. Inline ``$env.NAME`` / ``$env.NAME:default`` is replaced by the
   environment's value, else the default; ``$env`` results are always strings.
   The default runs to whitespace, ``"`` or ``}``, so in
   ``http://$env.HOST:localhost:8080`` the default is ``localhost:8080`` and a
   set ``HOST`` replaces the port too.

For bundles (``deferred=True``) step 4 writes the walkerOS marker
``__WALKEROS_ENV:NAME[:default]`` instead and step 1 the marker
``__WALKEROS_SECRET:NAME``, so no environment value or secret ever lands in
a file; :func:`resolve_deferred` (and a non-deferred
:func:`resolve_references`) turns markers into values at run time.

``flows.flowfile.settings`` resolves a whole flow file (``$flow``, ``$contract``,
variables that reference variables) with the per-string parts kept here.
"""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Callable, Mapping
from typing import Any, Final

from collector.js import js_string
from flows.flowfile.errors import did_you_mean
from flows.flowfile.secrets import SecretSource, SecretUnreadableError

__all__ = [
    "ENV_MARKER_PREFIX",
    "SECRET_MARKER_PREFIX",
    "FlowReferenceError",
    "lookup_variable",
    "resolve_deferred",
    "resolve_references",
    "secret_reference",
    "substitute_inline",
]

ENV_MARKER_PREFIX: Final = "__WALKEROS_ENV:"
"""walkerOS's prefix for a deferred ``$env`` reference (``ENV_MARKER_PREFIX`` upstream)."""
SECRET_MARKER_PREFIX: Final = "__WALKEROS_SECRET:"
"""walkerOS's prefix for a deferred ``$secret`` reference (``SECRET_MARKER_PREFIX`` upstream)."""
MARKER_START: Final = "__WALKEROS_"
"""What both markers start with: a string without it or ``$`` has nothing to resolve."""

_NAME: Final = r"[a-zA-Z_][a-zA-Z0-9_]*"
_VAR_PATH: Final = rf"\$var\.({_NAME}(?:\.{_NAME})*)"
_ENV_DEFAULT: Final = r'[^"}\s]'

REF_VAR_FULL: Final = re.compile(_VAR_PATH)
"""Whole-string ``$var.name(.deep.path)``; used with ``fullmatch`` (``$`` would allow a newline)."""
REF_VAR_INLINE: Final = re.compile(_VAR_PATH)
REF_ENV: Final = re.compile(rf"\$env\.({_NAME})(?::({_ENV_DEFAULT}*))?")
REF_SECRET: Final = re.compile(r"\$secret\.([A-Z0-9_]+)")
"""Whole-string ``$secret.NAME``; used with ``fullmatch``."""
SECRET_MARKER: Final = re.compile(rf"{re.escape(SECRET_MARKER_PREFIX)}([A-Z0-9_]+)")
"""A deferred ``$secret``; whole-string only (``fullmatch``), as walkerOS's bundler reads it."""
WEB_SECRET_ERROR: Final = (
    'Secret "$secret.{name}" cannot be used in a web flow '
    "\N{EM DASH} secrets are never sent to the browser. Use a server flow."
)
"""walkerOS's text for a secret where none can be read (its non-deferred, web path)."""
MISSING_SECRET_ERROR: Final = 'WalkerOS: required secret "{name}" is not set'
"""walkerOS's text (its bundles' start-up guard) for a secret that is not set or empty."""

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
    secrets: SecretSource | None = None,
) -> Any:
    """Return a copy of ``value`` with ``$var``/``$env``/``$secret`` references (and markers)
    resolved.

    Dicts and lists are walked; keys are kept verbatim. ``env`` defaults to
    ``os.environ``; ``secrets`` to ``SecretSource.from_environment(env)``.
    With ``deferred=True`` ``$env`` and ``$secret`` become markers and markers
    already present are kept; otherwise markers are resolved too, so a bundle
    loads through the same call. ``path`` is the JSON path of ``value`` and
    prefixes the paths in errors.
    """
    environment: Mapping[str, str] = os.environ if env is None else env
    source = SecretSource.from_environment(environment) if secrets is None else secrets

    def on_string(text: str, where: str) -> Any:
        return _resolve_string(text, variables, environment, deferred, where, source)

    return _walk(value, path, on_string)


def resolve_deferred(
    value: Any,
    env: Mapping[str, str] | None = None,
    path: str = "",
    *,
    secrets: SecretSource | None = None,
) -> Any:
    """Return a copy of ``value`` with ``__WALKEROS_ENV``/``__WALKEROS_SECRET`` markers replaced,
    at run time.

    Only markers are touched (``$env``/``$var`` text stays as is); a marker
    without a default whose variable is not set, or a secret that is not set,
    raises FlowReferenceError. ``secrets`` defaults as in :func:`resolve_references`.
    """
    environment: Mapping[str, str] = os.environ if env is None else env
    source = SecretSource.from_environment(environment) if secrets is None else secrets

    def on_string(text: str, where: str) -> Any:
        secret = SECRET_MARKER.fullmatch(text)
        if secret:
            return secret_reference(secret.group(1), source, deferred=False, path=where)
        return _resolve_markers(text, environment, where)

    return _walk(value, path, on_string)


def secret_reference(name: str, secrets: SecretSource, *, deferred: bool, path: str) -> str:
    """The marker for a bundle, else the secret's value; the error names it, never its value."""
    if deferred:
        return f"{SECRET_MARKER_PREFIX}{name}"
    if not secrets.available:
        raise FlowReferenceError(WEB_SECRET_ERROR.format(name=name), name=name, path=path)
    try:
        value = secrets.get(name)
    except SecretUnreadableError as error:
        raise FlowReferenceError(
            f'Secret "{name}" cannot be read: {error}', name=name, path=path
        ) from None
    if value is None:
        raise FlowReferenceError(
            MISSING_SECRET_ERROR.format(name=name), name=name, path=path, hint=secrets.where(name)
        )
    return value


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
    text: str,
    variables: Mapping[str, Any],
    env: Mapping[str, str],
    deferred: bool,
    path: str,
    secrets: SecretSource,
) -> Any:
    if "$" not in text and MARKER_START not in text:
        return text
    whole = REF_VAR_FULL.fullmatch(text)
    if whole:
        found = lookup_variable(variables, whole.group(1), path)
        if deferred:
            return copy.deepcopy(found)
        # A variable resolved for a bundle may hold markers; none survive a run-time resolve.
        return resolve_deferred(found, env, path, secrets=secrets)
    secret = REF_SECRET.fullmatch(text) or SECRET_MARKER.fullmatch(text)
    if secret:
        if deferred and text.startswith(SECRET_MARKER_PREFIX):
            return text
        return secret_reference(secret.group(1), secrets, deferred=deferred, path=path)
    return substitute_inline(
        text, lambda name: lookup_variable(variables, name, path), env, deferred=deferred, path=path
    )


def substitute_inline(
    text: str,
    lookup: Callable[[str], Any],
    env: Mapping[str, str],
    *,
    deferred: bool,
    path: str,
) -> str:
    """Replace inline ``$var`` (through ``lookup``), then ``$env`` and ``$env`` markers.

    ``$var`` goes first, so ``$env.A:$var.d`` takes the variable as its
    default, as upstream. For a bundle, a variable holding a kept marker is
    checked not to swallow the text after it, and a secret must stay whole.
    """

    def inline_var(match: re.Match[str]) -> str:
        name = match.group(1)
        value = _stringify(lookup(name), name, path)
        if deferred:
            _check_whole_secret(value, name, path)
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


def _check_whole_secret(value: str, name: str, path: str) -> None:
    """A secret marker is read only as a whole string; glued into text it would stay literal."""
    if SECRET_MARKER_PREFIX in value:
        raise FlowReferenceError(
            f'Variable "{name}" holds a $secret, which cannot be part of a string in a bundle',
            name=name,
            path=path,
            hint=f'use "$var.{name}" as the whole value: a secret is kept out of a bundle '
            "only as a whole value",
        )


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


def lookup_variable(variables: Mapping[str, Any], dotted: str, path: str) -> Any:
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
