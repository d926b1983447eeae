"""Checking every step of a flow: its package (or inline code), its config, its settings.

All four kinds go through one loop: find the class in the registry (or wrap
an inline ``code`` function), check the walkerOS config keys of the kind, then
the step's own ``Settings`` model. Every problem is collected, each naming its
JSON path. A config key walkerOS knows but that has no effect here is a
warning; an unknown key close to a known one is an error with a did-you-mean
(a typo must not silently change what is sent), others are warnings.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr, ValidationError

from collector.callables import CallableImportError, import_callable
from collector.destination import DestinationConfig, LoggerConfig
from collector.mapping_config import ValueConfig
from collector.registry import GROUPS, PackageNotFoundError, load_package
from flows.flowfile.errors import did_you_mean, format_validation_error

INLINE = "inline"
"""The ``package`` of a step written as inline ``code``."""


class SourceConfig(BaseModel):
    """The walkerOS config keys of a source."""

    model_config = ConfigDict(extra="forbid")

    settings: dict[str, Any] = Field(default_factory=dict)
    ingest: ValueConfig | None = Field(
        None, description="Mapping of the request into the ingest transformers see"
    )
    consent: dict[str, StrictBool] | None = None
    require: list[StrictStr] | None = None
    disabled: StrictBool = False
    primary: StrictBool | None = None
    id: StrictStr | None = None
    logger: LoggerConfig | None = None
    setup: Any = None
    mapping: Any = Field(None, description="walkerOS source mapping; ignored")


class TransformerConfig(BaseModel):
    """The walkerOS config keys of a transformer."""

    model_config = ConfigDict(extra="forbid")

    settings: dict[str, Any] = Field(default_factory=dict)
    disabled: StrictBool = False
    id: StrictStr | None = None
    logger: LoggerConfig | None = None
    setup: Any = None
    init: Any = None
    mapping: Any = Field(None, description="walkerOS transformer mapping; ignored")


class StoreConfig(BaseModel):
    """The walkerOS config keys of a store."""

    model_config = ConfigDict(extra="forbid")

    settings: dict[str, Any] = Field(default_factory=dict)
    id: StrictStr | None = None
    logger: LoggerConfig | None = None
    setup: Any = None


CONFIG_MODELS: dict[str, type[BaseModel]] = {
    "sources": SourceConfig,
    "transformers": TransformerConfig,
    "destinations": DestinationConfig,
    "stores": StoreConfig,
}

IGNORED_CONFIG: dict[str, tuple[str, ...]] = {
    "sources": ("require", "primary", "setup", "mapping", "id"),
    "transformers": ("setup", "init", "mapping", "id"),
    "destinations": (
        "require",
        "timeout",
        "queue",
        "queueMax",
        "dlqMax",
        "breaker",
        "setup",
        "id",
        "env",
    ),
    "stores": ("setup", "id"),
}
"""Config keys accepted for walkerOS files that change nothing on this runtime (README)."""


def config_keys(model: type[BaseModel]) -> set[str]:
    """The JSON keys a config model takes (aliases where set)."""
    return {info.alias or name for name, info in model.model_fields.items()}


@dataclass(slots=True)
class CheckedSteps:
    """What checking a flow's steps found, keyed ``kind.id`` (``destinations.segment``)."""

    packages: dict[str, type] = field(default_factory=dict)
    settings: dict[str, BaseModel] = field(default_factory=dict)
    """Each step's settings, validated once here and used as they are to build it."""
    warnings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def check_steps(spec: Mapping[str, Any], where: str) -> CheckedSteps:
    """Every step's class and settings, the warnings and the errors."""
    checked = CheckedSteps()
    packages, warnings, errors = checked.packages, checked.warnings, checked.errors
    for kind, group in GROUPS.items():
        for step_id, ref in (spec.get(kind) or {}).items():
            path = f"{where}.{kind}.{step_id}"
            cls = _step_class(kind, group, ref, path, errors)
            config = ref.get("config") or {}
            if not isinstance(config, dict):
                errors.append(f"{path}.config: must be an object")
                continue
            known = _known_config(kind, config, f"{path}.config", warnings, errors)
            warnings += _ignored_step_keys(kind, ref, path)
            if cls is None:
                continue
            packages[f"{kind}.{step_id}"] = cls
            model = CONFIG_MODELS[kind]
            try:
                model.model_validate(known)
            except ValidationError as error:
                errors += format_validation_error(error, model, f"{path}.config")
                continue
            settings_model = getattr(cls, "Settings", None)
            if settings_model is None:
                continue
            if (
                kind == "destinations"
                and "batch" in known
                and "batch" not in settings_model.model_fields
            ):
                warnings.append(
                    f"{path}.config.batch: accepted for walkerOS; this destination batches"
                    " by its own settings"
                )
            try:
                checked.settings[f"{kind}.{step_id}"] = settings_model.model_validate(
                    settings_with_batch(kind, known, settings_model)
                )
            except ValidationError as error:
                errors += format_validation_error(error, settings_model, f"{path}.config.settings")
    return checked


def settings_with_batch(
    kind: str, config: Mapping[str, Any], settings_model: type[BaseModel]
) -> dict[str, Any]:
    """A step's settings; walkerOS's destination ``config.batch`` becomes the destination's own
    ``batch`` setting when it has one and the flow left it unset (the api destination)."""
    settings = dict(config.get("settings") or {})
    batch = config.get("batch")
    if kind == "destinations" and batch is not None and "batch" in settings_model.model_fields:
        settings.setdefault("batch", batch)
    return settings


def _step_class(
    kind: str, group: str, ref: Mapping[str, Any], path: str, errors: list[str]
) -> type | None:
    package = ref.get("package")
    code = ref.get("code")
    if isinstance(code, dict):
        if kind not in ("transformers", "destinations"):
            errors.append(f"{path}.code: inline code is for transformers and destinations")
            return None
        return _inline_class(kind, code, f"{path}.code.push", errors)
    if not package:
        errors.append(f'{path}: a step needs a "package" (or inline "code" with "push")')
        return None
    try:
        return load_package(package, group)  # type: ignore[no-any-return]
    except PackageNotFoundError as error:
        errors.append(f"{path}.package: {error}")
        return None


def _inline_class(kind: str, code: Mapping[str, Any], path: str, errors: list[str]) -> type | None:
    push = code.get("push")
    if not isinstance(push, str):
        errors.append(f'{path}: must be an import path such as "package.module:function"')
        return None
    try:
        import_callable(push)
    except CallableImportError as error:
        errors.append(f"{path}: {error}")
        return None
    from collector.destinations.function import FunctionDestination
    from collector.transformer import FunctionTransformer

    return FunctionTransformer if kind == "transformers" else FunctionDestination


IGNORED_STEP_KEYS: dict[str, tuple[str, ...]] = {
    "sources": ("before", "cache", "validate", "env"),
    "transformers": ("validate", "env"),
    "destinations": ("next", "validate", "env"),
    "stores": ("cache", "env"),
}
"""Step keys accepted for walkerOS files that change nothing here (README: "Ignored keys").

A source ``cache`` would answer repeated requests from the cache without
taking their events; a source ``before`` runs on the raw request in walkerOS.
"""


def _ignored_step_keys(kind: str, ref: Mapping[str, Any], path: str) -> list[str]:
    return [
        f"{path}.{key}: accepted for walkerOS, no effect on this runtime"
        for key in IGNORED_STEP_KEYS[kind]
        if ref.get(key) is not None
    ]


def _known_config(
    kind: str, config: Mapping[str, Any], path: str, warnings: list[str], errors: list[str]
) -> dict[str, Any]:
    """The config without keys the kind does not know (each a warning or a typo error)."""
    fields = config_keys(CONFIG_MODELS[kind])
    known: dict[str, Any] = {}
    for key, value in config.items():
        if key in fields:
            known[key] = value
            if key in IGNORED_CONFIG[kind]:
                warnings.append(f"{path}.{key}: accepted for walkerOS, no effect on this runtime")
            continue
        close = did_you_mean(key, fields)
        if close is not None:
            errors.append(f'{path}.{key}: unknown key "{key}"; did you mean "{close}"?')
        else:
            settings_hint = " (step settings go under settings)" if kind != "stores" else ""
            warnings.append(f"{path}.{key}: unknown key, ignored{settings_hint}")
    return known
