"""Value configs of the walkerOS mapping language, compiled once into resolvers.

``compile_value`` turns a value config (a key path, an object with
``key``/``value``/``map``/``loop``/``set``/``consent``/``condition``/``fn``/
``validate``, or a list meaning "first that resolves") into a resolver. Per
event only the compiled functions run: no path parsing, regex or model building.

Resolvers return ``UNDEFINED`` for "no value", as walkerOS returns
``undefined``; JSON null resolves to no value too (walkerOS does not treat
null as a property).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from collector.callables import CallableImportError, import_callable
from collector.consent import is_granted
from collector.errors import ConfigError, suggestion
from collector.paths import UNDEFINED, PathError, compile_value_reader

logger = logging.getLogger("collector.mapping")


class MappingConfigError(ConfigError):
    """A mapping config cannot be compiled; ``path`` says where (``mapping.page.view.data``)."""


@dataclass(slots=True)
class MappingContext:
    """What a value resolver may look at besides its input value."""

    event: Mapping[str, Any]
    consent: Mapping[str, bool] | None


Resolver = Callable[[Any, MappingContext], Any]
"""Resolves a value config against a value; returns UNDEFINED when nothing resolves."""

_VALUE_KEYS = frozenset(
    {"key", "value", "map", "loop", "set", "consent", "condition", "fn", "validate"}
)


def _nothing(value: Any, context: MappingContext) -> Any:
    return UNDEFINED


def compile_value(config: Any, path: str = "") -> Resolver:
    """Compile one walkerOS value config into a resolver."""
    if config is None:
        return _nothing
    if isinstance(config, BaseModel):
        # Settings models validate value configs; compile what the user wrote.
        config = config.model_dump(by_alias=True, exclude_unset=True)
    if isinstance(config, str):
        return _compile_key(config, path)
    if isinstance(config, list):
        return _compile_first_of(config, path)
    if isinstance(config, dict):
        return _compile_object(config, path)
    raise MappingConfigError(
        path, f"a value config must be a key path, an object or a list, got {kind_name(config)}"
    )


def _compile_first_of(configs: list[Any], path: str) -> Resolver:
    resolvers = tuple(compile_value(item, f"{path}.{i}") for i, item in enumerate(configs))
    if len(resolvers) == 1:
        return resolvers[0]

    def resolve_first(value: Any, context: MappingContext) -> Any:
        for resolver in resolvers:
            result = resolver(value, context)
            if result is not UNDEFINED:
                return result
        return UNDEFINED

    return resolve_first


def _compile_object(config: dict[str, Any], path: str) -> Resolver:
    unknown = set(config) - _VALUE_KEYS
    if unknown:
        name = sorted(unknown)[0]
        raise MappingConfigError(
            f"{path}.{name}" if path else name,
            f"unknown value config key {name!r}{suggestion(name, _VALUE_KEYS)}",
        )
    if not config:
        return _nothing

    static = config.get("value", UNDEFINED)
    if static is None:
        static = UNDEFINED
    required_consent = config.get("consent")
    if required_consent is not None and not isinstance(required_consent, dict):
        raise MappingConfigError(f"{path}.consent", "must be an object of consent states")
    condition = import_reference(config.get("condition"), f"{path}.condition")
    validate = import_reference(config.get("validate"), f"{path}.validate")
    produce = _compile_producer(config, static, path)

    if condition is None and required_consent is None and validate is None:
        if produce is None:
            if static is UNDEFINED:
                return lambda value, context: UNDEFINED if value is None else value
            return lambda value, context: static
        if static is UNDEFINED:
            return produce

        def resolve_with_fallback(value: Any, context: MappingContext) -> Any:
            result = produce(value, context)
            return static if result is UNDEFINED else result

        return resolve_with_fallback

    def resolve_guarded(value: Any, context: MappingContext) -> Any:
        if condition is not None and not safe_call(condition, value, context, path):
            return UNDEFINED
        if required_consent is not None and not is_granted(required_consent, context.consent):
            return static
        result = (
            produce(value, context)
            if produce is not None
            else (static if static is not UNDEFINED else value)
        )
        if validate is not None and not safe_call(validate, result, context, path):
            result = UNDEFINED
        if result is None or result is UNDEFINED:
            return static
        return result

    return resolve_guarded


def _compile_producer(config: dict[str, Any], static: Any, path: str) -> Resolver | None:
    """The one producer of a value config, in walkerOS order: loop, map, set, key, fn."""
    if "loop" in config:
        return _compile_loop(config["loop"], f"{path}.loop")
    if "map" in config:
        return _compile_map(config["map"], f"{path}.map")
    if "set" in config:
        items = config["set"]
        if not isinstance(items, list):
            raise MappingConfigError(f"{path}.set", "must be a list of value configs")
        resolvers = tuple(compile_value(item, f"{path}.set.{i}") for i, item in enumerate(items))

        def resolve_set(value: Any, context: MappingContext) -> Any:
            return [_json_slot(r(value, context)) for r in resolvers]

        return resolve_set
    if "key" in config and config["key"] is not None:
        return _compile_key(config["key"], f"{path}.key", static)
    if "fn" in config and config["fn"] is not None:
        fn = import_reference(config["fn"], f"{path}.fn")
        assert fn is not None

        def resolve_fn(value: Any, context: MappingContext) -> Any:
            try:
                result = fn(value, context)
            except Exception:
                logger.exception("mapping fn %s failed", config["fn"])
                return UNDEFINED
            return UNDEFINED if result is None else result

        return resolve_fn
    return None


def _compile_map(entries: Any, path: str) -> Resolver:
    if not isinstance(entries, dict):
        raise MappingConfigError(path, "must be an object of value configs")
    if not entries:
        return _nothing
    pairs = tuple((name, compile_value(item, f"{path}.{name}")) for name, item in entries.items())

    def resolve_map(value: Any, context: MappingContext) -> Any:
        result = {}
        for name, resolver in pairs:
            found = resolver(value, context)
            if found is not UNDEFINED:
                result[name] = found
        return result

    return resolve_map


def _compile_loop(loop: Any, path: str) -> Resolver:
    if not isinstance(loop, list):
        raise MappingConfigError(path, 'must be a list: [path or "this", value config]')
    if not loop:
        return _nothing
    if len(loop) != 2:
        raise MappingConfigError(path, 'must be a list of two: [path or "this", value config]')
    scope, item_config = loop
    item = compile_value(item_config, f"{path}.1")
    this = scope == "this"
    source = None if this else compile_value(scope, f"{path}.0")

    def resolve_loop(value: Any, context: MappingContext) -> Any:
        items = [value] if this or source is None else source(value, context)
        if not isinstance(items, list):
            return UNDEFINED
        out = []
        for entry in items:
            if entry is UNDEFINED or entry is None:
                continue
            mapped = item(entry, context)
            if mapped is not UNDEFINED:
                out.append(mapped)
        return out

    return resolve_loop


def _compile_key(key: Any, path: str, default: Any = UNDEFINED) -> Resolver:
    try:
        return compile_value_reader(key, default)
    except PathError as error:
        raise MappingConfigError(path, str(error)) from None


def import_reference(reference: Any, path: str) -> Callable[..., Any] | None:
    if reference is None:
        return None
    try:
        return import_callable(reference)
    except CallableImportError as error:
        raise MappingConfigError(path, str(error)) from None


def safe_call(check: Callable[..., Any], value: Any, context: MappingContext, path: str) -> bool:
    """A failing user check means "no", as in walkerOS; it is logged, never raised."""
    try:
        return bool(check(value, context))
    except Exception:
        logger.exception("mapping callable at %s failed", path)
        return False


def _json_slot(value: Any) -> Any:
    """A missing value inside a list is JSON null (JavaScript's undefined in an array)."""
    return None if value is UNDEFINED else value


def kind_name(value: Any) -> str:
    return {bool: "a boolean", int: "a number", float: "a number"}.get(
        type(value), type(value).__name__
    )
