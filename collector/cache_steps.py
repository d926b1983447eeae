"""What a ``cache`` hit means for each kind of step, as wrappers the chain compiler applies.

- Transformer (``cached_push``): the probe is taken on the event coming in. A
  hit returns the stored result (``update`` applied, status HIT) without
  calling ``push``; with ``stop: true`` it comes back as ``CacheStop(event)``:
  the chain ends there with that event, and on a source's chain the pipeline
  ends too (walkerOS: "downstream transformers and destinations are
  skipped"; the source answers as accepted). On a miss ``push`` runs and its
  result (the event it returned, or the one it left unchanged) is stored; a
  ``push`` that stops the chain (False) or raises stores nothing. ``update``
  with status MISS applies to what goes on, not to what is stored.
- Destination (``check_duplicate``, ``dedup_push``): a hit is a duplicate: the
  push is skipped and answered ``Skipped("duplicate")``, which the collector
  counts per reason like any skip. With ``stop: false`` the check runs on the
  event the destination's ``before`` chain produced (just before ``push``),
  with ``stop: true`` on the event before that chain (so a duplicate skips the
  chain too). Only a push that was handed on (``push`` returned None) marks the
  event seen; walkerOS marks failed pushes too, so a retry would be dropped as
  a duplicate. The stored value is ``True``; ``update`` does not apply.
- Source (``cached_answer``): keyed on ``ingest`` alone (no event exists yet).
  With ``stop: true`` (the default for sources) a hit answers with the stored
  answer (``update`` applied, status HIT: ``headers.X-Cache``) and the request
  runs no pipeline at all, so it suits idempotent requests (a GET whose answer
  is the same each time), or a key unique to a retried request (an idempotency
  header) to answer retries without sending their events twice. A miss runs
  the request and stores its answer (not an error answer, status 400 and up:
  an overload 503 must not stick for the ttl). With ``stop: false`` a hit only
  counts as seen and the request runs as usual. Answers are walkerOS's
  respond shape, ``{"status": int, "headers": {...}, "body": ...}``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal, TypeAlias

from collector.cache import CacheProbe, EventCache
from collector.destination import PushContext, Skipped
from collector.transformer import Event, TransformerContext

DUPLICATE: Final = Skipped("duplicate")
"""A destination's outcome for an event its cache has seen within the ttl."""


@dataclass(frozen=True, slots=True)
class CacheStop:
    """A transformer cache hit with ``stop: true``: the chain ends here, with ``event``."""

    event: Event


TransformerPush: TypeAlias = Callable[[Event, TransformerContext], "Event | Literal[False] | None"]
CachedTransformerPush: TypeAlias = Callable[
    [Event, TransformerContext], "Event | CacheStop | Literal[False] | None"
]
DestinationPush: TypeAlias = Callable[[Mapping[str, Any], PushContext], "Skipped | None"]
DedupPush: TypeAlias = Callable[
    [Mapping[str, Any], PushContext, "Mapping[str, Any] | None"], "Skipped | None"
]
Answer: TypeAlias = dict[str, Any]
"""``{"status": 200, "headers": {...}, "body": ...}``: walkerOS's respond options."""
AnswerHandler: TypeAlias = Callable[["Mapping[str, Any] | None"], Awaitable[Answer]]


def cached_push(push: TransformerPush, cache: EventCache) -> CachedTransformerPush:
    """``push`` behind ``cache``: a hit returns the stored event without calling ``push``."""

    def push_cached(
        event: Event, context: TransformerContext
    ) -> Event | CacheStop | Literal[False] | None:
        probe = cache.probe(event, context.ingest)
        if probe is None:
            return push(event, context)
        if isinstance(probe.value, dict):
            stored: Event = probe.updated(probe.value, "HIT")
            return CacheStop(stored) if cache.stop else stored
        result = push(event, context)
        if result is False:
            return False
        settled = event if result is None else result
        probe.remember(settled)
        if probe.rule.update:
            return probe.updated(settled, "MISS")  # type: ignore[no-any-return]
        return result

    return push_cached


def check_duplicate(
    cache: EventCache, event: Mapping[str, Any], ingest: Mapping[str, Any] | None
) -> CacheProbe | Skipped | None:
    """``DUPLICATE`` on a hit; on a miss the probe to ``remember(True)`` once the push is handed on.

    None: no rule applies (or its key is empty), the event is not de-duplicated.
    """
    probe = cache.probe(event, ingest)
    if probe is None:
        return None
    if probe.hit:
        return DUPLICATE
    return probe


def dedup_push(push: DestinationPush, cache: EventCache) -> DedupPush:
    """A destination's ``push`` that skips events ``cache`` has seen (the ``stop: false`` check).

    The result takes the event's ``ingest`` as a third argument, since the
    destination's ``PushContext`` does not carry it.
    """

    def push_once(
        event: Mapping[str, Any], context: PushContext, ingest: Mapping[str, Any] | None
    ) -> Skipped | None:
        checked = check_duplicate(cache, event, ingest)
        if isinstance(checked, Skipped):
            return checked
        outcome = push(event, context)
        if outcome is None and checked is not None:
            checked.remember(True)
        return outcome

    return push_once


def cached_answer(handle: AnswerHandler, cache: EventCache) -> AnswerHandler:
    """A source's request handler behind ``cache``: ``(ingest) -> answer``, see the module doc."""

    async def answer(ingest: Mapping[str, Any] | None) -> Answer:
        probe = cache.probe(None, ingest)
        if probe is None:
            return await handle(ingest)
        if not cache.stop:
            if not probe.hit:
                probe.remember(True)
            return await handle(ingest)
        if isinstance(probe.value, dict):
            return probe.updated(probe.value, "HIT")  # type: ignore[no-any-return]
        response = await handle(ingest)
        status = response.get("status", 200)
        if isinstance(status, int) and status < 400:
            probe.remember(response)
        return probe.updated(response, "MISS")  # type: ignore[no-any-return]

    return answer
