"""The ``memory`` store: an in-process, thread-safe key-value map with TTL and a bound.

It is what a step's ``cache`` uses when it names no ``store``, and a
``stores`` entry of its own (``"package": "@walkeros/store-memory"``). Its
settings are walkerOS's: ``maxEntries`` (the bound on entries, 10000 as
walkerOS's built-in cache), ``maxSize`` (an optional budget in bytes, each
entry estimated as its key plus its JSON) and ``lowWaterMark``.

Eviction follows walkerOS's built-in cache: reads keep an entry fresh (LRU);
when a new key would go over ``maxEntries``, expired entries go first, then
the least recently used, down to ``lowWaterMark`` of the bound in one pass, so
the scan is paid once per many writes, not on each. Expiry uses a monotonic
clock (a wall-clock jump neither keeps nor drops entries) and is checked on
read; expired entries also go at the next eviction pass.

Values are kept as given, not copied: callers hand over values they no longer
change (events are never changed in place in this pipeline).
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field

from collector.store import Store

Clock = Callable[[], float]
"""Seconds from any fixed point, never going back (``time.monotonic``)."""

_NEVER = math.inf


class MemorySettings(BaseModel):
    """How much the store may hold."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    max_entries: int = Field(
        10000, alias="maxEntries", ge=1, description="The most entries kept at once"
    )
    max_size: int | None = Field(
        None,
        alias="maxSize",
        ge=1,
        description="A budget in bytes (key plus JSON of the value); none by default",
    )
    low_water_mark: float = Field(
        0.8,
        alias="lowWaterMark",
        gt=0,
        le=1,
        description="On overflow, evict down to this fraction of maxEntries in one pass",
    )


_COUNTERS = (
    "hits",
    "misses",
    "writes",
    "deletes",
    "evictions_entries",
    "evictions_size",
    "evictions_ttl",
    "too_large",
)


class MemoryStore(Store[MemorySettings]):
    """Keys to values in this process; safe to share between threads."""

    type = "memory"
    Settings = MemorySettings

    def __init__(
        self,
        settings: MemorySettings | None = None,
        *,
        step_id: str | None = None,
        clock: Clock = time.monotonic,
    ) -> None:
        super().__init__(settings or MemorySettings.model_validate({}), step_id=step_id)
        self._clock = clock
        self._lock = threading.Lock()
        # key -> (value, expires at on the clock, size in bytes or 0)
        self._entries: OrderedDict[str, tuple[Any, float, int]] = OrderedDict()
        self._size = 0
        self._max_entries = self.settings.max_entries
        self._max_size = self.settings.max_size
        self._target = min(
            self._max_entries - 1, math.floor(self._max_entries * self.settings.low_water_mark)
        )
        self._counts = dict.fromkeys(_COUNTERS, 0)

    def get(self, key: str) -> Any | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                self._counts["misses"] += 1
                return None
            if entry[1] <= self._clock():
                self._drop(key)
                self._counts["evictions_ttl"] += 1
                self._counts["misses"] += 1
                return None
            self._entries.move_to_end(key)
            self._counts["hits"] += 1
            return entry[0]

    def set(self, key: str, value: Any, ttl: float | None = None) -> None:
        size = _estimate(key, value) if self._max_size is not None else 0
        with self._lock:
            now = self._clock()
            expires = _NEVER if ttl is None else now + ttl
            self._drop(key)
            self._counts["writes"] += 1
            if self._max_size is not None and size > self._max_size:
                self._counts["too_large"] += 1  # kept nowhere rather than flushing all else
                return
            if len(self._entries) >= self._max_entries:
                self._evict_entries(now)
            if self._max_size is not None and self._size + size > self._max_size:
                self._evict_size(now, self._max_size - size)
            self._entries[key] = (value, expires, size)
            self._size += size

    def delete(self, key: str) -> None:
        with self._lock:
            if self._drop(key):
                self._counts["deletes"] += 1

    def counters(self) -> dict[str, int]:
        """A snapshot of the monotonic counters (walkerOS's names), for metrics."""
        with self._lock:
            return dict(self._counts)

    def __len__(self) -> int:
        """Entries held, expired ones not yet dropped included."""
        with self._lock:
            return len(self._entries)

    def shutdown(self, timeout: float) -> None:
        with self._lock:
            self._entries.clear()
            self._size = 0

    def _drop(self, key: str) -> bool:
        entry = self._entries.pop(key, None)
        if entry is None:
            return False
        self._size -= entry[2]
        return True

    def _purge_expired(self, now: float) -> None:
        expired = [key for key, (_, expires, _) in self._entries.items() if expires <= now]
        for key in expired:
            self._drop(key)
        self._counts["evictions_ttl"] += len(expired)

    def _evict_entries(self, now: float) -> None:
        """Make room for one new key: expired first, then the least recently used."""
        self._purge_expired(now)
        if len(self._entries) < self._max_entries:
            return
        while len(self._entries) > self._target:
            _, (_, _, size) = self._entries.popitem(last=False)
            self._size -= size
            self._counts["evictions_entries"] += 1

    def _evict_size(self, now: float, budget: int) -> None:
        """Bring the bytes held down to ``budget``: expired first, then the least recently used."""
        self._purge_expired(now)
        while self._size > budget and self._entries:
            _, (_, _, size) = self._entries.popitem(last=False)
            self._size -= size
            self._counts["evictions_size"] += 1


def _estimate(key: str, value: Any) -> int:
    """Bytes an entry costs, as walkerOS estimates it: the key and the value's JSON."""
    if isinstance(value, str):
        return len(key) + len(value)
    if isinstance(value, bytes | bytearray):
        return len(key) + len(value)
    return len(key) + len(orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS, default=repr))
