"""The walkerOS event, validated by pydantic in one pass.

Events stay plain dictionaries on the hot path: mapping is dictionary lookups,
and pydantic-core validates the whole nested shape in one call without
building model objects per field. The TypedDicts below are the model (and the
JSON Schema); ``validate_event`` is the one entry point.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Annotated, Any, NotRequired, TypeAlias

from pydantic import (
    AfterValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    TypeAdapter,
    ValidationError,
    WithJsonSchema,
    with_config,
)
from typing_extensions import TypeAliasType, TypedDict

FiniteFloat = Annotated[float, Field(allow_inf_nan=False, strict=True)]
Number: TypeAlias = StrictInt | FiniteFloat


SAFE_INTEGER = 2**53 - 1
"""JavaScript's Number.MAX_SAFE_INTEGER: past it, a walkerOS sender's integers are not exact."""
WHOLE_NUMBER = "must be a whole number between -(2^53 - 1) and 2^53 - 1"


def _whole(number: float) -> float:
    """Python runs only for a float sent as a count; integers never get here."""
    if not number.is_integer() or not -SAFE_INTEGER <= number <= SAFE_INTEGER:
        raise ValueError(WHOLE_NUMBER)
    return number


WholeNumber: TypeAlias = Annotated[
    Annotated[StrictInt, Field(ge=-SAFE_INTEGER, le=SAFE_INTEGER)]
    | Annotated[FiniteFloat, AfterValidator(_whole)],
    Field(union_mode="left_to_right"),
    WithJsonSchema({"type": "integer", "minimum": -SAFE_INTEGER, "maximum": SAFE_INTEGER}),
]
"""An integer as JSON means it: ``3`` or ``3.0`` (JavaScript senders make no difference)."""
EARLIEST_TIMESTAMP = -62_135_596_800_000
"""0001-01-01T00:00:00Z in epoch ms: the first instant an ISO 8601 date (and a datetime) holds."""
LATEST_TIMESTAMP = 253_402_300_799_999
"""9999-12-31T23:59:59.999Z in epoch ms: the last one."""
TIMESTAMP_RANGE = "must be epoch milliseconds between year 1 and 9999 (an ISO 8601 date)"

Timestamp: TypeAlias = Annotated[
    Annotated[StrictInt, Field(ge=EARLIEST_TIMESTAMP, le=LATEST_TIMESTAMP)]
    | Annotated[FiniteFloat, Field(ge=EARLIEST_TIMESTAMP, le=LATEST_TIMESTAMP)],
    Field(union_mode="left_to_right"),
]
"""Checked here, before an answer: Segment needs an ISO 8601 date, so year 10000 or ``1e300``
could never be sent."""
Property = TypeAliasType(
    "Property",
    Annotated[
        "StrictStr | StrictInt | FiniteFloat | StrictBool"
        " | dict[str, Property] | list[Property] | None",
        Field(union_mode="left_to_right"),
    ],
)
"""A JSON value with finite numbers only: NaN or Infinity would make Segment reject a batch."""

Properties: TypeAlias = dict[str, Property]
OrderedProperties: TypeAlias = dict[str, tuple[Property, Number]]
"""walkerOS context: each value is a ``[value, order]`` pair."""


@with_config(ConfigDict(extra="allow"))
class User(TypedDict, total=False):
    """Who did it; extra keys are kept for mappings to use."""

    id: StrictStr
    device: StrictStr
    session: StrictStr
    hash: StrictStr
    address: StrictStr
    email: StrictStr
    phone: StrictStr
    userAgent: StrictStr
    browser: StrictStr
    browserVersion: StrictStr
    deviceType: StrictStr
    language: StrictStr
    country: StrictStr
    region: StrictStr
    city: StrictStr
    zip: StrictStr
    timezone: StrictStr
    os: StrictStr
    osVersion: StrictStr
    screenSize: StrictStr
    ip: StrictStr
    internal: StrictBool


@with_config(ConfigDict(extra="allow"))
class Entity(TypedDict, total=False):
    """A nested entity such as a product inside an order."""

    entity: StrictStr
    data: Properties
    nested: list[Entity]
    context: OrderedProperties


@with_config(ConfigDict(extra="allow"))
class Source(TypedDict, total=False):
    """Where the event came from."""

    type: StrictStr
    id: StrictStr
    previous_id: StrictStr
    count: WholeNumber
    trace: StrictStr
    schema: StrictStr


@with_config(ConfigDict(extra="allow"))
class Version(TypedDict, total=False):
    """Versions of the sending software."""

    source: StrictStr
    tagging: Number
    schema: StrictStr


@with_config(ConfigDict(extra="allow"))
class Event(TypedDict):
    """A walkerOS event. Only ``name`` ("entity action") is required from a client."""

    name: StrictStr
    data: NotRequired[Properties]
    context: NotRequired[OrderedProperties]
    globals: NotRequired[Properties]
    custom: NotRequired[Properties]
    user: NotRequired[User]
    nested: NotRequired[list[Entity]]
    consent: NotRequired[dict[str, StrictBool]]
    id: NotRequired[StrictStr]
    trigger: NotRequired[StrictStr]
    entity: NotRequired[StrictStr]
    action: NotRequired[StrictStr]
    timestamp: NotRequired[Timestamp]
    timing: NotRequired[Number]
    group: NotRequired[StrictStr]
    count: NotRequired[WholeNumber]
    version: NotRequired[Version]
    source: NotRequired[Source]


EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)
_validate = EVENT_ADAPTER.validator.validate_python
"""The core validator itself: ``TypeAdapter.validate_python`` only forwards to it."""


@dataclass(frozen=True, slots=True)
class FieldError:
    """One reason an event was rejected, at a dotted path such as ``data.price``."""

    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}" if self.path else self.reason


class EventValidationError(ValueError):
    """An event is malformed; ``errors`` names each field path and why."""

    def __init__(self, errors: Iterable[FieldError]) -> None:
        self.errors = tuple(errors)
        super().__init__("invalid event: " + "; ".join(str(e) for e in self.errors))


def validate_event(raw: Any) -> Event:
    """Check ``raw`` against the walkerOS event shape and split its name.

    Returns a new dict (the input is not modified). Raises
    EventValidationError naming every bad field.
    """
    try:
        event: Event = _validate(raw)
    except ValidationError as error:
        raise EventValidationError(_field_errors(error)) from None
    name = event["name"]
    entity, sep, action = name.partition(" ")
    if not sep or not entity or not action:
        raise EventValidationError(
            [FieldError("name", f'must be "entity action" with a space, got {name[:60]!r}')]
        )
    event["entity"] = entity
    event["action"] = action
    return event


def fill_defaults(event: Event) -> Event:
    """Give an event the ``id`` and ``timestamp`` it may lack (in place)."""
    if "id" not in event:
        event["id"] = uuid.uuid4().hex
    if "timestamp" not in event:
        event["timestamp"] = time.time_ns() // 1_000_000
    return event


def _field_errors(error: ValidationError) -> list[FieldError]:
    found: list[FieldError] = []
    for item in error.errors(include_url=False, include_input=False):
        loc = [str(part) for part in item["loc"] if not _is_union_tag(part)]
        reason = item["msg"]
        if item["type"] == "finite_number":
            reason = "must be a finite number (NaN and Infinity are not valid JSON)"
        elif item["type"] == "missing":
            reason = "is required"
        elif item["type"] == "model_type" or item["type"] == "dict_type":
            reason = "must be an object"
        elif any(str(part).startswith("function-after[_whole") for part in item["loc"]):
            reason = WHOLE_NUMBER
        elif loc == ["timestamp"] and item["type"] in _RANGE_TYPES:
            reason = TIMESTAMP_RANGE
        found.append(FieldError(".".join(loc), reason))
    return _dedupe(found)


def _is_union_tag(part: object) -> bool:
    """pydantic names the union member it tried (``list[...]``); users think in fields."""
    return isinstance(part, str) and (
        part in {"str", "int", "float", "bool", "none"}
        or "[" in part
        or part.startswith(("function-", "constrained-"))
    )


_RANGE_TYPES = {"greater_than_equal", "less_than_equal"}
_NUMBER_REASONS = {"Input should be a valid integer", "Input should be a valid number"}


def _dedupe(errors: list[FieldError]) -> list[FieldError]:
    """A value that fails every member of a union is reported once, at its deepest path."""
    paths = {e.path for e in errors}
    errors = [e for e in errors if not any(p.startswith(e.path + ".") for p in paths)]
    by_path: dict[str, FieldError] = {}
    for error in errors:
        by_path.setdefault(error.path, error)
    merged = []
    for path, error in by_path.items():
        reasons = {e.reason for e in errors if e.path == path}
        precise = next((r for r in (WHOLE_NUMBER, TIMESTAMP_RANGE) if r in reasons), None)
        if precise is not None:
            merged.append(FieldError(path, precise))
        elif reasons == _NUMBER_REASONS:
            merged.append(FieldError(path, "must be a number"))
        elif len(reasons) > 1:
            merged.append(FieldError(path, "must be a JSON value with finite numbers"))
            if any("finite" in r for r in reasons):
                merged[-1] = FieldError(
                    path, "must be a finite number (NaN and Infinity are not valid JSON)"
                )
        else:
            merged.append(error)
    return merged
