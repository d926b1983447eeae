"""The collector: validate an event, enrich it, and fan it out to every destination.

Each destination gets the event through its own compiled mapping and consent
gate; one destination failing never affects the others.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, StrictBool, StrictStr, ValidationError

from collector.cache import CacheProbe, EventCache
from collector.cache_steps import CacheStop, check_duplicate
from collector.chain import Chain, FanOut, RoutedChain, StepRejected
from collector.consent import is_granted, merge_consent
from collector.dead_letter import EVENTS_TEMPLATE, DeadLetterFile, dead_letter_path, first_line
from collector.destination import (
    Destination,
    DestinationConfig,
    DestinationStats,
    EventRejected,
    PushContext,
    ShutdownReport,
    Skipped,
)
from collector.errors import ConfigError
from collector.event import Event, Properties, fill_defaults, validate_event
from collector.mapping import CompiledMapping, MappingConfigError, compile_mapping
from collector.registry import load_package
from collector.step import Step

logger = logging.getLogger("flows.collector")

SENT = "sent"
FAILED = "failed"
SKIPPED_CONSENT = Skipped("consent")
SKIPPED_IGNORE = Skipped("ignore")
SKIPPED_TRANSFORMER = Skipped("transformer")
"""A transformer of the destination's ``before`` chain stopped the event."""


class CollectorConfig(BaseModel):
    """Defaults the collector adds to every event (walkerOS ``Collector.InitConfig``)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    globals: Properties = Field(default_factory=dict)
    consent: dict[str, StrictBool] = Field(default_factory=dict)
    user: dict[str, Any] = Field(default_factory=dict)
    custom: Properties = Field(default_factory=dict)
    source: dict[str, Any] | None = Field(
        None, description="Set as the event's source when it has none"
    )
    globals_static: Properties = Field(
        default_factory=dict,
        alias="globalsStatic",
        description="walkerOS static globals; on a server the same as globals (globals win)",
    )
    tagging: float | None = Field(
        None, description="Tagging version, set as the event's version.tagging when it has none"
    )
    run: StrictBool | None = Field(
        None, description="walkerOS: start at once; a server always does"
    )
    name: StrictStr | None = Field(None, description="The collector's name; accepted")
    verbose: StrictBool | None = Field(None, description="walkerOS verbose logging; accepted")
    session_static: dict[str, Any] | None = Field(
        None, alias="sessionStatic", description="walkerOS browser session data; ignored"
    )
    on_error: Any = Field(None, alias="onError", description="walkerOS JS handler; ignored")
    on_log: Any = Field(None, alias="onLog", description="walkerOS JS handler; ignored")
    hooks: Any = Field(None, description="walkerOS JS hooks; ignored")


class DestinationSetupError(ConfigError):
    """A destination's config is invalid; ``path`` says where."""


class ActiveDestination:
    """A destination with its compiled mapping, consent requirement and counters."""

    __slots__ = (
        "before",
        "cache",
        "consent",
        "dead_letter",
        "destination",
        "id",
        "mapping",
        "stats",
    )

    def __init__(
        self,
        destination: Destination[Any],
        mapping: CompiledMapping,
        consent: Mapping[str, bool] | None = None,
        dead_letter: DeadLetterFile | None = None,
    ) -> None:
        self.destination = destination
        self.id = destination.id
        self.mapping = mapping
        self.consent = dict(consent) if consent else None
        self.stats = DestinationStats()
        self.dead_letter = dead_letter or DeadLetterFile(
            dead_letter_path(EVENTS_TEMPLATE, self.id),
            self.id,
            key="event",
            secrets=_secrets(destination.settings),
        )
        self.before: Chain | RoutedChain | None = None
        """The destination's ``before`` transformer chain, run for it alone."""
        self.cache: EventCache | None = None
        """The destination's ``cache``: events seen within its ttl are skipped as duplicates."""

    def route(
        self, event: Mapping[str, Any], consent: Mapping[str, bool]
    ) -> tuple[Mapping[str, Any], PushContext] | Skipped:
        """Consent gate and mapping for one event: what ``push`` would get, or why not."""
        if self.consent is not None and not is_granted(self.consent, consent):
            return SKIPPED_CONSENT
        result = self.mapping.process(event, consent)
        if result.ignore:
            return SKIPPED_IGNORE
        rule = result.rule
        if rule is not None and rule.consent is not None and not is_granted(rule.consent, consent):
            return SKIPPED_CONSENT
        context = PushContext(rule, result.data, consent, self.destination.logger, result.silent)
        return result.event, context

    def deliver(
        self,
        event: Mapping[str, Any],
        consent: Mapping[str, bool],
        ingest: dict[str, Any] | None = None,
    ) -> str | Skipped | EventRejected:
        """Run one event through this destination; never raises.

        An event the destination refuses for good comes back as its
        ``EventRejected``; one whose mapping or ``push`` raised is written to the
        events dead-letter file with the reason, never only logged. The
        ``before`` chain runs first, on ``ingest`` (the request's description).
        """
        seen = None
        if self.cache is not None and self.cache.stop:
            seen = check_duplicate(self.cache, event, ingest)
            if isinstance(seen, Skipped):
                self.stats.skip(seen.reason)
                return seen
        if self.before is not None:
            try:
                changed: Any = self.before.run(dict(event), {} if ingest is None else ingest)
            except EventRejected as refusal:
                self.stats.rejected += 1
                return refusal
            if changed is None:
                self.stats.skip(SKIPPED_TRANSFORMER.reason)
                return SKIPPED_TRANSFORMER
            event = changed.event if isinstance(changed, CacheStop) else changed
        if self.cache is not None and not self.cache.stop:
            seen = check_duplicate(self.cache, event, ingest)
            if isinstance(seen, Skipped):
                self.stats.skip(seen.reason)
                return seen
        outcome = self._push(event, consent)
        if outcome == SENT and isinstance(seen, CacheProbe):
            seen.remember(True)
        return outcome

    def _push(
        self, event: Mapping[str, Any], consent: Mapping[str, bool]
    ) -> str | Skipped | EventRejected:
        try:
            routed = self.route(event, consent)
            if isinstance(routed, Skipped):
                self.stats.skip(routed.reason)
                return routed
            outcome = self.destination.push(*routed)
        except EventRejected as refusal:
            self.stats.rejected += 1
            return refusal
        except Exception as error:
            self.stats.failed += 1
            logger.exception("destination %s failed on event %r", self.id, event.get("name", ""))
            self.dead_letter.write([dict(event)], f"push failed: {_one_line(error)}")
            return FAILED
        if outcome is None:
            self.stats.sent += 1
            return SENT
        self.stats.skip(outcome.reason)
        return outcome


def build_destination(
    destination_id: str,
    package: str | type[Destination[Any]],
    config: Mapping[str, Any],
    path: str = "",
    settings: BaseModel | None = None,
) -> ActiveDestination:
    """Create a destination from its package and config; errors name the config path.

    ``settings``: already validated (a flow file's steps are checked once, at load).
    """
    where = path or f"destinations.{destination_id}"
    cls = load_package(package) if isinstance(package, str) else package
    if not (isinstance(cls, type) and issubclass(cls, Destination)):
        raise DestinationSetupError(f"{where}.package", f"{package!r} is not a Destination class")
    try:
        common = DestinationConfig.model_validate(config)
    except ValidationError as error:
        first = error.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise DestinationSetupError(f"{where}.config.{loc}", first["msg"]) from None
    try:
        if settings is None:
            settings = cls.Settings.model_validate(common.settings)
    except ValidationError as error:
        first = error.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise DestinationSetupError(f"{where}.config.settings.{loc}", first["msg"]) from None
    destination = cls(settings, destination_id=destination_id)
    try:
        mapping = compile_mapping(
            config, f"{where}.config", compile_settings=destination.compile_rule_settings
        )
    except MappingConfigError as error:
        raise DestinationSetupError(error.path, error.reason) from None
    return ActiveDestination(destination, mapping, common.consent)


class _Request:
    """``Collector.request``'s block: begin, then end even when a push raised."""

    __slots__ = ("destinations",)

    def __init__(self, destinations: list[Destination[Any]]) -> None:
        self.destinations = destinations

    def __enter__(self) -> None:
        for destination in self.destinations:
            destination.begin_request()

    def __exit__(self, *_: object) -> None:
        for destination in self.destinations:
            try:
                destination.end_request()
            except Exception:
                logger.exception("destination %s failed to end a request", destination.id)


_NO_REQUEST = nullcontext()


def _secrets(settings: BaseModel) -> list[str]:
    """The destination's secret settings, kept out of its dead-letter reasons.

    Top-level ``SecretStr`` fields, and whatever a settings model's own
    ``secrets()`` names (the api destination's header values).
    """
    found = [
        value.get_secret_value()
        for value in vars(settings).values()
        if isinstance(value, SecretStr)
    ]
    named = getattr(settings, "secrets", None)
    if callable(named):
        found += [value for value in named() if isinstance(value, str) and value]
    return found


def _one_line(error: BaseException) -> str:
    """``KeyError: 'sku'``: the error's type, and its first line when it has one."""
    name = type(error).__name__
    return f"{name}: {first_line(error)}" if str(error) else name


@dataclass(slots=True)
class PushResult:
    """The enriched event and what each destination did with it."""

    event: Event
    outcomes: dict[str, str | Skipped | EventRejected]
    refusals: list[tuple[str, EventRejected]] | None = None
    """The steps that refused the event for good (``destinations.ID``,
    ``transformers.ID``), with why (None: none did)."""
    dropped: bool = False
    """A transformer of the source's chain stopped the event before any destination."""


class Collector:
    """Validates, enriches and fans out events; ``push`` is safe from many threads."""

    def __init__(
        self,
        config: CollectorConfig | Mapping[str, Any] | None = None,
        destinations: list[ActiveDestination] | None = None,
    ) -> None:
        self.config = (
            config
            if isinstance(config, CollectorConfig)
            else CollectorConfig.model_validate(config or {})
        )
        self.destinations: list[ActiveDestination] = list(destinations or [])
        self._counter = itertools.count(1)
        self._globals = {**self.config.globals_static, **self.config.globals}
        self._tagging = self.config.tagging
        self._consent = self.config.consent
        self._user = self.config.user
        self._custom = self.config.custom
        self._source = self.config.source
        self._lock = threading.Lock()
        self._started = False
        self.steps: list[Step[Any]] = []
        """Stores and transformers: started before and shut down after the destinations."""
        self.transformer_stats: dict[str, Any] = {}
        """Each transformer's counters (``TransformerStats``) by id, for metrics."""
        self._per_request: list[Destination[Any]] = []

    def add_steps(self, steps: list[Step[Any]]) -> None:
        """Add stores and transformers to start and shut down with the flow; before ``start``."""
        self.steps.extend(steps)

    def add_destination(self, destination: ActiveDestination) -> None:
        """Add a destination; call before ``start``."""
        self.destinations.append(destination)

    def start(self) -> None:
        """Initialise every destination (once)."""
        with self._lock:
            if self._started:
                return
            for step in self.steps:
                step.init()
            for active in self.destinations:
                active.destination.init()
            self._per_request = [
                active.destination
                for active in self.destinations
                if type(active.destination).end_request is not Destination.end_request
            ]
            self._started = True

    @property
    def ready(self) -> bool:
        return self._started

    def request(self) -> AbstractContextManager[None]:
        """Around the pushes of one request's events (on one thread): destinations that
        work per request (``Destination.end_request``) do it when the block ends."""
        return _Request(self._per_request) if self._per_request else _NO_REQUEST

    def prepare(self, raw: Any) -> Event:
        """Validate and enrich one event without sending it (raises EventValidationError)."""
        event = validate_event(raw)
        if self._globals:
            event["globals"] = {**self._globals, **event.get("globals", {})}
        if self._user:
            event["user"] = {**self._user, **event.get("user", {})}  # type: ignore[typeddict-item]
        if self._custom:
            event["custom"] = {**self._custom, **event.get("custom", {})}
        consent = event.get("consent")
        if self._consent or consent is None:
            event["consent"] = merge_consent(self._consent, consent)
        if self._source is not None and "source" not in event:
            event["source"] = dict(self._source)  # type: ignore[typeddict-item]
        if "count" not in event:
            event["count"] = next(self._counter)
        if self._tagging is not None:
            version = event.get("version")
            if version is None:
                event["version"] = {"tagging": self._tagging}
            elif "tagging" not in version:
                event["version"] = {**version, "tagging": self._tagging}
        return fill_defaults(event)

    def push(
        self,
        raw: Any,
        chain: Chain | RoutedChain | None = None,
        ingest: dict[str, Any] | None = None,
    ) -> PushResult:
        """Validate, enrich and deliver one event to every destination.

        ``chain`` is the source's ``next`` transformer chain, run on the
        enriched event before any destination; ``ingest`` describes the request.
        """
        event = self.prepare(raw)
        if chain is not None:
            try:
                changed = chain.run(event, {} if ingest is None else ingest)  # type: ignore[arg-type]
            except StepRejected as refusal:
                return PushResult(event, {}, [(refusal.where, refusal)])
            if changed is None or isinstance(changed, CacheStop):
                return PushResult(event, {}, None, dropped=True)
            if type(changed) is FanOut:
                return self._fan_out(event, changed.events, ingest)
            event = changed
        return self._deliver(event, ingest)

    def _deliver(self, event: Any, ingest: dict[str, Any] | None) -> PushResult:
        consent = event["consent"]
        outcomes: dict[str, str | Skipped | EventRejected] = {}
        refusals = None
        for active in self.destinations:
            outcome = active.deliver(event, consent, ingest)
            outcomes[active.id] = outcome
            if isinstance(outcome, EventRejected):
                refusals = [*(refusals or ()), (f"destinations.{active.id}", outcome)]
        return PushResult(event, outcomes, refusals)

    def _fan_out(
        self, event: Any, branches: list[Any], ingest: dict[str, Any] | None
    ) -> PushResult:
        """A ``many`` route: each branch's event goes to the destinations on its own.

        The request held queue room for one event; the other branches hold
        their own first, so what is answered 200 still fits (else the event is
        refused, nothing of it sent).
        """
        if not branches:
            return PushResult(event, {}, None, dropped=True)
        extra = len(branches) - 1
        busy = self.reserve(extra) if extra else None
        if busy is not None:
            refusal = EventRejected(
                f"no queue room for the {len(branches)} branches of a many route; retry later"
            )
            return PushResult(event, {}, [(f"destinations.{busy}", refusal)])
        try:
            results = [self._deliver(branch, ingest) for branch in branches]
        finally:
            if extra:
                self.release(extra)
        refusals = [item for result in results for item in (result.refusals or ())]
        return PushResult(results[0].event, results[0].outcomes, refusals or None)

    def deliver_to(
        self,
        active: ActiveDestination,
        event: Any,
        chain: Chain | RoutedChain | None = None,
        ingest: dict[str, Any] | None = None,
    ) -> list[str | Skipped | EventRejected]:
        """One prepared event through the source's chain, then to ``active`` alone.

        The durable buffer's delivery: the event was validated and enriched
        when it was accepted; each destination reads it on its own. An
        outcome per event the chain let through (none: it stopped it).
        """
        if chain is not None:
            try:
                changed = chain.run(event, {} if ingest is None else ingest)
            except StepRejected as refusal:
                return [refusal]
            if changed is None or isinstance(changed, CacheStop):
                return []
            branches = changed.events if type(changed) is FanOut else [changed]
        else:
            branches = [event]
        return [active.deliver(branch, branch["consent"], ingest) for branch in branches]

    def request_for(self, active: ActiveDestination) -> AbstractContextManager[None]:
        """``request`` for one destination: its per-request work when the block ends."""
        if active.destination in self._per_request:
            return _Request([active.destination])
        return _NO_REQUEST

    @property
    def has_chains(self) -> bool:
        """Whether any destination has a ``before`` chain (so sources must describe requests)."""
        return any(active.before is not None for active in self.destinations)

    def reserve(self, events: int) -> str | None:
        """Hold room for ``events`` in every destination (see ``Destination.reserve``).

        None when all of them have room; else the id of the first that has not,
        and nothing stays held.
        """
        held: list[Destination[Any]] = []
        for active in self.destinations:
            if not active.destination.reserve(events):
                for destination in held:
                    destination.release(events)
                return active.id
            held.append(active.destination)
        return None

    def release(self, events: int) -> None:
        """Give back the room ``reserve(events)`` held."""
        for active in self.destinations:
            active.destination.release(events)

    @property
    def blocking(self) -> bool:
        """Whether any destination's ``push`` may block (see ``Destination.blocking``)."""
        return any(active.destination.blocking for active in self.destinations)

    def shutdown(self, timeout: float = 10.0) -> dict[str, ShutdownReport]:
        """Shut every destination down, sharing ``timeout`` seconds between them."""
        import time

        deadline = time.monotonic() + timeout
        reports: dict[str, ShutdownReport] = {}
        for active in self.destinations:
            remaining = max(0.0, deadline - time.monotonic())
            try:
                reports[active.id] = active.destination.shutdown(remaining)
            except Exception as error:
                logger.exception("destination %s failed to shut down", active.id)
                reports[active.id] = ShutdownReport(
                    detail=f"shutdown failed: {type(error).__name__}"
                )
        for step in self.steps:
            try:
                step.shutdown(max(0.0, deadline - time.monotonic()))
            except Exception:
                logger.exception("%s %s failed to shut down", step.kind, step.id)
        return reports
