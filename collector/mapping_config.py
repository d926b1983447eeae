"""The shape of walkerOS mapping config, as pydantic models.

They check a config at load and describe it in the flow file's JSON Schema;
``collector.mapping`` then compiles the checked config into functions.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr
from typing_extensions import TypeAliasType

ImportPath = StrictStr
"""A Python callable named as ``"package.module:function"``."""


class ValueObject(BaseModel):
    """One value config object; which of ``loop``/``map``/``set``/``key``/``fn`` produces it."""

    model_config = ConfigDict(extra="forbid")

    key: StrictStr | None = Field(
        None, description="Dot path (data.id, nested.*.data.id) or $-prefixed JSONPath"
    )
    value: Any = Field(None, description="Static value, or the fallback when nothing resolves")
    map: dict[str, ValueConfig] | None = None
    loop: tuple[StrictStr | ValueConfig, ValueConfig] | None = Field(
        None, description='[path or "this", value config for each item]'
    )
    set: list[ValueConfig] | None = None
    consent: dict[str, StrictBool] | None = Field(
        None, description="Resolve only when one of these consent states is granted"
    )
    condition: ImportPath | None = None
    fn: ImportPath | None = None
    validate_: ImportPath | None = Field(None, alias="validate")


ValueConfig = TypeAliasType("ValueConfig", "StrictStr | ValueObject | list[ValueConfig]")


class RuleBatch(BaseModel):
    """A rule's ``batch: {wait, size}``."""

    model_config = ConfigDict(extra="forbid")

    wait: float | None = Field(None, ge=0)
    size: int | None = Field(None, ge=1)


class Rule(BaseModel):
    """What a destination does with one kind of event (``mapping[entity][action]``)."""

    model_config = ConfigDict(extra="forbid")

    name: StrictStr | None = Field(None, description="Rename the event for this destination")
    data: ValueConfig | None = None
    ignore: StrictBool = False
    silent: StrictBool = False
    consent: dict[str, StrictBool] | None = None
    settings: dict[str, Any] | None = Field(None, description="Destination-specific rule settings")
    policy: dict[str, ValueConfig] | None = Field(
        None, description="Rewrite event fields (dot path -> value config) before mapping"
    )
    include: list[StrictStr] | None = None
    remove: list[StrictStr] | None = None
    batch: int | RuleBatch | None = Field(
        None, description="walkerOS batching of this rule's events: a size or {wait, size}"
    )
    condition: ImportPath | None = None


RuleOrRules = TypeAliasType("RuleOrRules", "Rule | list[Rule]")
Rules = dict[str, dict[str, RuleOrRules]]


class MappingSettings(BaseModel):
    """The mapping part of a destination's config."""

    model_config = ConfigDict(extra="forbid")

    mapping: Rules | None = None
    data: ValueConfig | None = None
    policy: dict[str, ValueConfig] | None = None
    include: list[StrictStr] | None = None


ValueObject.model_rebuild()
Rule.model_rebuild()
