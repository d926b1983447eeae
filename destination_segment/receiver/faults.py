"""Injected faults: failing (some share of) requests with a status, and holding answers.

``Faults`` is the armed state behind ``SegmentReceiver.fail()``, ``delay()`` and
``/_control``; the handler consumes one use of it per tracking request.
"""

from __future__ import annotations

import math
import random
import threading
from dataclasses import dataclass
from typing import Any

from destination_segment.receiver.protocol import brief


@dataclass
class Failure:
    """An armed ``fail()``: answer ``remaining`` more requests (None: all) with ``status``."""

    status: int
    remaining: int | None
    retry_after: float | None
    rate: float | None = None

    def header(self) -> str | None:
        """Retry-After as whole seconds: RFC 7231 delta-seconds, and the SDK ignores fractions."""
        return None if self.retry_after is None else str(math.ceil(self.retry_after))


@dataclass
class Delay:
    """An armed ``delay()``: hold ``remaining`` more answers (None: all) for ``seconds``."""

    seconds: float
    remaining: int | None


class Faults:
    """The armed failure and delay, thread-safe; see ``SegmentReceiver.fail()``/``delay()``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._chance = random.Random(20261125)  # fault injection, repeatable
        self._failure: Failure | None = None
        self._delay: Delay | None = None

    def fail(
        self,
        status: int,
        count: int | None = None,
        retry_after: float | None = None,
        rate: float | None = None,
    ) -> None:
        """Arm a failure, checking the arguments first."""
        if isinstance(status, bool) or not isinstance(status, int) or not 300 <= status <= 599:
            raise ValueError(f"status must be an HTTP status from 300 to 599, not {status!r}")
        if count is not None and count < 0:
            raise ValueError("count must be non-negative or None")
        if retry_after is not None and retry_after < 0:
            raise ValueError("retry_after must be non-negative or None")
        if rate is not None and not 0 < rate <= 1:
            raise ValueError("rate must be a fraction in (0, 1] or None")
        with self._lock:
            self._failure = Failure(status, count, retry_after, rate) if count != 0 else None

    def delay(self, seconds: float, count: int | None = None) -> None:
        """Arm a delay, checking the arguments first."""
        if seconds < 0:
            raise ValueError("seconds must be non-negative")
        if count is not None and count < 0:
            raise ValueError("count must be non-negative or None")
        with self._lock:
            self._delay = Delay(seconds, count) if count != 0 and seconds > 0 else None

    def reset(self) -> None:
        """Answer normally again."""
        with self._lock:
            self._failure = None
            self._delay = None

    def armed(self) -> dict[str, Any]:
        """The faults now armed, in the /_control JSON spelling."""
        with self._lock:
            failure, delay = self._failure, self._delay
            return {
                "fail": None
                if failure is None
                else {
                    "status": failure.status,
                    "remaining": failure.remaining,
                    "retryAfter": failure.retry_after,
                    "rate": failure.rate,
                },
                "delay": None
                if delay is None
                else {"seconds": delay.seconds, "remaining": delay.remaining},
            }

    def apply_control(self, spec: Any) -> None:
        """POST /_control: arm what the body names (status and/or delay), sharing count."""
        if not isinstance(spec, dict):
            raise ValueError("the /_control body must be a JSON object")
        unknown = set(spec) - {"status", "count", "retryAfter", "delay", "rate"}
        if unknown:
            raise ValueError(
                f"unknown /_control field(s) {sorted(unknown)}; "
                "use status, count, retryAfter, rate, delay"
            )
        count = _number(spec, "count", integer=True)
        status = _number(spec, "status", integer=True)
        retry_after = _number(spec, "retryAfter")
        rate = _number(spec, "rate")
        seconds = _number(spec, "delay")
        if status is None and seconds is None:
            raise ValueError('give "status" and/or "delay" (DELETE /_control resets)')
        if status is None and retry_after is not None:
            raise ValueError('"retryAfter" needs a "status"')
        if status is None and rate is not None:
            raise ValueError('"rate" needs a "status"')
        if status is not None:
            self.fail(status, count, retry_after, rate)
        if seconds is not None:
            self.delay(seconds, count)

    def take(self) -> tuple[float, Failure | None]:
        """Consume one use of each armed fault for the request now being answered."""
        with self._lock:
            seconds = 0.0
            delay = self._delay
            if delay is not None:
                seconds = delay.seconds
                if delay.remaining is not None:
                    delay.remaining -= 1
                    if delay.remaining <= 0:
                        self._delay = None
            failure = self._failure
            rate = failure.rate if failure is not None else None
            if rate is not None and self._chance.random() >= rate:
                return seconds, None
            if failure is not None:
                if failure.remaining is not None:
                    failure.remaining -= 1
                    if failure.remaining <= 0:
                        self._failure = None
                failure = Failure(failure.status, None, failure.retry_after)
            return seconds, failure


def _number(spec: dict[str, Any], key: str, *, integer: bool = False) -> Any:
    """A non-negative number (or None) from a /_control body, with a clear error."""
    value = spec.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int if integer else int | float):
        valid = False
    else:
        valid = value >= 0
    if not valid:
        wanted = "a non-negative integer" if integer else "a non-negative number"
        raise ValueError(f"{key} must be {wanted} or null, not {brief(value)}")
    return value
