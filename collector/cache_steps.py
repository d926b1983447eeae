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
- Destination (``check_duplicate``, used by ``ActiveDestination.deliver``): a
  hit is a duplicate: the push is skipped and answered ``Skipped("duplicate")``,
  which the collector counts per reason like any skip. With ``stop: false`` the
  check runs on the event the destination's ``before`` chain produced (just
  before ``push``),
  with ``stop: true`` on the event before that chain (so a duplicate skips the
  chain too). Only a push that was handed on (``push`` returned None) marks the
  event seen; walkerOS marks failed pushes too, so a retry would be dropped as
  a duplicate. The stored value is ``True``; ``update`` does not apply.
- Source: not applied here. walkerOS answers a source cache hit from the cache
  without running the request, which for a collector would drop the events of
  every later request with the same key; ``flows validate`` warns that a
  source's ``cache`` has no effect.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal, TypeAlias

from collector.cache import CacheProbe, EventCache
from collector.destination import Skipped
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
