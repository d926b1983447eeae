"""The shared retry policy: which answers are retried, how long to wait, when to give up."""

from __future__ import annotations

from email.utils import formatdate

import pytest

from collector.delivery import RetryPolicy, parse_retry_after, retryable_status


@pytest.mark.parametrize(
    ("status", "retry"),
    [(408, True), (429, True), (500, True), (503, True), (599, True), (501, False),
     (505, False), (400, False), (401, False), (404, False), (301, False), (200, False)],
)  # fmt: skip
def test_retryable_statuses(status: int, retry: bool) -> None:
    assert retryable_status(status) is retry


def test_retry_after_as_seconds_or_a_date() -> None:
    now = 1_700_000_000.0
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(" 0 ") == 0.0
    assert parse_retry_after(formatdate(now + 30, usegmt=True), now=now) == pytest.approx(30)
    assert parse_retry_after(formatdate(now - 30, usegmt=True), now=now) is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 -0000", now=1445412470.0) == 10.0
    for unusable in (None, "", "soon", "-3", "1.5"):
        assert parse_retry_after(unusable) is None


def test_backoff_doubles_within_the_cap() -> None:
    policy = RetryPolicy(base=0.5, cap=3.0, jitter=0.0)
    assert [policy.backoff(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    jittered = RetryPolicy(base=1.0, cap=100.0, jitter=0.1)
    assert all(1.0 <= jittered.backoff(1) <= 1.1 for _ in range(50))
    assert RetryPolicy(base=1.0, cap=10.0).backoff(10_000) == 10.0


def test_retries_stop_at_max_retries() -> None:
    attempts = RetryPolicy(max_retries=2, base=0.01, jitter=0.0).attempts()
    assert attempts.next_delay() == 0.01
    assert attempts.next_delay() == 0.02
    assert attempts.next_delay() is None
    assert attempts.retries == 2


def test_retries_stop_when_the_next_wait_would_pass_max_total() -> None:
    attempts = RetryPolicy(max_retries=10, base=1.0, max_total=1.5, jitter=0.0).attempts()
    assert attempts.next_delay() == 1.0
    assert attempts.next_delay() is None, "the next wait, 2 s, ends past 1.5 s after the failure"


def test_retry_after_uses_no_retry_but_the_rate_limit_budget() -> None:
    policy = RetryPolicy(max_retries=0, max_rate_limit=10.0, max_retry_after=4.0)
    attempts = policy.attempts()
    assert attempts.next_delay(retry_after=3.0) == 3.0
    assert attempts.next_delay(retry_after=60.0) == 4.0, "capped at max_retry_after"
    assert attempts.next_delay(retry_after=3.0) == 3.0
    assert attempts.next_delay(retry_after=3.0) is None, "10 s of Retry-After used up"
    assert attempts.retries == 0
    assert attempts.next_delay() is None, "max_retries=0: no backoff retry"
