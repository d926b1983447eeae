"""The destination interface: what a package implements to receive events.

A destination declares its ``type`` name and a pydantic ``Settings`` model
(so config errors surface at load), may compile its rule ``settings`` once
(``compile_rule_settings``), and implements ``push``; ``push_batch``,
``init``, ``shutdown`` and ``check_connection`` have sensible defaults. One
that writes dead letters can send them again by implementing ``replay``
(``flows replay``; ``collector.replay`` reads the file and keeps the account).
"""

from __future__ import annotations

import builtins
import logging
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr

from collector.mapping import CompiledRule
from collector.mapping_config import Rules, ValueConfig
from collector.paths import UNDEFINED
from collector.replay import CannotReplayError, DeadLetterRecord, ReplayOutcome
from collector.store import Store

BatchSize = Annotated[int, Field(ge=1)]


class BatchConfig(BaseModel):
    """walkerOS's ``batch: {wait, size}``."""

    model_config = ConfigDict(extra="forbid")

    wait: float | None = Field(None, ge=0, description="Milliseconds to wait for more events")
    size: int | None = Field(None, ge=1, description="Events per batch")


class LoggerConfig(BaseModel):
    """A step's ``logger``: its level (walkerOS ``logger.level``)."""

    model_config = ConfigDict(extra="allow")

    level: StrictStr | int | None = None


class DestinationConfig(BaseModel):
    """The part of a destination's config that every destination shares."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    settings: dict[str, Any] = Field(default_factory=dict)
    mapping: Rules | None = None
    data: ValueConfig | None = None
    policy: dict[str, ValueConfig] | None = None
    include: list[StrictStr] | None = None
    consent: dict[str, StrictBool] | None = Field(
        None, description="Consent this destination requires (any one granted is enough)"
    )
    disabled: StrictBool = Field(False, description="Leave this destination out of the flow")
    id: StrictStr | None = Field(None, description="walkerOS's own id of the step; accepted")
    logger: LoggerConfig | None = None
    batch: BatchSize | BatchConfig | None = Field(
        None, description="walkerOS event batching; this runtime's destinations batch themselves"
    )
    require: list[StrictStr] | None = Field(
        None, description="walkerOS: start only after these collector events; a server has none"
    )
    timeout: float | None = Field(None, ge=0, description="walkerOS push timeout (ms); accepted")
    queue: StrictBool | None = Field(None, description="walkerOS consent queue; accepted")
    queue_max: int | None = Field(
        None, ge=0, alias="queueMax", description="walkerOS queue bound; accepted"
    )
    dlq_max: int | None = Field(
        None,
        ge=0,
        alias="dlqMax",
        description="walkerOS in-memory dead-letter bound; here dead letters go to a file",
    )
    breaker: Any = Field(None, description="walkerOS circuit breaker; accepted")
    setup: Any = Field(None, description="walkerOS setup hook options; accepted")
    env: Any = None


@dataclass(slots=True)
class PushContext:
    """What a destination gets beside the event: the matched rule and the resolved data."""

    rule: CompiledRule | None
    data: Any
    consent: Mapping[str, bool]
    logger: logging.Logger
    silent: bool = False

    @property
    def has_data(self) -> bool:
        return self.data is not UNDEFINED


@dataclass(frozen=True, slots=True)
class Skipped:
    """A destination chose not to send an event; ``reason`` says why (``no identity``)."""

    reason: str


class EventRejected(Exception):  # noqa: N818  # it names an outcome, like Skipped
    """A destination refuses an event for good: sent again, it would fail the same way.

    ``push`` raises it before queueing anything of the event (a Segment message
    over 32 KB, say), so the source can still answer that event as rejected
    (400, with ``reason``) instead of accepting what can never be delivered.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(slots=True)
class ShutdownReport:
    """How a destination's shutdown went: what it could not deliver in time."""

    undelivered: int = 0
    timed_out: bool = False
    detail: str = ""

    @classmethod
    def after_flush(
        cls, undelivered: int, timed_out: bool, left: int, in_flight: int, noun: str
    ) -> ShutdownReport:
        """The report of a queue flushed against a deadline: ``left`` queued and
        ``in_flight`` ``noun``s (items, messages) not sent when it ran out."""
        detail = "flushed"
        if timed_out:
            detail = f"{left} queued {noun}(s) not sent before the shutdown deadline"
            if in_flight:
                detail += f"; {in_flight} {noun}(s) still in flight"
        return cls(undelivered=undelivered, timed_out=timed_out, detail=detail)


@dataclass(slots=True)
class ConnectionReport:
    """The result of a destination's connection check (``flows validate --check``)."""

    ok: bool
    detail: str


SettingsT = TypeVar("SettingsT", bound=BaseModel)


class Destination(ABC, Generic[SettingsT]):
    """Base class for destinations; subclass with ``type`` and ``Settings`` set."""

    type: ClassVar[str]
    Settings: ClassVar[builtins.type[BaseModel]]
    blocking: ClassVar[bool] = True
    """Whether ``push`` may block (network, disk). The http source then runs it on a
    worker thread, so the event loop keeps serving; only a ``push`` that returns in
    microseconds (it queues in memory, as the Segment destination does) sets False."""

    def __init__(self, settings: SettingsT, *, destination_id: str | None = None) -> None:
        self.settings = settings
        self.id = destination_id or self.type
        self.logger = logging.getLogger(f"flows.destination.{self.id}")

    def compile_rule_settings(self, settings: dict[str, Any], path: str) -> Any:
        """Turn a rule's ``settings`` into what ``push`` wants, once, at load."""
        return settings

    def init(self) -> None:
        """Open connections or start workers; called once before the first push."""

    def before_fork(self, workers: int) -> None:
        """Called once in the parent before ``flows run --workers`` forks ``workers`` processes.

        A destination whose state should be one across workers (not per process)
        sets up shared memory here; ``init`` then runs in each worker.
        """

    def use_stores(self, stores: Mapping[str, Store[Any]], path: str) -> None:
        """Called once at load with the flow's stores by id, before ``init``.

        A destination whose settings name a store looks it up here; an id that
        is not there is a ``ConfigError`` under ``path`` (the destination's
        config path, ``flows.NAME.destinations.ID``).
        """

    def begin_request(self) -> None:
        """The events of one request follow on this thread, then ``end_request``.

        A destination may hold their work until then, to do it together (the
        Segment destination asks its de-dup store once per request). Only
        destinations that override ``end_request`` are called.
        """

    def end_request(self) -> None:
        """Finish what ``begin_request`` held back; must not raise."""

    @abstractmethod
    def push(self, event: Mapping[str, Any], context: PushContext) -> Skipped | None:
        """Handle one event; return Skipped(reason) when not sending it."""

    def preview(
        self, event: Mapping[str, Any], context: PushContext
    ) -> list[dict[str, Any]] | Skipped:
        """What ``push`` would send for this event, sending nothing (``flows push``, ``flows test``).

        One dict per message; the default names the destination and gives the
        mapped event name and data. A destination that knows its wire format
        returns that instead (Segment returns its exact messages).
        """
        name = context.rule.name if context.rule is not None and context.rule.name else None
        line: dict[str, Any] = {"destination": self.id, "event": name or event.get("name")}
        if context.data is not UNDEFINED:
            line["data"] = context.data
        return [line]

    def push_batch(
        self, items: Sequence[tuple[Mapping[str, Any], PushContext]]
    ) -> list[Skipped | None]:
        """Handle several events; the default pushes them one by one."""
        return [self.push(event, context) for event, context in items]

    def flush(self, timeout: float) -> bool:
        """Whether all pushed so far was delivered or recorded as failed, waiting ``timeout`` s.

        The durable buffer acknowledges its entries only after this says True.
        The default: ``push`` itself delivers (or raises), so nothing is left.
        """
        return True

    def shutdown(self, timeout: float) -> ShutdownReport:
        """Deliver what is queued within ``timeout`` seconds and release resources."""
        return ShutdownReport()

    def check_connection(self) -> ConnectionReport:
        """Check the destination can be reached, without sending data."""
        return ConnectionReport(True, "nothing to check")

    def replay(self, records: Iterable[DeadLetterRecord], outcome: ReplayOutcome) -> None:
        """Send dead-lettered messages again (``flows replay``), each tried once.

        ``records`` are the lines of a dead-letter file meant for this
        destination, read one at a time (a file may be larger than memory):
        their ``message`` is what this destination wrote to its dead-letter
        file. Send them as a real push would (same ids, so the endpoint can
        de-duplicate), in batches if the endpoint takes them, and report each
        record once: ``outcome.delivered(batch)`` or ``outcome.failed(batch,
        reason)`` (its lines then go to ``FILE.failed`` with that reason, to be
        replayed later). A record left unreported counts as failed. Don't retry
        here: replay is the retry. Overriding this method is what makes
        ``replays`` true; the default cannot replay.
        """
        raise CannotReplayError(f"destination {self.id!r} ({self.type}) cannot replay dead letters")

    @property
    def replays(self) -> bool:
        """Whether this destination can send its dead letters again (it overrides ``replay``)."""
        return type(self).replay is not Destination.replay

    def reserve(self, events: int) -> bool:
        """Hold room for the messages of ``events`` more events until ``release``.

        False when there is no room now: the http source then answers 503 with
        Retry-After instead of accepting events a full queue would drop. It is
        called after a request was parsed, before any of its events is pushed.
        """
        return True

    def release(self, events: int) -> None:
        """Give back what ``reserve(events)`` held, once those events were pushed."""

    def backlog(self) -> float:
        """How full the outgoing queue is (0.0-1.0); sources refuse work near 1.0."""
        return 0.0

    def stats(self) -> dict[str, int]:
        """Destination-specific counters for metrics (queue depth, dropped, ...)."""
        return {}

    def histograms(self) -> dict[str, dict[str, Any]]:
        """Destination-specific histograms for metrics, by name (``Histogram.snapshot()``)."""
        return {}


@dataclass(slots=True)
class DestinationStats:
    """Per-destination counters kept by the collector."""

    sent: int = 0
    """Events handed on (``push`` returned None): metrics call them ``queued``."""
    failed: int = 0
    """Events whose ``push`` raised; each is written to the events dead-letter file."""
    rejected: int = 0
    """Events the destination refused (``EventRejected``), answered as rejected."""
    skipped: dict[str, int] = field(default_factory=dict)

    def skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1
