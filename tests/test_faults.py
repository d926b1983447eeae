"""Nothing accepted is lost silently: Segment faults, the dead-letter file, ``flows replay``.

Real SDK, real HTTP to the local receiver; every message handed to the SDK
must end up delivered (once per messageId after de-dup) or in the dead-letter
file, with the write key nowhere in what is written or printed.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from collector.collector import ActiveDestination
from collector.dead_letter import DIR_ENV, DeadLetterFile, dead_letter_path
from destination_segment.receiver import SegmentReceiver
from tests.cli_helpers import DEMO_FLOW, free_port, run_flows
from tests.segment_helpers import WRITE_KEY, segment_flow

#: Slack for a thread waking up after the receiver noticed a request.
WAKE = 0.1
#: The write key as it could leak: plain, and inside a Basic auth header.
SECRETS = (WRITE_KEY, base64.b64encode(f"{WRITE_KEY}:".encode()).decode())


def assert_no_secret(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text


def event(event_id: str) -> dict[str, Any]:
    return {"name": "product view", "id": event_id, "user": {"id": "u1"}}


def push_all(collector: Any, ids: list[str]) -> set[str]:
    """Push one event per id; the messageIds they make."""
    for event_id in ids:
        collector.push(event(event_id))
    return {f"{event_id}-track" for event_id in ids}


def read_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def dead_ids(path: Path) -> list[str]:
    return [line["message"]["messageId"] for line in read_lines(path)] if path.exists() else []


def join_consumers(active: ActiveDestination, timeout: float = 5.0) -> None:
    """Wait until the SDK threads have let go of what they held at shutdown."""
    client = active.destination.client  # type: ignore[attr-defined]
    for consumer in client._consumers:
        consumer.join(timeout)
    assert client.alive_consumers() == 0


# -- the SDK's retries -------------------------------------------------------------------------


def test_server_errors_then_recovery_deliver_every_message(
    segment_receiver: SegmentReceiver, tmp_path: Path
) -> None:
    dead = tmp_path / "dead.jsonl"
    max_retries = 3
    segment_receiver.fail(500, count=3)
    collector, active = segment_flow(
        segment_receiver.url,
        {"flushAt": 4, "maxRetries": max_retries, "deadLetterFile": str(dead)},
    )
    sent = push_all(collector, [f"r{i}" for i in range(8)])
    report = collector.shutdown(8)["segment"]
    assert report.undelivered == 0, report.detail
    assert segment_receiver.message_ids() == sent, (
        "de-duplicated by messageId: exactly what was sent"
    )
    per_id = Counter(m["messageId"] for m in segment_receiver.messages())
    assert all(1 <= n <= 1 + max_retries for n in per_id.values()), per_id
    stats = segment_receiver.stats
    assert stats["by_status"][500] == 3
    assert stats["requests"] == sum(stats["by_status"].values())
    assert active.destination.stats()["dead_lettered"] == 0
    assert not dead.exists(), "the dead-letter file is only opened on a failure"


def test_retry_after_on_429_is_waited_out_and_not_counted_as_a_retry(
    segment_receiver: SegmentReceiver, tmp_path: Path
) -> None:
    # segment-analytics-python 2.4 parses Retry-After on any retryable status and
    # re-queues the batch until then, without spending maxRetries (consumer.py).
    segment_receiver.fail(429, count=1, retry_after=1)
    collector, _ = segment_flow(
        segment_receiver.url, {"maxRetries": 0, "deadLetterFile": str(tmp_path / "d.jsonl")}
    )
    sent = push_all(collector, ["a", "b", "c"])
    segment_receiver.wait_for_requests(1, timeout=5)
    rate_limited_at = time.monotonic()
    segment_receiver.wait_for_requests(2, timeout=5)
    waited = time.monotonic() - rate_limited_at
    assert 1.0 - WAKE <= waited < 1.0 + 1.5, waited
    report = collector.shutdown(5)["segment"]
    assert report.undelivered == 0
    assert segment_receiver.message_ids() == sent
    assert segment_receiver.stats["by_status"] == {429: 1, 200: 1}


def test_a_batch_held_by_retry_after_at_shutdown_is_dead_lettered(
    segment_receiver: SegmentReceiver, tmp_path: Path
) -> None:
    dead = tmp_path / "dead.jsonl"
    segment_receiver.fail(429, retry_after=30)
    collector, active = segment_flow(segment_receiver.url, {"deadLetterFile": str(dead)})
    sent = push_all(collector, ["w1", "w2"])
    segment_receiver.wait_for_requests(1, timeout=5)
    started = time.monotonic()
    report = collector.shutdown(0.5)["segment"]
    assert time.monotonic() - started < 0.5 + 0.5
    assert report.timed_out
    assert report.undelivered == 2
    join_consumers(active)
    assert sorted(dead_ids(dead)) == sorted(sent), "not re-queued into a stopped client"
    assert all(line["reason"].startswith("shutdown") for line in read_lines(dead))
    assert segment_receiver.stats["requests"] == 1, "the 30 s Retry-After was respected"


def test_a_hanging_segment_times_out_and_shutdown_dead_letters_what_it_held(
    segment_receiver: SegmentReceiver, tmp_path: Path
) -> None:
    dead = tmp_path / "dead.jsonl"
    segment_receiver.delay(30)
    collector, active = segment_flow(
        segment_receiver.url,
        {"httpRequestTimeout": 500, "maxRetries": 3, "deadLetterFile": str(dead)},
    )
    sent = push_all(collector, ["h1", "h2", "h3"])
    segment_receiver.wait_for_requests(1, timeout=5)
    first = time.monotonic()
    segment_receiver.wait_for_requests(2, timeout=5)  # the first retry is immediate
    timed_out_after = time.monotonic() - first
    assert 0.5 - WAKE <= timed_out_after < 0.5 + 1.0, timed_out_after
    started = time.monotonic()
    report = collector.shutdown(1.0)["segment"]
    assert time.monotonic() - started < 1.0 + 0.5
    assert report.timed_out
    assert report.undelivered == 3
    # recorded at the deadline, before the process could exit with the upload hanging
    assert sorted(dead_ids(dead)) == sorted(sent)
    join_consumers(active)  # when the hanging request times out, it is not recorded twice
    assert sorted(dead_ids(dead)) == sorted(sent)
    assert active.destination.stats()["dead_lettered"] == 3
    assert segment_receiver.message_ids() == set()


def test_a_rate_limit_longer_than_max_rate_limit_duration_dead_letters_the_batch(
    segment_receiver: SegmentReceiver, tmp_path: Path
) -> None:
    dead = tmp_path / "dead.jsonl"
    segment_receiver.fail(429, retry_after=30)
    collector, active = segment_flow(
        segment_receiver.url, {"maxRateLimitDuration": 1000, "deadLetterFile": str(dead)}
    )
    sent = push_all(collector, ["l1", "l2"])
    started = time.monotonic()
    collector.shutdown(10)
    assert time.monotonic() - started < 5, "not the 30 s Retry-After, nor the shutdown timeout"
    assert sorted(dead_ids(dead)) == sorted(sent)
    assert all("Rate limit" in line["reason"] for line in read_lines(dead))
    assert segment_receiver.stats["requests"] == 1
    assert active.destination.stats()["failed"] == 2


def test_max_total_backoff_duration_bounds_the_retries_of_a_batch(
    segment_receiver: SegmentReceiver, tmp_path: Path
) -> None:
    dead = tmp_path / "dead.jsonl"
    segment_receiver.fail(500)
    collector, _ = segment_flow(
        segment_receiver.url,
        {"maxRetries": 10, "maxTotalBackoffDuration": 0, "deadLetterFile": str(dead)},
    )
    sent = push_all(collector, ["t1", "t2"])
    report = collector.shutdown(5)["segment"]
    assert not report.timed_out
    assert sorted(dead_ids(dead)) == sorted(sent)
    assert segment_receiver.stats["requests"] == 1, "no time left to retry, maxRetries aside"


class ObservedLock:
    """A lock that tells when a second thread has to wait for it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.contended = threading.Event()

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        if self._lock.acquire(False):
            return True
        self.contended.set()
        return self._lock.acquire(blocking, timeout)

    def release(self) -> None:
        self._lock.release()

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def test_a_batch_reported_while_shutdown_counts_is_counted_once(
    segment_receiver: SegmentReceiver, tmp_path: Path
) -> None:
    """A consumer between reporting a batch and marking it done is waited for, not counted twice.

    CI once saw 6 undelivered for 3 messages: the shutdown counted a batch both
    as failed (reported) and as unfinished in the queue (task_done not yet called).
    Here the batch failed before the shutdown began, so it is in ``failed`` and
    the dead-letter file, and not again in the shutdown's count as "in flight".
    """
    dead = tmp_path / "dead.jsonl"
    segment_receiver.fail(400)
    collector, active = segment_flow(segment_receiver.url, {"deadLetterFile": str(dead)})
    client = active.destination.client  # type: ignore[attr-defined]
    accounting = client._accounting = ObservedLock()
    dead_letter = client._on_failure
    reporting, go_on = threading.Event(), threading.Event()

    def slow_dead_letter(batch: list[dict[str, Any]], reason: str) -> None:
        reporting.set()
        go_on.wait(5)
        dead_letter(batch, reason)

    client._on_failure = slow_dead_letter
    sent = push_all(collector, ["r1", "r2", "r3"])
    assert reporting.wait(5), "the 400 batch is being reported"
    reports: list[Any] = []
    shutdown = threading.Thread(target=lambda: reports.append(collector.shutdown(0.0)))
    shutdown.start()
    assert accounting.contended.wait(5), "the shutdown waits for the report to settle"
    go_on.set()
    shutdown.join(5)
    report = reports[0]["segment"]
    assert report.undelivered == 0, report
    assert "in flight" not in report.detail
    assert active.destination.stats()["failed"] == 3
    assert sorted(dead_ids(dead)) == sorted(sent)


# -- what the SDK gives up on ------------------------------------------------------------------


def test_a_rejected_batch_is_dead_lettered_one_line_per_message(
    segment_receiver: SegmentReceiver, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    dead = tmp_path / "nested" / "dir" / "dead.jsonl"
    segment_receiver.fail(400, count=1)
    collector, active = segment_flow(
        segment_receiver.url, {"flushAt": 3, "flushInterval": 200, "deadLetterFile": str(dead)}
    )
    with caplog.at_level(logging.DEBUG):
        sent = push_all(collector, [f"b{i}" for i in range(5)])
        report = collector.shutdown(5)["segment"]
    lines = read_lines(dead)
    rejected = [line["message"]["messageId"] for line in lines]
    delivered = segment_receiver.message_ids()
    assert rejected, "the first batch was answered 400"
    assert len(rejected) == len(set(rejected)), "one line per message"
    assert set(rejected) | delivered == sent, "nothing silently lost"
    assert not set(rejected) & delivered
    stats = active.destination.stats()
    assert stats["dead_lettered"] == stats["failed"] == len(lines)
    assert stats["enqueued"] == len(delivered) + stats["dead_lettered"]
    assert report.undelivered == len(lines)
    for line in lines:
        assert set(line) == {"time", "destination", "reason", "message"}
        assert line["destination"] == "segment"
        assert "(400)" in line["reason"]
        assert line["time"].endswith("Z")
        assert datetime.fromisoformat(line["time"]).utcoffset().total_seconds() == 0  # type: ignore[union-attr]
        message = line["message"]
        assert message["type"] == "track"
        assert message["userId"] == "u1"
        assert message["context"]["library"]["name"] == "analytics-python"
    assert_no_secret(dead.read_text())
    assert_no_secret(caplog.text)


def test_exhausted_retries_are_dead_lettered(
    segment_receiver: SegmentReceiver, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    dead = tmp_path / "dead.jsonl"
    segment_receiver.fail(500)
    collector, active = segment_flow(
        segment_receiver.url, {"maxRetries": 1, "deadLetterFile": str(dead)}
    )
    with caplog.at_level(logging.DEBUG):
        sent = push_all(collector, ["x1", "x2"])
        report = collector.shutdown(5)["segment"]
    assert report.undelivered == 2
    assert sorted(dead_ids(dead)) == sorted(sent)
    assert all("(500)" in line["reason"] for line in read_lines(dead))
    requests = segment_receiver.stats["requests"]
    assert requests >= 2
    assert requests % 2 == 0, "each batch: one try and maxRetries=1 retry"
    assert active.destination.stats()["dead_lettered"] == 2
    assert_no_secret(dead.read_text())
    assert_no_secret(caplog.text)


def test_without_a_dead_letter_file_failures_are_counted_and_logged(
    segment_receiver: SegmentReceiver,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.chdir(tmp_path)
    segment_receiver.fail(400)
    collector, active = segment_flow(segment_receiver.url, {"deadLetterFile": None})
    with caplog.at_level(logging.ERROR, logger="flows.destination.segment"):
        push_all(collector, ["n1"])
        collector.shutdown(5)
    stats = active.destination.stats()
    assert stats["failed"] == 1
    assert stats["dead_lettered"] == 0
    assert "1 message(s) not delivered" in caplog.text
    assert list(tmp_path.iterdir()) == []


def test_an_unwritable_dead_letter_file_is_logged_not_raised(
    segment_receiver: SegmentReceiver, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    segment_receiver.fail(400, count=1)
    collector, active = segment_flow(
        segment_receiver.url, {"flushAt": 1, "deadLetterFile": str(blocker / "dead.jsonl")}
    )
    with caplog.at_level(logging.ERROR, logger="flows.destination.segment"):
        push_all(collector, ["u1"])
        deadline = time.monotonic() + 5
        while active.destination.stats()["dead_letter_failed"] == 0:
            assert time.monotonic() < deadline, "the 400 was never reported"
            active.destination.client.client().flush()  # type: ignore[attr-defined]
        sent = push_all(collector, ["u2"])
        report = collector.shutdown(5)["segment"]
    assert "LOST" in caplog.text
    assert "u1-track" in caplog.text, "lost messages are at least named"
    assert report.undelivered == 0
    assert segment_receiver.message_ids() == sent, "the consumer thread survived"
    stats = active.destination.stats()
    assert (stats["dead_lettered"], stats["dead_letter_failed"]) == (0, 1)


def test_the_default_path_is_per_destination_under_the_dead_letter_dir(
    segment_receiver: SegmentReceiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(DIR_ENV, str(tmp_path))
    segment_receiver.fail(400)
    collector, active = segment_flow(segment_receiver.url)
    sent = push_all(collector, ["d1"])
    collector.shutdown(5)
    assert active.destination.dead_letter.path == tmp_path / "dead-letter" / "segment.jsonl"  # type: ignore[attr-defined]
    assert dead_ids(tmp_path / "dead-letter" / "segment.jsonl") == sorted(sent)
    absolute = tmp_path / "abs.jsonl"
    assert dead_letter_path(str(absolute), "x") == absolute
    assert dead_letter_path("{destination}.jsonl", "../up", {}) == Path("_up.jsonl")
    assert dead_letter_path("dl/{destination}.jsonl", "s", {DIR_ENV: "/base"}) == Path(
        "/base/dl/s.jsonl"
    )


def test_the_dead_letter_file_redacts_secrets_in_reasons(tmp_path: Path) -> None:
    file = DeadLetterFile(tmp_path / "d.jsonl", "segment", secrets=[WRITE_KEY])
    file.write([{"messageId": "m1"}], f"rejected key {WRITE_KEY}")
    file.close()
    (line,) = read_lines(tmp_path / "d.jsonl")
    assert line["reason"] == "rejected key [redacted]"
    assert file.lines_written == 1


# -- flows replay ------------------------------------------------------------------------------


@pytest.fixture
def dead_letter(segment_receiver: SegmentReceiver, tmp_path: Path) -> Path:
    """A dead-letter file of 4 rejected track messages; the receiver is healthy again after."""
    path = tmp_path / "dead.jsonl"
    segment_receiver.fail(400)
    collector, _ = segment_flow(segment_receiver.url, {"deadLetterFile": str(path)})
    push_all(collector, ["p1", "p2", "p3", "p4"])
    collector.shutdown(5)
    assert len(dead_ids(path)) == 4
    segment_receiver.reset_faults()
    segment_receiver.clear()
    return path


def replay(path: Path, host: str, *extra: str) -> Any:
    result = run_flows(
        "replay",
        str(path),
        "--flow",
        str(DEMO_FLOW),
        *extra,
        env={"SEGMENT_HOST": host, "SEGMENT_WRITE_KEY": WRITE_KEY},
    )
    assert_no_secret(result.stdout + result.stderr)
    return result


def without_receipt(message: dict[str, Any]) -> dict[str, Any]:
    """A message as sent: the receiver adds receivedAt and copies the batch's sentAt."""
    return {k: v for k, v in message.items() if k not in ("receivedAt", "sentAt")}


def test_replay_sends_the_same_messages_again(
    segment_receiver: SegmentReceiver, dead_letter: Path
) -> None:
    result = replay(dead_letter, segment_receiver.url)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"replayed 4 message(s) from {dead_letter}; 0 failed\n"
    originals = {line["message"]["messageId"]: line["message"] for line in read_lines(dead_letter)}
    received = {m["messageId"]: without_receipt(m) for m in segment_receiver.messages()}
    assert received == originals, "same messageIds, same content"
    assert not Path(f"{dead_letter}.failed").exists()


def test_replay_to_a_dead_host_writes_the_failed_file_and_exits_1(
    segment_receiver: SegmentReceiver, dead_letter: Path
) -> None:
    failed = Path(f"{dead_letter}.failed")
    result = replay(dead_letter, f"http://127.0.0.1:{free_port()}")
    assert result.returncode == 1
    assert result.stdout == f"replayed 0 message(s) from {dead_letter}; 4 failed -> {failed}\n"
    assert "flows: error: 4 line(s) not replayed" in result.stderr
    lines = read_lines(failed)
    assert [line["message"] for line in lines] == [
        line["message"] for line in read_lines(dead_letter)
    ]
    assert all(line["destination"] == "segment" and line["reason"] for line in lines)
    assert_no_secret(failed.read_text())
    again = replay(failed, segment_receiver.url)  # the .failed file replays like any other
    assert again.returncode == 0, again.stderr
    assert segment_receiver.message_ids() == set(dead_ids(dead_letter))


def test_replay_reports_bad_lines_and_keeps_going(
    segment_receiver: SegmentReceiver, dead_letter: Path
) -> None:
    lines = dead_letter.read_text().splitlines()
    lines[1:1] = ["{not json", '{"destination": "segment"}']
    dead_letter.write_text("\n".join(lines) + "\n")
    result = replay(dead_letter, segment_receiver.url)
    assert result.returncode == 1
    assert f"{dead_letter}:2: not valid JSON" in result.stderr
    assert f'{dead_letter}:3: no "message"' in result.stderr
    assert result.stdout.startswith(f"replayed 4 message(s) from {dead_letter}; 2 failed -> ")
    assert len(segment_receiver.message_ids()) == 4
    failed = Path(f"{dead_letter}.failed").read_text().splitlines()
    assert failed[0] == "{not json", "an unparsable line is copied verbatim"
    assert failed[1] == '{"destination": "segment"}'


def test_replay_rejects_an_unknown_destination(
    segment_receiver: SegmentReceiver, dead_letter: Path
) -> None:
    result = replay(dead_letter, segment_receiver.url, "--destination", "nope")
    assert result.returncode == 1
    assert "--destination: no destination 'nope' in flow " in result.stderr
    assert "those that can: segment" in result.stderr
    assert segment_receiver.message_ids() == set()
