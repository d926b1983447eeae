"""A validate ``contract``, compiled once: the JSON Schemas that apply to each event.

walkerOS's ``settings.contract`` is a list; each entry is either a contract
rule (``events`` keyed entity -> action -> JSON Schema, and/or a whole-event
``schema``) or an inline whole-event JSON Schema. Every schema is compiled
here, at load; per event the lookup is a few dictionary reads (cached per
entity and action) and each applicable schema is one ``is_valid`` call, with
the error list built only for a schema the event fails.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any, Final, TypeAlias

import jsonschema_rs

from collector.errors import ConfigError

Issue: TypeAlias = dict[str, str]
"""One validation error as walkerOS writes it: ``{path, message, level}``."""

WILDCARD: Final = "*"
MAX_CACHED_LOOKUPS: Final = 4096
"""Entity/action pairs remembered; the names come from clients, so the cache is bounded."""
FORMAT_SCHEMA_FILE: Final = "event_format.schema.json"


class ContractError(ConfigError):
    """A contract cannot be compiled; ``path`` says where (``contract.0.events.page.view``)."""


def compile_schema(schema: Any, path: str) -> jsonschema_rs.Validator:
    """One JSON Schema (draft 2020-12, as walkerOS pins it) compiled; never fetches a ``$ref``."""
    if not isinstance(schema, dict):
        raise ContractError(path, f"must be a JSON Schema object, got {_kind(schema)}")
    try:
        return jsonschema_rs.Draft202012Validator(schema, validate_formats=True, offline=True)
    except jsonschema_rs.ValidationError as error:
        where = ".".join([path, *(str(part) for part in error.instance_path)])
        raise ContractError(where, f"not a valid JSON Schema: {error.message}") from None
    except jsonschema_rs.ReferencingError as error:
        raise ContractError(path, f"a $ref cannot be resolved: {error}") from None


def format_validator() -> jsonschema_rs.Validator:
    """The walkerOS partial-event shape (``format: true``), from the package's data file."""
    text = resources.files(__package__).joinpath(FORMAT_SCHEMA_FILE).read_text(encoding="utf-8")
    return compile_schema(json.loads(text), "format")


def is_rule(entry: Mapping[str, Any]) -> bool:
    """walkerOS's test: a rule has an ``events`` object or a ``schema`` key, else it is a schema."""
    return isinstance(entry.get("events"), dict) or "schema" in entry


@dataclass(frozen=True, slots=True)
class _Rule:
    """One contract rule: its entity -> action -> validator table and its whole-event schema."""

    events: dict[str, dict[str, jsonschema_rs.Validator]]
    schema: jsonschema_rs.Validator | None

    def select(self, entity: str, action: str) -> tuple[jsonschema_rs.Validator, ...]:
        """The first of entity.action, entity.*, *.action, *.*, then the rule's own schema."""
        found: tuple[jsonschema_rs.Validator, ...] = ()
        for actions in (self.events.get(entity), self.events.get(WILDCARD)):
            chosen = actions and (actions.get(action) or actions.get(WILDCARD))
            if chosen:
                found = (chosen,)
                break
        return found if self.schema is None else (*found, self.schema)


Entry: TypeAlias = "_Rule | jsonschema_rs.Validator"


def _compile_rule(entry: Mapping[str, Any], path: str) -> _Rule:
    events = entry.get("events")
    table: dict[str, dict[str, jsonschema_rs.Validator]] = {}
    if isinstance(events, dict):
        for entity, actions in events.items():
            where = f"{path}.events.{entity}"
            if not isinstance(actions, dict):
                raise ContractError(
                    where, f"must map each action to a JSON Schema, got {_kind(actions)}"
                )
            table[entity] = {
                action: compile_schema(schema, f"{where}.{action}")
                for action, schema in actions.items()
            }
    schema = entry.get("schema")
    whole = None if schema is None else compile_schema(schema, f"{path}.schema")
    return _Rule(table, whole)


class CompiledContract:
    """Every schema of a contract (and the format schema) compiled; ``check`` runs them."""

    def __init__(self, contract: Sequence[Mapping[str, Any]], *, format_check: bool) -> None:
        entries: list[Entry] = []
        if format_check:
            entries.append(format_validator())
        for index, entry in enumerate(contract):
            path = f"contract.{index}"
            entries.append(
                _compile_rule(entry, path) if is_rule(entry) else compile_schema(entry, path)
            )
        self._entries = tuple(entries)
        schemas = tuple(e for e in entries if not isinstance(e, _Rule))
        self._without_rules = schemas if len(schemas) == len(entries) else None
        self._lookups: dict[tuple[str, str], tuple[jsonschema_rs.Validator, ...]] = {}

    def schemas_for(self, entity: str, action: str) -> tuple[jsonschema_rs.Validator, ...]:
        """The validators that apply to an event of this entity and action, in contract order."""
        if self._without_rules is not None:
            return self._without_rules
        key = (entity, action)
        found = self._lookups.get(key)
        if found is None:
            found = tuple(
                validator
                for entry in self._entries
                for validator in (
                    entry.select(entity, action) if isinstance(entry, _Rule) else (entry,)
                )
            )
            if len(self._lookups) < MAX_CACHED_LOOKUPS:
                self._lookups[key] = found
        return found

    def check(self, event: Mapping[str, Any]) -> list[Issue]:
        """Every error of every applicable schema (AND); an empty list means valid."""
        entity = event.get("entity")
        action = event.get("action")
        validators = self.schemas_for(
            entity if type(entity) is str else "", action if type(action) is str else ""
        )
        issues: list[Issue] = []
        for validator in validators:
            if not validator.is_valid(event):
                issues.extend(
                    {
                        "path": _pointer(error.instance_path),
                        "message": error.message,
                        "level": "error",
                    }
                    for error in validator.iter_errors(event)
                )
        return issues


def _pointer(path: Sequence[str | int]) -> str:
    """An instance location as walkerOS writes it: ``#``, ``#/data``, ``#/nested/0/data``."""
    if not path:
        return "#"
    return "#/" + "/".join(str(part).replace("~", "~0").replace("/", "~1") for part in path)


def _kind(value: Any) -> str:
    """A value's JSON type name, for error messages (the value itself may be long)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return type(value).__name__
