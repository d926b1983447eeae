"""Transformer chains: resolved from ``next``/``before`` links once, run as a plain loop.

walkerOS's rules (shared/fixtures, validate ``semantics``): a chain given as a
step id is walked through each transformer's own ``next`` until a step has
none or an id repeats; a list is used as it is (a list in a ``next`` ends the
walk after its ids). A transformer's own ``before`` chain runs before its
``push``. Ids that name no transformer are load errors here (walkerOS stops
the walk silently, which hides a typo).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from collector.cache_steps import CacheStop
from collector.dead_letter import EVENTS_TEMPLATE, DeadLetterFile, dead_letter_path, first_line
from collector.destination import EventRejected
from collector.errors import ConfigError, suggestion
from collector.route import Route
from collector.transformer import TransformerContext

logger = logging.getLogger("flows.chain")

Event = dict[str, Any]
Push = Callable[[Event, TransformerContext], Any]


class ChainConfigError(ConfigError):
    """A ``next``/``before`` names what is not there; ``path`` says where."""


class StepRejected(EventRejected):
    """A transformer refused an event for good; ``where`` is ``transformers.ID``."""

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(reason)
        self.where = where


def chain_ids(start: Any, links: Mapping[str, Any], path: str) -> list[str]:
    """The transformer ids a chain runs, in order (see the module docstring)."""
    if start is None or start == []:
        return []
    if isinstance(start, list):
        ids = []
        for index, item in enumerate(start):
            if not isinstance(item, str):
                raise ChainConfigError(
                    f"{path}.{index}", "route objects in a chain are not supported; use step ids"
                )
            ids.append(known_step(item, links, f"{path}.{index}"))
        return ids
    if not isinstance(start, str):
        raise ChainConfigError(
            path, "conditional routes (match/one/many) are not supported; use a step id or a list"
        )
    ids = []
    current: Any = start
    where = path
    while isinstance(current, str) and current not in ids:
        ids.append(known_step(current, links, where))
        following = links[current]
        where = f"transformers.{current}.next"
        if isinstance(following, list):
            ids += chain_ids(following, links, where)
            break
        if following is not None and not isinstance(following, str):
            raise ChainConfigError(where, "conditional routes are not supported; use a step id")
        current = following
    return ids


def known_step(step_id: str, links: Mapping[str, Any], path: str) -> str:
    """``step_id`` when it names a transformer, else a ChainConfigError with a did-you-mean."""
    if step_id in links:
        return step_id
    names = ", ".join(links) or "none"
    hint = suggestion(step_id, links) or f" (transformers: {names})"
    raise ChainConfigError(path, f"no transformer named {step_id!r}{hint}")


@dataclass(slots=True)
class TransformerStats:
    """Per-transformer counters, read by metrics."""

    passed: int = 0
    changed: int = 0
    dropped: int = 0
    rejected: int = 0
    failed: int = 0


@dataclass(slots=True)
class ChainStep:
    """One transformer as a chain runs it: its push, its own ``before`` chain, its counters."""

    id: str
    push: Push
    logger: logging.Logger
    stores: dict[str, Any] = field(default_factory=dict)
    before: Chain | None = None
    stats: TransformerStats = field(default_factory=TransformerStats)
    dead_letter: DeadLetterFile | None = None
    transformer: Any = None
    """The transformer object itself (for ``flows test`` and shutdown)."""
    next: Any = None
    """Its ``next`` in the flow file, for walking a chain from it."""

    def __post_init__(self) -> None:
        if self.dead_letter is None:
            self.dead_letter = DeadLetterFile(
                dead_letter_path(EVENTS_TEMPLATE, f"transformer.{self.id}"), self.id, key="event"
            )


class Chain:
    """Transformers run in order on one event; built once, called per event."""

    __slots__ = ("ids", "steps")

    def __init__(self, steps: list[ChainStep]) -> None:
        self.steps = tuple(steps)
        self.ids = tuple(step.id for step in steps)

    def run(self, event: Event, ingest: dict[str, Any]) -> Any:
        """The event after every step, or None when one stopped the chain.

        A transformer cache hit with ``stop: true`` ends the chain with a
        ``CacheStop`` holding the cached event (a source's chain then sends it
        nowhere; a destination's goes on to the destination with it).

        A step that raises has the event written to its dead-letter file (so
        an accepted event is never silently lost); ``EventRejected`` goes up
        as ``StepRejected`` naming the transformer.
        """
        for step in self.steps:
            result = run_step(step, event, ingest)
            if result is None or type(result) is CacheStop:
                return result
            event = result
        return event


def run_step(step: ChainStep, event: Event, ingest: dict[str, Any]) -> Any:
    """One transformer (its own ``before`` chain first): the event to go on with,
    None (stopped), or a ``CacheStop``; counted per outcome."""
    if step.before is not None:
        before = step.before.run(event, ingest)
        if before is None:
            return None
        event = before.event if type(before) is CacheStop else before
    context = TransformerContext(ingest, step.logger, step.id, step.stores)
    try:
        result = step.push(event, context)
    except EventRejected as refusal:
        step.stats.rejected += 1
        raise StepRejected(f"transformers.{step.id}", refusal.reason) from None
    except Exception as error:
        step.stats.failed += 1
        logger.exception("transformer %s failed on event %r", step.id, event.get("name"))
        assert step.dead_letter is not None
        step.dead_letter.write([dict(event)], f"transformer failed: {_one_line(error)}")
        return None
    if result is None or result is True:
        step.stats.passed += 1
        return event
    if result is False:
        step.stats.dropped += 1
        return None
    if isinstance(result, dict):
        step.stats.changed += 1
        return result
    if isinstance(result, CacheStop):
        step.stats.passed += 1
        return result  # a cache hit with stop: the chain ends here
    step.stats.failed += 1
    assert step.dead_letter is not None
    step.dead_letter.write(
        [dict(event)], f"transformer returned {type(result).__name__}, not an event, None or False"
    )
    return None


@dataclass(slots=True)
class FanOut:
    """A ``many`` route sent one event down several branches: what each branch made of it."""

    events: list[Event]


MAX_HOPS = 256
"""walkerOS's cycle guard: no chain runs more steps than this for one event."""


class RoutedChain:
    """A chain whose way depends on the request (walkerOS route objects), resolved per event.

    Static chains are ``Chain`` (a tuple walked once at load); this one asks
    its route, and each step's ``next`` route, where to go for each event.
    """

    __slots__ = ("allow_many", "links", "start", "steps")

    def __init__(
        self,
        start: Route,
        steps: Mapping[str, ChainStep],
        links: Mapping[str, Route | None],
        *,
        allow_many: bool,
    ) -> None:
        self.start = start
        self.steps = steps
        self.links = links
        self.allow_many = allow_many

    def run(self, event: Event, ingest: dict[str, Any]) -> Any:
        """The event (None: stopped; ``CacheStop``; ``FanOut`` from a ``many``)."""
        hops = [0]
        return self._dispatch(self.start, {"ingest": ingest}, event, ingest, hops)

    def _dispatch(
        self,
        route: Route,
        context: Mapping[str, Any],
        event: Event,
        ingest: dict[str, Any],
        hops: list[int],
    ) -> Any:
        ids = route.select(context)
        if not ids:
            return event
        if route.explicit or len(ids) == 1:
            return self._walk(ids, route.explicit, event, ingest, hops)
        if not self.allow_many:  # a destination's before: walkerOS allows no many there
            return self._walk(ids, True, event, ingest, hops)
        branches: list[Event] = []
        for branch in ids:
            result = self._walk([branch], False, dict(event), dict(ingest), hops)
            if type(result) is FanOut:
                branches += result.events
            elif isinstance(result, dict):
                branches.append(result)
        return FanOut(branches)

    def _walk(
        self, ids: list[str], explicit: bool, event: Event, ingest: dict[str, Any], hops: list[int]
    ) -> Any:
        for step_id in ids:
            hops[0] += 1
            if hops[0] > MAX_HOPS:
                logger.warning("chain stopped after %d steps (a cycle?) at %s", MAX_HOPS, step_id)
                return event
            result = run_step(self.steps[step_id], event, ingest)
            if result is None or type(result) is CacheStop:
                return result
            event = result
        if explicit:
            return event
        link = self.links.get(ids[-1])
        if link is None:
            return event
        return self._dispatch(link, {"ingest": ingest}, event, ingest, hops)


def route_ids(spec: Any) -> list[tuple[str, str]]:
    """Every step id a route names, with where (``one.0.next``), to check at load."""
    found: list[tuple[str, str]] = []

    def walk(value: Any, where: str) -> None:
        if isinstance(value, str):
            found.append((value, where))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                walk(item, f"{where}.{index}" if where else str(index))
        elif isinstance(value, Mapping):
            for key in ("next", "one", "many"):
                if key in value:
                    walk(value[key], f"{where}.{key}" if where else key)

    walk(spec, "")
    return found


def _one_line(error: BaseException) -> str:
    name = type(error).__name__
    return f"{name}: {first_line(error)}" if str(error) else name
