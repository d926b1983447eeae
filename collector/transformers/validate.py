"""The ``validate`` transformer (walkerOS ``@walkeros/transformer-validate``): events against a contract.

Each event is checked against every JSON Schema of ``settings.contract`` that
applies to it (and walkerOS's event shape with ``format: true``); all errors
are collected. The verdict goes on the event (``output.isValid``, default
``source.valid``, on a copy), the error list on the ingest (``output.errors``,
default ``validation``, in place, so later steps and observers see it).
``mode: "pass"`` (the default) lets every event go on; ``mode: "strict"``
refuses an invalid one. Where walkerOS's push returns ``false``, ours raises
``EventRejected`` naming the first errors, so the HTTP source answers that
event 400 instead of accepting it silently.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Final, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictStr,
    WithJsonSchema,
    field_validator,
)

from collector.destination import EventRejected
from collector.transformer import Event, Transformer, TransformerContext
from collector.transformers.contract import CompiledContract, Issue

SHOWN_ERRORS: Final = 3
"""Errors named in a strict rejection's reason; the full list is on the ingest."""
SHOWN_MESSAGE: Final = 100
"""Longest error message repeated in that reason (messages can quote a whole schema)."""


def _resolved(entry: Any) -> Any:
    """A ``$contract.NAME`` string left in settings means the flow was not resolved first."""
    if isinstance(entry, str) and entry.startswith("$contract."):
        raise ValueError(
            f"{entry[:60]!r} is a contract reference: it must be resolved against the flow's "
            "top-level contract before the step is built"
        )
    return entry


ContractEntry = Annotated[
    dict[str, Any],
    BeforeValidator(_resolved),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "object", "description": "A contract rule or a JSON Schema"},
                {"type": "string", "pattern": "^\\$contract\\.", "description": "$contract.NAME"},
            ]
        }
    ),
]
"""A rule or schema; in a flow file also ``$contract.NAME``, resolved before the step is built."""


class ValidateOutput(BaseModel):
    """Where the verdict and the error list go; an empty string skips that write."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    is_valid: StrictStr = Field(
        "source.valid", alias="isValid", description="Event dot path for the boolean verdict"
    )
    errors: StrictStr = Field("validation", description="Ingest dot path for the error list")

    @field_validator("is_valid", "errors")
    @classmethod
    def _dot_path(cls, path: str) -> str:
        if path and not all(path.split(".")):
            raise ValueError(f"{path[:60]!r} has an empty key; use dot paths such as source.valid")
        return path


class ValidateSettings(BaseModel):
    """Flow-file settings of ``validate``, walkerOS's names."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    contract: list[ContractEntry] = Field(
        default_factory=list,
        description="Contract rules ({events, schema}) or whole-event JSON Schemas; all AND-ed",
    )
    format: StrictBool = Field(False, description="Also check the walkerOS event shape")
    mode: Literal["pass", "strict"] = Field(
        "pass", description="strict refuses an invalid event; pass annotates it and goes on"
    )
    output: ValidateOutput = Field(
        ValidateOutput.model_validate({}), description="Where the results are written"
    )


class ValidateTransformer(Transformer[ValidateSettings]):
    """Checks each event against the compiled contract; annotates, records, or refuses."""

    type = "validate"
    Settings = ValidateSettings

    def __init__(self, settings: ValidateSettings, *, step_id: str | None = None) -> None:
        super().__init__(settings, step_id=step_id)
        self.contract = CompiledContract(settings.contract, format_check=settings.format)
        self._strict = settings.mode == "strict"
        self._set_verdict = _verdict_setter(settings.output.is_valid)
        self._write_errors = _ingest_writer(settings.output.errors)

    def push(self, event: Event, context: TransformerContext) -> Event | None:
        issues = self.contract.check(event)
        if self._write_errors is not None:
            self._write_errors(context.ingest, issues)
        if issues and self._strict:
            raise EventRejected(_reason(issues))
        if self._set_verdict is None:
            return None
        return self._set_verdict(event, not issues)


def _verdict_setter(path: str) -> Callable[[Event, bool], Event] | None:
    """walkerOS's immutable setByPath: a copy of each object along the path, the rest shared."""
    if not path:
        return None
    *parents, last = path.split(".")

    def set_verdict(event: Event, verdict: bool) -> Event:
        top = dict(event)
        current = top
        for key in parents:
            child = current.get(key)
            child = dict(child) if isinstance(child, dict) else {}
            current[key] = child
            current = child
        current[last] = verdict
        return top

    return set_verdict


def _ingest_writer(path: str) -> Callable[[dict[str, Any], list[Issue]], None] | None:
    """Writes in place (the ingest is the request's shared scratch), making objects on the way."""
    if not path:
        return None
    *parents, last = path.split(".")

    def write(ingest: dict[str, Any], issues: list[Issue]) -> None:
        current = ingest
        for key in parents:
            child = current.get(key)
            if not isinstance(child, dict):
                child = current[key] = {}
            current = child
        current[last] = issues

    return write


def _reason(issues: list[Issue]) -> str:
    """The first errors as ``#/data: message``, short enough for an HTTP answer."""
    shown = "; ".join(
        f"{issue['path']}: {_clip(issue['message'])}" for issue in issues[:SHOWN_ERRORS]
    )
    more = len(issues) - SHOWN_ERRORS
    return f"failed validation: {shown}" + (f" (and {more} more)" if more > 0 else "")


def _clip(text: str) -> str:
    return text if len(text) <= SHOWN_MESSAGE else text[: SHOWN_MESSAGE - 3] + "..."
