"""Identify/group de-duplication shared by the worker processes of ``flows run --workers``.

Each worker has its own Python heap, so with per-process memory a user whose
events land on two workers was identified twice. This table lives in an
anonymous shared memory map made before the fork, so every worker reads and
writes the same slots: 64-bit words, set-associative (two ways per set), no
locks. Word writes are atomic on the platforms we run on; two workers
racing on the same new identity may both fire once, which Segment tolerates
(identify and group are idempotent), and never suppress a call that changed.

Python's ``hash`` of a str is salted per interpreter, but forked workers share
their parent's salt, so every worker hashes a key the same way.
"""

from __future__ import annotations

import mmap
from collections.abc import Hashable

_MASK = (1 << 64) - 1
_WAYS = 2
_WORDS_PER_WAY = 2  # the key's hash, then the traits fingerprint


class SharedSeenTable:
    """What ``SeenCache`` does, in memory every forked worker shares; bounded, never grows."""

    __slots__ = ("_map", "_set_mask", "_words", "max_size")

    def __init__(self, max_size: int) -> None:
        self.max_size = max_size
        sets = 1
        while sets * _WAYS < 2 * max_size:  # half full at max_size: few evictions
            sets *= 2
        self._set_mask = sets - 1
        self._map = mmap.mmap(-1, sets * _WAYS * _WORDS_PER_WAY * 8)  # MAP_SHARED, zeroed
        self._words = memoryview(self._map).cast("Q")

    def __len__(self) -> int:
        words = self._words
        return sum(1 for i in range(0, len(words), _WORDS_PER_WAY) if words[i])

    def _locate(self, key: Hashable) -> tuple[int, int]:
        """The key's 64-bit hash (never 0, which marks an empty way) and its set's first word."""
        key_hash = hash(key) & _MASK or 1
        return key_hash, (key_hash & self._set_mask) * (_WAYS * _WORDS_PER_WAY)

    def changed(self, key: Hashable, fingerprint: int) -> bool:
        """True (and remember it) on first sight of ``key`` or when its fingerprint changed."""
        key_hash, first = self._locate(key)
        value = fingerprint & _MASK
        words = self._words
        second = first + _WORDS_PER_WAY
        if words[first] == key_hash:
            way = first
        elif words[second] == key_hash:
            way = second
        elif not words[first]:
            way = first
        elif not words[second]:
            way = second
        else:  # both ways taken: evict one, chosen by a hash bit that the set index does not use
            way = second if key_hash >> 63 else first
        if words[way] == key_hash and words[way + 1] == value:
            return False
        words[way + 1] = value
        words[way] = key_hash
        return True

    def forget(self, key: Hashable) -> None:
        """Drop ``key`` so its next call fires again (used when a send failed)."""
        key_hash, first = self._locate(key)
        words = self._words
        for way in (first, first + _WORDS_PER_WAY):
            if words[way] == key_hash:
                words[way] = 0
