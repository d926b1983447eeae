"""Who a call is about, and whether identify/group already told Segment.

The walkerOS original keeps one slot per destination, so interleaved users on
a server re-fire identify almost every time. Here the state is kept per
identity in a bounded LRU, keyed by a canonical hash of the traits (key
order does not matter).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any, Protocol

import orjson


def traits_fingerprint(traits: Any) -> int:
    """A key-order-independent fingerprint of resolved traits."""
    if traits is None:
        return 0
    return hash(orjson.dumps(traits, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS))


class SeenMemory(Protocol):
    """What identify/group de-duplication needs: ``SeenCache``, or ``SharedSeenTable`` for workers."""

    def changed(self, key: Hashable, fingerprint: int) -> bool: ...

    def forget(self, key: Hashable) -> None: ...

    def __len__(self) -> int: ...


class SeenCache:
    """A bounded LRU of identity -> last traits fingerprint."""

    __slots__ = ("_entries", "_lock", "max_size")

    def __init__(self, max_size: int = 100_000) -> None:
        self.max_size = max_size
        self._entries: OrderedDict[Hashable, int] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def changed(self, key: Hashable, fingerprint: int) -> bool:
        """True (and remember it) on first sight of ``key`` or when its fingerprint changed."""
        entries = self._entries
        with self._lock:
            previous = entries.get(key)
            if previous == fingerprint:
                entries.move_to_end(key)
                return False
            entries[key] = fingerprint
            entries.move_to_end(key)
            if len(entries) > self.max_size:
                entries.popitem(last=False)
            return True

    def forget(self, key: Hashable) -> None:
        """Drop ``key`` so its next call fires again (used when a send failed)."""
        with self._lock:
            self._entries.pop(key, None)
