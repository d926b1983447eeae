"""Queue room held for admitted requests, so what is answered 200 always fits.

The http source calls ``reserve`` for a whole request once its body is
parsed and answers 503 when there is no room; the destination's pushes then
always find room. A push outside any reservation (a direct
``Collector.push``) finds the queue full only when nothing is held.
"""

from __future__ import annotations

import threading
from collections.abc import Callable


class QueueRoom:
    """Room in a queue of ``capacity`` items: what is queued (``depth()``) plus what is held."""

    def __init__(self, capacity: int, depth: Callable[[], int]) -> None:
        self.capacity = capacity
        self._depth = depth
        self._held = 0
        self._lock = threading.Lock()

    @property
    def held(self) -> int:
        return self._held

    def reserve(self, items: int) -> bool:
        """Hold room for ``items`` until ``release``; False when there is none now.

        One request larger than the whole queue is let in when nothing else
        is queued or held, so it cannot be refused forever.
        """
        with self._lock:
            taken = self._held + self._depth()
            if taken + items > self.capacity and taken:
                return False
            self._held += items
            return True

    def release(self, items: int) -> None:
        with self._lock:
            self._held -= items

    def full_for_unreserved(self) -> bool:
        """Whether a push that holds no room must be dropped: nothing held, queue full."""
        return not self._held and self._depth() >= self.capacity

    def backlog(self) -> float:
        """How full the queue is, 0.0-1.0 (what sources compare with ``queueHighWater``)."""
        return self._depth() / self.capacity
