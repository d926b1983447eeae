"""Contracts: the flow file's top-level ``contract`` map, resolved the walkerOS way.

A contract names event schemas (``events.ENTITY.ACTION``) and section
schemas (``schema``). Resolving (walkerOS ``resolveContracts``) makes each
entry self-contained, so ``$contract.NAME.path`` and the validate
transformer read finished rules:

1. ``extend`` chains: the parent's entry is merged in first, additively.
2. Wildcards: each concrete ``entity.action`` gets ``*.*``, ``*.action``,
   ``entity.*`` and its own schema merged in that order (later wins);
   ``*`` entries are kept as written, for reference.
3. Annotations (``description``, ``examples``, ``title``, ``$comment``) are
   removed at schema positions of event schemas; validators ignore them, and
   a property that happens to be called ``title`` is data and stays.

Merging is additive: ``required`` lists are unioned, objects merged deeply,
and the child wins on everything else.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

__all__ = ["ContractError", "merge_schemas", "resolve_contracts"]

ANNOTATION_KEYS: Final = frozenset({"description", "examples", "title", "$comment"})
SCHEMA_KEYWORDS: Final = frozenset(
    {"additionalItems", "additionalProperties", "contains", "contentSchema", "else", "if"}
    | {"items", "not", "propertyNames", "then", "unevaluatedItems", "unevaluatedProperties"}
)
"""Keywords whose value is one sub-schema."""
SCHEMA_ARRAY_KEYWORDS: Final = frozenset({"allOf", "anyOf", "items", "oneOf", "prefixItems"})
"""Keywords whose value is a list of sub-schemas (``enum``/``const`` lists are data: not here)."""
NAME_MAP_KEYWORDS: Final = frozenset(
    {"properties", "patternProperties", "dependentSchemas", "dependentRequired"}
    | {"dependencies", "$defs", "definitions"}
)
"""Keywords whose value maps author-chosen names to sub-schemas (the names are never stripped)."""


class ContractError(ValueError):
    """A contract cannot be resolved; ``path`` is where in the file (``contract.web.extend``)."""

    def __init__(self, problem: str, *, name: str, path: str) -> None:
        self.problem = problem
        self.name = name
        self.path = path
        super().__init__(f"{problem} (at {path})")


def resolve_contracts(contracts: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Every named contract with its extend chain merged, wildcards expanded, annotations gone.

    The input is not changed; the result shares nothing with it.
    """
    resolved: dict[str, dict[str, Any]] = {}
    resolving: list[str] = []

    def resolve(name: str, used_at: str) -> dict[str, Any]:
        if name in resolved:
            return resolved[name]
        if name in resolving:
            chain = " \N{RIGHTWARDS ARROW} ".join([*resolving, name])
            raise ContractError(f"Circular extend chain detected: {chain}", name=name, path=used_at)
        if name not in contracts:
            raise ContractError(f'Contract "{name}" not found', name=name, path=used_at)
        entry = contracts[name]
        where = f"contract.{name}"
        if not isinstance(entry, Mapping):
            raise ContractError("a contract must be an object", name=name, path=where)
        _check_shape(entry, where)
        resolving.append(name)
        parent_name = entry.get("extend")
        if parent_name is not None:
            if not isinstance(parent_name, str):
                raise ContractError(
                    "extend must name a contract", name=name, path=f"{where}.extend"
                )
            result = _merge_entries(resolve(parent_name, f"{where}.extend"), entry)
        else:
            result = _copy(entry)
        result.pop("extend", None)
        if result.get("events") is not None:
            result["events"] = {
                entity: {action: _strip(schema) for action, schema in actions.items()}
                for entity, actions in _expand_wildcards(result["events"]).items()
            }
        resolving.pop()
        resolved[name] = result
        return result

    for name in contracts:
        resolve(name, f"contract.{name}")
    return {name: _copy(resolved[name]) for name in contracts}


def merge_schemas(parent: Mapping[str, Any], child: Mapping[str, Any]) -> dict[str, Any]:
    """Deep additive merge: ``required`` unioned (order kept), objects merged, child wins."""
    result: dict[str, Any] = {key: _copy(value) for key, value in parent.items()}
    for key, child_value in child.items():
        parent_value = parent.get(key)
        if key == "required" and isinstance(parent_value, list) and isinstance(child_value, list):
            union: list[Any] = []
            for item in [*parent_value, *child_value]:
                if item not in union:
                    union.append(_copy(item))
            result[key] = union
        elif isinstance(parent_value, Mapping) and isinstance(child_value, Mapping):
            result[key] = merge_schemas(parent_value, child_value)
        else:
            result[key] = _copy(child_value)
    return result


def _check_shape(entry: Mapping[str, Any], where: str) -> None:
    """``events`` is entity -> action -> schema object; ``schema`` an object."""
    schema = entry.get("schema")
    if schema is not None and not isinstance(schema, Mapping):
        raise ContractError("schema must be an object", name="schema", path=f"{where}.schema")
    events = entry.get("events")
    if events is None:
        return
    if not isinstance(events, Mapping):
        raise ContractError(
            "events must map entities to actions", name="events", path=f"{where}.events"
        )
    for entity, actions in events.items():
        if not isinstance(actions, Mapping):
            raise ContractError(
                "an entity must map actions to schemas",
                name=entity,
                path=f"{where}.events.{entity}",
            )
        for action, event_schema in actions.items():
            if not isinstance(event_schema, Mapping):
                raise ContractError(
                    "an event schema must be an object",
                    name=action,
                    path=f"{where}.events.{entity}.{action}",
                )


def _merge_entries(parent: Mapping[str, Any], child: Mapping[str, Any]) -> dict[str, Any]:
    """walkerOS ``mergeContractEntries``: metadata child-wins, schema and events additive.

    Keys other than tagging, description, schema and events are not inherited
    (nor kept from the child): upstream builds the merged entry from these four.
    """
    result: dict[str, Any] = {}
    for key in ("tagging", "description"):
        if key in parent or key in child:
            value = child.get(key)
            result[key] = _copy(parent.get(key) if value is None else value)
    parent_schema, child_schema = parent.get("schema"), child.get("schema")
    if parent_schema is not None and child_schema is not None:
        result["schema"] = merge_schemas(parent_schema, child_schema)
    elif parent_schema is not None or child_schema is not None:
        result["schema"] = _copy(child_schema if parent_schema is None else parent_schema)
    parent_events: Mapping[str, Any] = parent.get("events") or {}
    child_events: Mapping[str, Any] = child.get("events") or {}
    if parent.get("events") is not None or child.get("events") is not None:
        merged: dict[str, dict[str, Any]] = {}
        for entity in dict.fromkeys([*parent_events, *child_events]):
            ours: Mapping[str, Any] = parent_events.get(entity) or {}
            theirs: Mapping[str, Any] = child_events.get(entity) or {}
            merged[entity] = {}
            for action in dict.fromkeys([*ours, *theirs]):
                mine, other = ours.get(action), theirs.get(action)
                if mine is not None and other is not None:
                    merged[entity][action] = merge_schemas(mine, other)
                else:
                    merged[entity][action] = _copy(other if mine is None else mine)
        result["events"] = merged
    return result


def _expand_wildcards(events: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each concrete entity's actions with ``*.*``, ``*.action``, ``entity.*`` merged in."""
    any_entity = events.get("*") or {}
    result: dict[str, dict[str, Any]] = {}
    for entity, actions in events.items():
        if entity == "*":
            continue
        result[entity] = {}
        for action in actions:
            merged: dict[str, Any] = {}
            levels = [any_entity.get("*")]
            if action != "*":
                levels += [any_entity.get(action), actions.get("*")]
            levels.append(actions.get(action))
            for schema in levels:
                if schema is not None:
                    merged = merge_schemas(merged, schema)
            result[entity][action] = merged
    if events.get("*") is not None:
        result["*"] = {action: _copy(schema) for action, schema in any_entity.items()}
    return result


def _strip(schema: Mapping[str, Any]) -> dict[str, Any]:
    """The schema without annotations at schema positions; everything else byte for byte."""
    result: dict[str, Any] = {}
    for key, value in schema.items():
        if key in ANNOTATION_KEYS:
            continue
        if key in NAME_MAP_KEYWORDS and isinstance(value, Mapping):
            result[key] = {
                name: _strip(item) if isinstance(item, Mapping) else _copy(item)
                for name, item in value.items()
            }
        elif key in SCHEMA_ARRAY_KEYWORDS and isinstance(value, list):
            result[key] = [
                _strip(item) if isinstance(item, Mapping) else _copy(item) for item in value
            ]
        elif key in SCHEMA_KEYWORDS and isinstance(value, Mapping):
            result[key] = _strip(value)
        else:
            result[key] = _copy(value)
    return result


def _copy(value: Any) -> Any:
    """A deep copy of JSON data (dicts and lists rebuilt, scalars shared)."""
    if isinstance(value, Mapping):
        return {key: _copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copy(item) for item in value]
    return value
