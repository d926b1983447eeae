"""Key paths into events, compiled once.

walkerOS addresses values with dot paths (``data.id``, ``context.dev.0``,
``nested.*.data.name``); a key that starts with ``$`` is a JSONPath expression.
Both are parsed here, at config load, into plain functions: per event only
dictionary and list lookups run.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Final

from jsonpath_ng.exceptions import JsonPathLexerError, JsonPathParserError
from jsonpath_ng.ext.parser import parse as parse_jsonpath


class _Undefined:
    """The JavaScript ``undefined`` of walkerOS: "no value", distinct from JSON null."""

    __slots__ = ()
    _instance: _Undefined | None = None

    def __new__(cls) -> _Undefined:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNDEFINED"

    def __bool__(self) -> bool:
        return False

    def __reduce__(self) -> str:
        return "UNDEFINED"


UNDEFINED: Final = _Undefined()

Getter = Callable[[Any], Any]
"""Reads one path from a value; returns UNDEFINED when the path resolves to nothing."""


class PathError(ValueError):
    """A key path in a config cannot be compiled."""


def compile_path(key: str, default: Any = UNDEFINED) -> Getter:
    """Compile ``key`` into a getter that returns ``default`` when nothing is found."""
    if not isinstance(key, str):
        raise PathError(f"a key path must be a string, got {type(key).__name__}")
    if key.startswith("$"):
        return _compile_jsonpath(key, default)
    return _compile_dot_path(key.split("."), default)


ValueReader = Callable[[Any, Any], Any]
"""``(value, context)``: a mapping resolver that reads a key path and ignores its context."""


def compile_value_reader(key: str, default: Any = UNDEFINED) -> ValueReader:
    """A key path as a mapping value reads it: ``default`` when missing, UNDEFINED for null.

    The resolver itself, not a wrapper around a getter: a plain path of one or
    two keys (``data.id``, most of a mapping) is two dictionary lookups and no
    further call.
    """
    getter = compile_path(key, default)
    keys = key.split(".")
    plain = not key.startswith("$") and all(k and k != "*" and not k.isdigit() for k in keys)
    if plain and len(keys) == 1:
        (only,) = keys

        def read_one(value: Any, _context: Any = None) -> Any:
            found = value.get(only, default) if type(value) is dict else getter(value)
            return UNDEFINED if found is None else found

        return read_one
    if plain and len(keys) == 2:
        first, second = keys

        def read_two(value: Any, _context: Any = None) -> Any:
            if type(value) is dict:
                inner = value.get(first)
                if type(inner) is dict:
                    found = inner.get(second, default)
                    return UNDEFINED if found is None else found
            found = getter(value)
            return UNDEFINED if found is None else found

        return read_two

    def read(value: Any, _context: Any = None) -> Any:
        found = getter(value)
        return UNDEFINED if found is None else found

    return read


def _compile_dot_path(keys: list[str], default: Any) -> Getter:
    if "*" in keys:
        star = keys.index("*")
        head = _compile_dot_path(keys[:star], UNDEFINED) if star else None
        rest = _compile_dot_path(keys[star + 1 :], default) if star + 1 < len(keys) else None

        def get_each(value: Any) -> Any:
            items = head(value) if head is not None else value
            if not isinstance(items, list | tuple):
                # walkerOS only fans out over arrays; elsewhere "*" is a plain key.
                return _lookup_steps(items, ("*",), default)
            # A missing slot is JSON null, as JavaScript's undefined in an array.
            if rest is None:
                return [None if item is UNDEFINED else item for item in items]
            return [None if (found := rest(item)) is UNDEFINED else found for item in items]

        return get_each

    steps = tuple(_step(k) for k in keys)
    if len(steps) == 1:
        (only,) = steps
        if isinstance(only, str):

            def get_one(value: Any) -> Any:
                if type(value) is dict:
                    found = value.get(only, UNDEFINED)
                    return default if found is UNDEFINED else found
                return _lookup_steps(value, steps, default)

            return get_one
    if len(steps) == 2 and all(isinstance(s, str) for s in steps):
        first, second = steps

        def get_two(value: Any) -> Any:
            if type(value) is dict:
                inner = value.get(first)
                if type(inner) is dict:
                    found = inner.get(second, UNDEFINED)
                    return default if found is UNDEFINED else found
            return _lookup_steps(value, steps, default)

        return get_two

    return lambda value: _lookup_steps(value, steps, default)


def _step(key: str) -> str | tuple[str, int]:
    """A path segment; numeric ones also index lists (``nested.0``)."""
    if key.isdigit():
        return (key, int(key))
    return key


def _lookup_steps(value: Any, steps: tuple[str | tuple[str, int], ...], default: Any) -> Any:
    current = value
    for step in steps:
        if isinstance(step, tuple):
            text, index = step
            if isinstance(current, list | tuple):  # context pairs are tuples once validated
                current = current[index] if index < len(current) else UNDEFINED
            elif isinstance(current, dict):
                current = current.get(text, UNDEFINED)
            else:
                return default
        elif isinstance(current, dict):
            current = current.get(step, UNDEFINED)
        else:
            return default
        if current is UNDEFINED:
            return default
    return current


_SIMPLE_FILTER: Final = re.compile(
    r"^\$\.(?P<path>[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)"
    r"\[\?\s*(?P<paren>\()?\s*(?:@\.)?(?P<field>[A-Za-z_]\w*)\s*==?\s*"
    r"'(?P<literal>[^'\\]*)'\s*(?(paren)\))\s*\]$"
)
"""``$.nested[?entity = 'product']``: the list filter shop mappings use, run as plain code."""


def _compile_jsonpath(expression: str, default: Any) -> Getter:
    try:
        compiled = parse_jsonpath(expression)
    except (JsonPathLexerError, JsonPathParserError, Exception) as error:
        raise PathError(f"invalid JSONPath {expression!r}: {error}") from None
    # A path that can only ever match one node yields a value, others a list.
    single = not any(token in expression for token in ("*", "..", "[?", ":", ","))

    def get_jsonpath(value: Any) -> Any:
        matches = [match.value for match in compiled.find(value)]
        if not matches:
            return default
        if single:
            return matches[0]
        return matches

    simple = _SIMPLE_FILTER.match(expression)
    if simple is None:
        return get_jsonpath
    return _fast_filter(
        tuple(simple["path"].split(".")), simple["field"], simple["literal"], default, get_jsonpath
    )


def _fast_filter(
    keys: tuple[str, ...], field: str, literal: str, default: Any, general: Getter
) -> Getter:
    """The items of the list at ``keys`` whose ``field`` is the string ``literal``.

    Only the plain case (objects down to a list) runs here; any other shape is
    left to jsonpath_ng, so the results are jsonpath_ng's in every case.
    """

    def get_filtered(value: Any) -> Any:
        current = value
        for key in keys:
            if type(current) is not dict or key not in current:
                return general(value)
            current = current[key]
        if type(current) is not list:
            return general(value)
        matches = [
            item
            for item in current
            if type(item) is dict and type(item.get(field)) is str and item[field] == literal
        ]
        return matches or default

    return get_filtered


Setter = Callable[[dict[str, Any], Any], dict[str, Any]]
"""Returns a copy of a dict with a value at a dot path (UNDEFINED removes it)."""
Deleter = Callable[[dict[str, Any]], dict[str, Any]]
"""Returns a copy of a dict without a dot path."""


def compile_setter(key: str) -> Setter:
    """A dot path to write, split once: per event only the copies along the path.

    Only the dictionaries along the path are copied, so the caller's event
    stays untouched and the cost is proportional to the path, not the event.
    """
    *parents, last = key.split(".")
    path = tuple(parents)

    def set_value(target: dict[str, Any], value: Any) -> dict[str, Any]:
        root = dict(target)
        current = root
        for part in path:
            child = current.get(part)
            child = dict(child) if isinstance(child, dict) else {}
            current[part] = child
            current = child
        if value is UNDEFINED:
            current.pop(last, None)
        else:
            current[last] = value
        return root

    return set_value


def compile_deleter(key: str) -> Deleter:
    """A dot path to remove, split once (copy on write, as ``compile_setter``)."""
    *parents, last = key.split(".")
    path = tuple(parents)

    def delete(target: dict[str, Any]) -> dict[str, Any]:
        root = dict(target)
        current = root
        for part in path:
            child = current.get(part)
            if not isinstance(child, dict):
                return root
            child = dict(child)
            current[part] = child
            current = child
        current.pop(last, None)
        return root

    return delete
