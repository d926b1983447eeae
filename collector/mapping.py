"""The walkerOS mapping rules, compiled once: which rule an event matches, and what it maps to.

``compile_mapping`` compiles a destination's rules (``mapping[entity][action]``
with ``*`` wildcards and conditional rule lists), ``data``, ``policy`` and
``include``; value configs are compiled by ``collector.values``. Per event
only the compiled functions run.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from collector.errors import suggestion
from collector.paths import UNDEFINED, Deleter, Setter, compile_deleter, compile_setter
from collector.values import (
    MappingConfigError,
    MappingContext,
    Resolver,
    compile_value,
    import_reference,
    kind_name,
    safe_call,
)

__all__ = [
    "CompiledMapping",
    "CompiledRule",
    "MappingConfigError",
    "MappingContext",
    "MappingResult",
    "Resolver",
    "RuleTable",
    "compile_mapping",
    "compile_rules",
    "compile_value",
    "get_mapping_value",
]

logger = logging.getLogger("collector.mapping")


# --- Rules --------------------------------------------------------------------------------------


@dataclass(slots=True)
class CompiledRule:
    """One mapping rule after compilation; ``settings`` is what the destination made of it."""

    key: str
    name: str | None = None
    data: Resolver | None = None
    ignore: bool = False
    silent: bool = False
    consent: dict[str, bool] | None = None
    settings: Any = None
    raw_settings: dict[str, Any] | None = None
    policy: tuple[tuple[Setter, Resolver], ...] = ()
    include: tuple[str, ...] | None = None
    remove: tuple[Deleter, ...] = ()
    batch: int | None = None
    condition: Callable[..., Any] | None = None


SettingsCompiler = Callable[[dict[str, Any], str], Any]
"""Compiles a destination's rule ``settings`` at load (``path`` names where they are)."""

_RULE_KEYS = frozenset(
    {
        "name",
        "data",
        "ignore",
        "silent",
        "consent",
        "settings",
        "policy",
        "include",
        "remove",
        "batch",
        "condition",
    }
)


def compile_rule(
    rule: Any, key: str, path: str, compile_settings: SettingsCompiler | None = None
) -> CompiledRule:
    """Compile one rule; ``key`` is its ``"entity action"`` lookup key."""
    if not isinstance(rule, dict):
        raise MappingConfigError(path, f"a rule must be an object, got {kind_name(rule)}")
    unknown = set(rule) - _RULE_KEYS
    if unknown:
        name = sorted(unknown)[0]
        raise MappingConfigError(
            f"{path}.{name}", f"unknown rule key {name!r}{suggestion(name, _RULE_KEYS)}"
        )
    settings = rule.get("settings")
    if settings is not None and not isinstance(settings, dict):
        raise MappingConfigError(f"{path}.settings", "must be an object")
    return CompiledRule(
        key=key,
        name=_optional_str(rule.get("name"), f"{path}.name"),
        data=compile_value(rule["data"], f"{path}.data") if rule.get("data") is not None else None,
        ignore=bool(rule.get("ignore", False)),
        silent=bool(rule.get("silent", False)),
        consent=rule.get("consent"),
        settings=(
            compile_settings(settings, f"{path}.settings")
            if compile_settings is not None and settings is not None
            else settings
        ),
        raw_settings=settings,
        policy=compile_policy(rule.get("policy"), f"{path}.policy"),
        include=_optional_list(rule.get("include"), f"{path}.include"),
        remove=tuple(
            compile_deleter(key)
            for key in _optional_list(rule.get("remove"), f"{path}.remove") or ()
        ),
        batch=rule.get("batch"),
        condition=import_reference(rule.get("condition"), f"{path}.condition"),
    )


def compile_policy(policy: Any, path: str) -> tuple[tuple[Setter, Resolver], ...]:
    """A policy rewrites event fields: ``{"data.flag": {"value": true}}``."""
    if policy is None:
        return ()
    if not isinstance(policy, dict):
        raise MappingConfigError(path, "must be an object of dot path -> value config")
    return tuple(
        (compile_setter(target), compile_value(cfg, f"{path}.{target}"))
        for target, cfg in policy.items()
    )


def _optional_str(value: Any, path: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise MappingConfigError(path, f"must be a string, got {kind_name(value)}")


def _optional_list(value: Any, path: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise MappingConfigError(path, "must be a list of strings")
    return tuple(value)


class RuleTable:
    """Rules by entity and action, found with walkerOS's wildcard fallbacks."""

    __slots__ = ("_rules",)

    def __init__(self, rules: dict[str, dict[str, tuple[CompiledRule, ...]]]) -> None:
        self._rules = rules

    def __bool__(self) -> bool:
        return bool(self._rules)

    def find(self, event: Mapping[str, Any], context: MappingContext) -> CompiledRule | None:
        """The first rule that holds: exact entity/action, then wildcards, then ``* *``."""
        rules = self._rules
        if not rules:
            return None
        entity, _, action = str(event.get("name") or "").partition(" ")
        if not entity or not action:
            return None
        entity_rules = rules.get(entity)
        if entity_rules is None:
            entity, entity_rules = "*", rules.get("*")
        tried_star_star = False
        if entity_rules is not None:
            candidates = entity_rules.get(action)
            if candidates is None:
                action, candidates = "*", entity_rules.get("*")
            tried_star_star = entity == "*" and action == "*"
            found = _first_holding(candidates, event, context)
            if found is not None:
                return found
        if not tried_star_star:
            star = rules.get("*")
            if star is not None:
                return _first_holding(star.get("*"), event, context)
        return None


def _first_holding(
    candidates: tuple[CompiledRule, ...] | None, event: Mapping[str, Any], context: MappingContext
) -> CompiledRule | None:
    if not candidates:
        return None
    for rule in candidates:
        if rule.condition is None or safe_call(rule.condition, event, context, rule.key):
            return rule
    return None


def compile_rules(
    mapping: Any, path: str = "mapping", compile_settings: SettingsCompiler | None = None
) -> RuleTable:
    """Compile ``mapping[entity][action]`` (a rule or a list of rules) into a RuleTable."""
    if mapping is None:
        return RuleTable({})
    if not isinstance(mapping, dict):
        raise MappingConfigError(path, "must be an object: {entity: {action: rule}}")
    table: dict[str, dict[str, tuple[CompiledRule, ...]]] = {}
    for entity, actions in mapping.items():
        if not isinstance(actions, dict):
            raise MappingConfigError(f"{path}.{entity}", "must be an object: {action: rule}")
        table[entity] = {}
        for action, rule in actions.items():
            where = f"{path}.{entity}.{action}"
            key = f"{entity} {action}"
            if isinstance(rule, list):
                compiled = tuple(
                    compile_rule(r, key, f"{where}.{i}", compile_settings)
                    for i, r in enumerate(rule)
                )
            else:
                compiled = (compile_rule(rule, key, where, compile_settings),)
            table[entity][action] = compiled
    return RuleTable(table)


# --- Processing one event -----------------------------------------------------------------------


_INCLUDE_SECTIONS = ("data", "globals", "context", "user", "source", "version", "event")
_EVENT_FIELDS = (
    "entity",
    "action",
    "id",
    "timestamp",
    "name",
    "trigger",
    "group",
    "count",
    "timing",
)


@dataclass(slots=True)
class MappingResult:
    """What a destination gets for one event: the (maybe rewritten) event, rule and data."""

    event: Mapping[str, Any]
    data: Any = UNDEFINED
    rule: CompiledRule | None = None
    ignore: bool = False
    silent: bool = False

    @property
    def mapping_key(self) -> str:
        return self.rule.key if self.rule is not None else ""


@dataclass(slots=True)
class CompiledMapping:
    """A destination's whole mapping config, compiled: rules, data, policy, include."""

    rules: RuleTable = field(default_factory=lambda: RuleTable({}))
    data: Resolver | None = None
    policy: tuple[tuple[Setter, Resolver], ...] = ()
    include: tuple[str, ...] | None = None

    def process(
        self, event: Mapping[str, Any], consent: Mapping[str, bool] | None = None
    ) -> MappingResult:
        """walkerOS processEventMapping: policy, rule lookup, rule policy, data, name, include."""
        context = MappingContext(event, consent if consent is not None else event.get("consent"))
        if self.policy:
            event = _apply_policy(event, self.policy, context)
            context.event = event
        rule = self.rules.find(event, context) if self.rules else None
        if rule is not None and rule.policy:
            event = _apply_policy(event, rule.policy, context)
            context.event = event
        data = self.data(event, context) if self.data is not None else UNDEFINED
        if rule is not None:
            if rule.ignore:
                return MappingResult(event, data, rule, ignore=True, silent=rule.silent)
            if rule.name:
                event = {**event, "name": rule.name}
                context.event = event
            if rule.data is not None:
                rule_data = rule.data(event, context)
                data = (
                    _assign(data, rule_data)
                    if type(data) is dict and type(rule_data) is dict
                    else rule_data
                )
        include = rule.include if rule is not None and rule.include is not None else self.include
        if include:
            included = flatten_include(event, include)
            if included:
                data = (
                    _assign(included, data)
                    if type(data) is dict
                    else (included if data is UNDEFINED else data)
                )
        if rule is not None and rule.remove and type(data) is dict:
            for remove in rule.remove:
                data = remove(data)
        return MappingResult(event, data, rule, ignore=False, silent=rule.silent if rule else False)


def compile_mapping(
    config: Mapping[str, Any], path: str = "", compile_settings: SettingsCompiler | None = None
) -> CompiledMapping:
    """Compile a destination config's ``mapping``, ``data``, ``policy`` and ``include``."""
    prefix = f"{path}." if path else ""
    data = config.get("data")
    return CompiledMapping(
        rules=compile_rules(config.get("mapping"), f"{prefix}mapping", compile_settings),
        data=compile_value(data, f"{prefix}data") if data is not None else None,
        policy=compile_policy(config.get("policy"), f"{prefix}policy"),
        include=_optional_list(config.get("include"), f"{prefix}include"),
    )


def _apply_policy(
    event: Mapping[str, Any], policy: tuple[tuple[Setter, Resolver], ...], context: MappingContext
) -> dict[str, Any]:
    # Every policy value is computed from the same input event, then all are set.
    values = [(setter, resolver(event, context)) for setter, resolver in policy]
    updated = dict(event)
    for setter, value in values:
        updated = setter(updated, value)
    return updated


def _assign(target: dict[str, Any], source: dict[str, Any]) -> dict[str, Any]:
    """walkerOS assign: source wins, except lists on both sides are merged without repeats."""
    merged = dict(target)
    for key, value in source.items():
        existing = merged.get(key)
        if type(existing) is list and type(value) is list:
            combined = list(existing)
            combined.extend(item for item in value if item not in combined)
            merged[key] = combined
        else:
            merged[key] = value
    return merged


def flatten_include(event: Mapping[str, Any], sections: Sequence[str]) -> dict[str, Any]:
    """Flatten whole event sections into ``section_key`` properties (context keeps the value)."""
    out: dict[str, Any] = {}
    for section in _INCLUDE_SECTIONS if "all" in sections else sections:
        if section == "event":
            bag: Any = {k: event[k] for k in _EVENT_FIELDS if k in event}
        else:
            bag = event.get(section)
        if not isinstance(bag, dict):
            continue
        for key, raw in bag.items():
            if raw is None:
                continue
            out[f"{section}_{key}"] = (
                raw[0] if section == "context" and isinstance(raw, list | tuple) else raw
            )
    return out


def get_mapping_value(
    value: Any,
    config: Any,
    *,
    consent: Mapping[str, bool] | None = None,
    collector_consent: Mapping[str, bool] | None = None,
    event: Mapping[str, Any] | None = None,
) -> Any:
    """Resolve a value config once, without keeping the compiled form (tests, one-off use).

    Consent state, as in walkerOS: the value's own ``consent``, else ``consent``,
    else the collector's.
    """
    if value is None or value is UNDEFINED:
        return UNDEFINED
    resolver = compile_value(config)
    state = value.get("consent") if isinstance(value, dict) else None
    if state is None:
        state = consent if consent is not None else collector_consent
    context = MappingContext(
        event if event is not None else (value if isinstance(value, dict) else {}), state
    )
    return resolver(value, context)
