"""The shape of a walkerOS version 4 flow file, as pydantic models.

Every key of walkerOS's own JSON Schema of the format that a server flow can
hold is here. What a key does on this runtime is decided where the flow is
built (``flows.graph``); a key with no meaning here (a bundler option,
``observe``) is accepted and listed in the README as ignored. Step configs
stay plain dicts at this level: each step's own models check them later,
with the step's settings.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr

Platform = Literal["web", "server"]


class FlowConfig(BaseModel):
    """A flow's ``config`` block: its platform, public URL, runtime settings, bundle."""

    model_config = ConfigDict(extra="forbid")

    platform: Platform = Field(description="server flows run here; web flows run in a browser")
    url: StrictStr | None = Field(None, description="Public URL, for $flow.NAME.url")
    settings: dict[str, Any] = Field(
        default_factory=dict, description="Settings for the platform runtime"
    )
    bundle: dict[str, Any] | None = Field(None, description="walkerOS bundler options; ignored")
    observe: Any = Field(None, description="walkerOS observability options; ignored")


class StepCode(BaseModel):
    """An inline step: ``push`` names a Python function ``module:function``."""

    model_config = ConfigDict(extra="forbid")

    push: StrictStr = Field(description='"module:function", called as push(event, context)')
    type: StrictStr | None = Field(None, description="The step's type name")
    init: StrictStr | None = Field(None, description='"module:function" called once at start')


class StepExample(BaseModel):
    """A named in -> out case: the step's executable contract (``flows test``)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    title: StrictStr | None = None
    description: StrictStr | None = None
    public: StrictBool | None = None
    in_: Any = Field(None, alias="in", description="Input to the step")
    trigger: Any = None
    mapping: Any = Field(None, description="The mapping rule the example runs with")
    out: Any = Field(None, description="Expected output: an event, false, or calls")
    command: Literal["config", "consent", "user", "run"] | None = None
    chain: StrictBool | None = Field(
        None, description="Run the whole chain from this step, not the step alone"
    )
    ingest: dict[str, Any] | None = Field(
        None, description="The request the event came with (ip, userAgent, ...), for transformers"
    )


Route = StrictStr | list[Any] | dict[str, Any]
"""A chain: a step id (followed through ``next`` links), a list of ids, or a route object."""


class StepBase(BaseModel):
    """What every step of a flow may hold."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    package: StrictStr | None = Field(
        None,
        description="Entry-point name, walkerOS package name (optionally @version) or module:attr",
    )
    code: StepCode | StrictStr | None = Field(
        None, description="An inline step (object), or in older files the export name (ignored)"
    )
    import_: StrictStr | None = Field(
        None, alias="import", description="walkerOS: the package's export to use; ignored"
    )
    config: dict[str, Any] = Field(default_factory=dict)
    env: dict[str, Any] | None = Field(None, description="Step environment (e.g. $store refs)")
    variables: dict[str, Any] = Field(default_factory=dict)
    examples: dict[str, StepExample] = Field(default_factory=dict)
    cache: dict[str, Any] | None = None


class ChainStep(StepBase):
    """A step that takes part in chains: transformers, destinations (and sources)."""

    next: Route | None = Field(None, description="The chain after this step")
    before: Route | None = Field(None, description="The chain run before this step")
    validate_: dict[str, Any] | None = Field(
        None, alias="validate", description="walkerOS per-step validation; ignored"
    )


class SourceRef(ChainStep):
    """A source."""

    primary: StrictBool | None = Field(None, description="walkerOS's main source; accepted")


class StoreRef(StepBase):
    """A store."""


class FlowSpec(BaseModel):
    """One named flow."""

    model_config = ConfigDict(extra="forbid")

    config: FlowConfig | None = None
    variables: dict[str, Any] = Field(default_factory=dict)
    sources: dict[str, SourceRef] = Field(default_factory=dict)
    transformers: dict[str, ChainStep] = Field(default_factory=dict)
    destinations: dict[str, ChainStep] = Field(default_factory=dict)
    stores: dict[str, StoreRef] = Field(default_factory=dict)
    collector: dict[str, Any] = Field(default_factory=dict)
    packages: dict[str, Any] | None = Field(
        None, description="Older files' bundler package list; ignored"
    )
    server: dict[str, Any] | None = Field(
        None, description="Older walkerOS platform marker; accepted and ignored"
    )

    @property
    def platform(self) -> Platform:
        """The flow's platform; a flow without a ``config`` block is a server flow here."""
        return self.config.platform if self.config is not None else "server"


class BundleInfo(BaseModel):
    """Provenance of a bundle: where it came from and the packages it was checked with."""

    model_config = ConfigDict(extra="forbid")

    flow: StrictStr
    source: StrictStr
    packages: dict[str, StrictStr] = Field(default_factory=dict)
    created: StrictStr | None = None


class FlowFile(BaseModel):
    """A flow file (walkerOS flow format, version 4)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    schema_: StrictStr | None = Field(
        None, alias="$schema", description="JSON Schema for editors (`flows schema`)"
    )
    version: int = Field(description="Flow file format version; 4")
    include: list[StrictStr] | None = Field(
        None, description="walkerOS: folders to add to a bundle; ignored"
    )
    variables: dict[str, Any] = Field(default_factory=dict)
    contract: dict[str, Any] | None = Field(
        None, description="Tracking plans by name: JSON Schemas per entity and action"
    )
    flows: dict[str, FlowSpec]
    bundle: BundleInfo | None = Field(None, description="Set by `flows bundle`")
