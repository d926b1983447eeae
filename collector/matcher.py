"""walkerOS match expressions, compiled once into plain predicates.

A match expression is a condition ``{"key": "ingest.method", "operator": "eq",
"value": "GET"}`` (``"not": true`` negates it), or ``{"and": [...]}`` /
``{"or": [...]}`` of expressions; omitted (or ``"*"``) it matches everything.
Caches use them to pick a rule, routes to pick a branch.

Compiling parses the key path, the regex and the number once; the predicate
then only looks values up and compares. Comparisons follow walkerOS: text
operators compare JavaScript's ``String(value ?? '')``, ``gt``/``lt``
compare ``Number(value)``, ``exists`` is "neither missing nor null". A regex
is Python's ``re`` (searched, as JavaScript's ``test``); the few JavaScript-only
forms (``(?<name>``) are refused at load rather than silently not matching.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any, Final

from collector.errors import ConfigError, suggestion
from collector.js import js_text, js_to_number
from collector.paths import UNDEFINED, Getter, PathError, compile_path
from collector.values import kind_name

Predicate = Callable[[Any], bool]
"""``(value) -> bool``: whether a compiled expression holds for ``value``."""

OPERATORS: Final = ("eq", "contains", "prefix", "suffix", "regex", "gt", "lt", "exists")
_CONDITION_KEYS: Final = frozenset({"key", "operator", "value", "not"})


class MatcherConfigError(ConfigError):
    """A match expression cannot be compiled; ``path`` says where (``cache.rules.0.match``)."""


def always(_value: Any) -> bool:
    """The predicate of an omitted expression."""
    return True


def compile_matcher(expression: Any, path: str = "match") -> Predicate:
    """Compile a walkerOS MatcherExpression (or None / ``"*"``: match all) into a predicate."""
    if expression is None or expression == "*":
        return always
    if not isinstance(expression, Mapping):
        raise MatcherConfigError(
            path, f"a match expression must be an object, got {kind_name(expression)}"
        )
    if "and" in expression or "or" in expression:
        return _compile_group(expression, path)
    return _compile_condition(expression, path)


def _compile_group(expression: Mapping[str, Any], path: str) -> Predicate:
    if len(expression) != 1:
        extra = sorted(str(k) for k in expression if k not in ("and", "or"))
        if extra:
            raise MatcherConfigError(f"{path}.{extra[0]}", "unknown key beside 'and'/'or'")
        raise MatcherConfigError(path, "use either 'and' or 'or', not both")
    ((combinator, items),) = expression.items()
    where = f"{path}.{combinator}"
    if not isinstance(items, list):
        raise MatcherConfigError(where, f"must be a list of expressions, got {kind_name(items)}")
    parts = tuple(compile_matcher(item, f"{where}.{i}") for i, item in enumerate(items))
    if len(parts) == 1:
        return parts[0]
    if combinator == "and":
        return lambda value: all(part(value) for part in parts)
    return lambda value: any(part(value) for part in parts)


def _compile_condition(condition: Mapping[str, Any], path: str) -> Predicate:
    for name in condition:
        if name not in _CONDITION_KEYS:
            raise MatcherConfigError(
                f"{path}.{name}",
                f"unknown key{suggestion(str(name), _CONDITION_KEYS | {'and', 'or'})}",
            )
    for name in ("key", "operator", "value"):
        if name not in condition:
            raise MatcherConfigError(path, f"a condition needs {name!r}")
        if not isinstance(condition[name], str):
            raise MatcherConfigError(
                f"{path}.{name}", f"must be a string, got {kind_name(condition[name])}"
            )
    key, operator, expected = condition["key"], condition["operator"], condition["value"]
    negate = condition.get("not", False)
    if not isinstance(negate, bool):
        raise MatcherConfigError(f"{path}.not", f"must be a boolean, got {kind_name(negate)}")
    if not key:
        raise MatcherConfigError(f"{path}.key", "must not be empty")
    try:
        getter = compile_path(key)
    except PathError as error:
        raise MatcherConfigError(f"{path}.key", str(error)) from None
    if operator not in OPERATORS:
        raise MatcherConfigError(
            f"{path}.operator",
            f"unknown operator {operator!r}{suggestion(operator, OPERATORS)}"
            f" (one of {', '.join(OPERATORS)})",
        )
    test = _compile_operator(operator, expected, f"{path}.value")
    return _condition(getter, test, negate)


def _condition(getter: Getter, test: Predicate, negate: bool) -> Predicate:
    if negate:
        return lambda value: not test(getter(value))
    return lambda value: test(getter(value))


def _compile_operator(operator: str, expected: str, path: str) -> Predicate:
    """The test of one operator against the looked-up value, with ``expected`` parsed once."""
    if operator == "eq":
        return lambda found: js_text(found) == expected
    if operator == "contains":
        return lambda found: expected in js_text(found)
    if operator == "prefix":
        return lambda found: js_text(found).startswith(expected)
    if operator == "suffix":
        return lambda found: js_text(found).endswith(expected)
    if operator == "regex":
        try:
            pattern = re.compile(expected)
        except re.error as error:
            raise MatcherConfigError(path, f"invalid regex {expected!r}: {error}") from None
        search = pattern.search
        return lambda found: search(js_text(found)) is not None
    if operator in ("gt", "lt"):
        number = js_to_number(expected)
        if math.isnan(number):
            raise MatcherConfigError(
                path, f"{operator!r} compares numbers; {expected!r} is not one"
            )
        if operator == "gt":
            return lambda found: js_to_number(found) > number
        return lambda found: js_to_number(found) < number
    # exists: the value is neither missing nor JSON null; ``value`` is not used.
    return lambda found: found is not UNDEFINED and found is not None
