"""walkerOS routes: a chain's ``next``/``before`` that depends on the request.

A route is a step id, a list, or a route object: ``{"match": M, "next": R}``
(a gate: R when M holds, else nothing), ``{"one": [...]}`` (the first route
whose ``match`` holds), ``{"many": [...]}`` (every route whose ``match``
holds: a fan-out), or a bare ``{"match": M}``. A list of route objects is a
``one``; a list of ids is an explicit chain; a mixed list is a sequence whose
parts are resolved one by one. As in walkerOS (``packages/core/src/route.ts``)
matches look at ``{"ingest": ...}``: the request the event came with.

Compiled once at load into a tree of small functions; ``select`` returns the
ids to go on with: none (the chain ends), one (the chain goes on there), or
several from a ``many`` (each starts a branch of its own).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from collector.errors import ConfigError
from collector.matcher import always, compile_matcher

Select = Callable[[Mapping[str, Any]], list[str]]


class RouteConfigError(ConfigError):
    """A route cannot be compiled; ``path`` says where (``sources.http.next.0.match``)."""


@dataclass(frozen=True, slots=True)
class Route:
    """A compiled route: ``select(context)`` gives the ids to go on with."""

    select: Select
    static: tuple[str, ...] | None
    """The ids when the route does not depend on the request (a string or a list of ids)."""
    explicit: bool
    """A list of ids: used as it is, without following each step's ``next``."""
    fans_out: bool
    """It holds a ``many``: one event may go down several branches."""


def is_static(spec: Any) -> bool:
    """A step id or a list of step ids: resolved once, at load."""
    return isinstance(spec, str) or (
        isinstance(spec, list) and all(isinstance(item, str) for item in spec)
    )


def compile_route(spec: Any, path: str) -> Route:
    """Compile a walkerOS Route; errors name ``path``."""
    if isinstance(spec, str):
        ids = (spec,)
        return Route(lambda _context: list(ids), ids, False, False)
    if isinstance(spec, list) and all(isinstance(item, str) for item in spec):
        ids = tuple(spec)
        return Route(lambda _context: list(ids), ids, True, False)
    select, fans_out = _compile(spec, path)
    return Route(select, None, False, fans_out)


def _compile(spec: Any, path: str) -> tuple[Select, bool]:
    if isinstance(spec, str):
        return (lambda _context: [spec]), False
    if isinstance(spec, list):
        if not spec:
            return (lambda _context: []), False
        if all(isinstance(item, Mapping) for item in spec):
            return _one(spec, path)
        parts = [_compile(item, f"{path}.{index}") for index, item in enumerate(spec)]
        selects = [select for select, _ in parts]

        def sequence(context: Mapping[str, Any]) -> list[str]:
            return [found for select in selects for found in select(context)]

        return sequence, any(fans for _, fans in parts)
    if not isinstance(spec, Mapping):
        raise RouteConfigError(path, "a route is a step id, a list, or an object")
    unknown = sorted(set(spec) - {"match", "next", "one", "many"})
    if unknown:
        raise RouteConfigError(
            f"{path}.{unknown[0]}", "unknown route key; a route has match, next, one or many"
        )
    operators = [key for key in ("next", "one", "many") if key in spec]
    if len(operators) > 1:
        raise RouteConfigError(path, f"a route has one of next, one, many, not {operators}")
    matches = compile_matcher(spec.get("match"), f"{path}.match")
    if not operators:
        if "match" not in spec:
            raise RouteConfigError(path, "an empty route; give match, next, one or many")
        return (lambda _context: []), False  # a bare gate: the chain ends here either way
    operator = operators[0]
    if operator == "next":
        inner, fans = _compile(spec["next"], f"{path}.next")
    elif operator == "one":
        inner, fans = _one(_list(spec["one"], f"{path}.one"), f"{path}.one")
    else:
        inner, fans = _many(_list(spec["many"], f"{path}.many"), f"{path}.many")
    if matches is always:
        return inner, fans

    def gate(context: Mapping[str, Any]) -> list[str]:
        return inner(context) if matches(context) else []

    return gate, fans


def _list(value: Any, path: str) -> list[Any]:
    if not isinstance(value, list):
        raise RouteConfigError(path, "must be a list of routes")
    return value


def _branches(routes: list[Any], path: str) -> list[tuple[Callable[[Any], bool], Select, bool]]:
    compiled = []
    for index, route in enumerate(routes):
        where = f"{path}.{index}"
        if isinstance(route, Mapping):
            matches = compile_matcher(route.get("match"), f"{where}.match")
            body = {key: value for key, value in route.items() if key != "match"}
            if body:
                inner, fans = _compile(body, where)
            else:
                inner, fans = (lambda _context: []), False
        else:
            matches = always
            inner, fans = _compile(route, where)
        compiled.append((matches, inner, fans))
    return compiled


def _one(routes: list[Any], path: str) -> tuple[Select, bool]:
    branches = _branches(routes, path)

    def first_match(context: Mapping[str, Any]) -> list[str]:
        for matches, inner, _fans in branches:
            if matches(context):
                return inner(context)
        return []

    return first_match, any(fans for _, _, fans in branches)


def _many(routes: list[Any], path: str) -> tuple[Select, bool]:
    branches = _branches(routes, path)

    def every_match(context: Mapping[str, Any]) -> list[str]:
        return [
            found for matches, inner, _ in branches if matches(context) for found in inner(context)
        ]

    return every_match, True
