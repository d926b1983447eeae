"""When to retry a failed upload, and how long to wait: one policy for every destination.

A batch that fails with a retryable answer (a connection error, a timeout,
408, 429, most 5xx) is tried again after an exponential backoff, up to
``max_retries`` times and for at most ``max_total`` seconds after its first
failure. An answer with ``Retry-After`` is waited out instead (capped at
``max_retry_after``) without using up a retry, for at most ``max_rate_limit``
seconds in all; a wait that would go past that gives the batch up at once, as
the Segment SDK does. The Segment destination hands the same limits to its
SDK, which keeps its own schedule (first retry at once, then 0.5 s doubling).
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Final

MAX_RETRY_AFTER: Final = 300.0
"""Seconds one ``Retry-After`` may ask for at most (the Segment SDK's cap)."""
_PERMANENT_5XX: Final = frozenset({501, 505})
"""Not implemented, HTTP version not supported: asking again gets the same answer."""


def retryable_status(status: int) -> bool:
    """Whether an HTTP status may succeed when asked again (408, 429, 5xx but 501/505)."""
    if status in (408, 429):
        return True
    return 500 <= status < 600 and status not in _PERMANENT_5XX


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """A ``Retry-After`` header in seconds (delta or HTTP date); None when absent or unusable.

    Negative or past values are None (no wait asked for); the cap is the policy's.
    """
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:  # "-0000": UTC, whatever the host's zone is
        moment = moment.replace(tzinfo=UTC)
    delay = moment.timestamp() - (time.time() if now is None else now)
    return delay if delay > 0 else None


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how long a failed batch is tried again (seconds throughout)."""

    max_retries: int = 10
    base: float = 0.5
    """The first backoff; each further retry doubles it."""
    cap: float = 60.0
    """The longest single backoff."""
    max_total: float = 600.0
    """Longest time from a batch's first failure until it is given up (backoff retries)."""
    max_retry_after: float = MAX_RETRY_AFTER
    max_rate_limit: float = 1800.0
    """Longest time in all a batch waits out ``Retry-After`` answers."""
    jitter: float = 0.1
    """Up to this share of each backoff is added at random, so senders spread out."""

    def backoff(self, retry: int) -> float:
        """The wait before retry number ``retry`` (1, 2, ...), jitter included, within ``cap``."""
        delay = min(self.cap, self.base * 2.0 ** min(retry - 1, 60))
        return min(self.cap, delay + random.uniform(0, self.jitter * delay))

    def attempts(self) -> Attempts:
        """A fresh count of retries for one batch."""
        return Attempts(self)


@dataclass(slots=True)
class Attempts:
    """The retries one batch used so far, under ``policy``."""

    policy: RetryPolicy
    retries: int = 0
    rate_limited: float = 0.0
    """Seconds of ``Retry-After`` waits asked for so far."""
    first_failure: float | None = field(default=None)

    def next_delay(self, retry_after: float | None = None) -> float | None:
        """Seconds to wait before trying again after a retryable failure; None: give up."""
        policy = self.policy
        now = time.monotonic()
        if self.first_failure is None:
            self.first_failure = now
        if retry_after is not None and retry_after > 0:
            wait = min(retry_after, policy.max_retry_after)
            if self.rate_limited + wait > policy.max_rate_limit:
                return None
            self.rate_limited += wait
            return wait
        if self.retries >= policy.max_retries:
            return None
        wait = policy.backoff(self.retries + 1)
        if now - self.first_failure + wait > policy.max_total:
            return None
        self.retries += 1
        return wait
