"""A token bucket: at most ``rate`` takes per second, waiting by sleeping (never spinning).

``flows replay --rate N`` paces the records it hands a destination with one,
so a replay of a large dead-letter file does not hit a rate-limited API with
everything at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


class TokenBucket:
    """``take()`` returns at once while tokens are left, else sleeps until one is.

    The bucket holds at most ``burst`` tokens (default 1: no burst, so no
    one-second window ever sees more than ``rate`` takes, plus the first) and
    gains ``rate`` per second.
    """

    def __init__(
        self,
        rate: float,
        *,
        burst: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be more than 0, not {rate}")
        if burst < 1:
            raise ValueError(f"burst must be 1 or more, not {burst}")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._sleep = sleep
        self._tokens = burst
        self._last = clock()

    def take(self) -> None:
        """One token: now if there is one, else after sleeping the time one takes to come."""
        self._refill()
        if self._tokens < 1:
            self._sleep((1 - self._tokens) / self.rate)
            self._refill()
            self._tokens = max(self._tokens, 1.0)  # a short sleep must not leave us owing
        self._tokens -= 1

    def paced(self, items: Iterable[T]) -> Iterator[T]:
        """``items``, each after a ``take()``."""
        for item in items:
            self.take()
            yield item

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        self._last = now
