"""``flows replay`` for any destination: the shared account (collector.replay), the api
destination's replay over real HTTP, and a file holding lines for several destinations.

Segment's own replay (same messageIds, a dead host, bad lines) is in tests/test_faults.py.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import orjson
import pytest
from pydantic import BaseModel

from collector.collector import ActiveDestination, build_destination
from collector.dead_letter import dead_letter_line
from collector.destination import Destination, PushContext, Skipped
from collector.destinations.api import ApiDestination
from collector.destinations.log import LogDestination, LogSettings
from collector.replay import (
    CannotReplayError,
    DeadLetterRecord,
    ReplayOutcome,
    ReplayReport,
    replay_file,
)
from destination_segment.destination import SegmentDestination
from destination_segment.receiver import SegmentReceiver
from tests.cli_helpers import run_flows
from tests.http_receiver import Receiver
from tests.segment_helpers import WRITE_KEY

API_KEY = "api-key-7c1d9e2f"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


def read_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def write_flow(path: Path, destinations: dict[str, Any]) -> Path:
    flow = {"version": 4, "flows": {"default": {"destinations": destinations}}}
    path.write_text(json.dumps(flow), encoding="utf-8")
    return path


def api_settings(url: str, **more: Any) -> dict[str, Any]:
    return {
        "url": url,
        "headers": {"X-API-Key": API_KEY},
        "maxRetries": 0,
        "concurrency": 1,
        **more,
    }


def dead_letters_of_api(
    receiver: Receiver, tmp_path: Path, settings: dict[str, Any], data: list[Any], requests: int
) -> Path:
    """The dead-letter file the real api destination writes when ``requests`` requests get 400."""
    path = tmp_path / "api.jsonl"
    receiver.answer(400, count=requests)
    active = build_destination(
        "api", ApiDestination, {"settings": {**settings, "deadLetterFile": str(path)}}
    )
    destination = active.destination
    destination.init()
    for value in data:
        context = PushContext(None, value, {}, logging.getLogger("test"))
        assert destination.push({"name": "page view"}, context) is None
    destination.shutdown(5)  # sends what is queued; each request is refused
    receiver.wait_for(requests)
    assert [line["message"] for line in read_lines(path)] == data
    return path


# -- the api destination, through the command ------------------------------------------------


@pytest.mark.parametrize(
    ("batch", "bodies"),
    [
        (None, [b'{"n":1}', b'"two"', b"[3]"]),
        ({"size": 2, "wait": 10_000}, [b'[{"n":1},"two"]', b"[[3]]"]),
    ],
    ids=["one-request-per-event", "batched"],
)
def test_api_dead_letters_are_sent_again_as_the_destination_sends_them(
    receiver: Receiver, tmp_path: Path, batch: dict[str, Any] | None, bodies: list[bytes]
) -> None:
    settings = api_settings(receiver.url + "/events", **({"batch": batch} if batch else {}))
    dead = dead_letters_of_api(receiver, tmp_path, settings, [{"n": 1}, "two", [3]], len(bodies))
    first_sent = [request.body for request in receiver.requests]
    flow = write_flow(
        tmp_path / "flow.json", {"api": {"package": "api", "config": {"settings": settings}}}
    )
    result = run_flows("replay", str(dead), str(flow))
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"replayed 3 message(s) from {dead}; 0 failed\n"
    replayed = receiver.wait_for(2 * len(bodies))[len(bodies) :]
    assert [request.body for request in replayed] == bodies == first_sent
    assert all(request.path == "/events" for request in replayed)
    assert all(request.headers["x-api-key"] == API_KEY for request in replayed)
    assert API_KEY not in result.stdout + result.stderr
    assert not Path(f"{dead}.failed").exists()


def test_api_replay_tries_each_request_once_and_keeps_what_failed(
    receiver: Receiver, tmp_path: Path
) -> None:
    settings = api_settings(receiver.url)
    dead = dead_letters_of_api(receiver, tmp_path, settings, [{"n": 1}, {"n": 2}], 2)
    flow = write_flow(
        tmp_path / "flow.json", {"api": {"package": "api", "config": {"settings": settings}}}
    )
    receiver.answer(503, count=1)  # the first replayed request fails, the second goes through
    result = run_flows("replay", str(dead), str(flow))
    assert result.returncode == 1
    failed = Path(f"{dead}.failed")
    assert result.stdout == f"replayed 1 message(s) from {dead}; 1 failed -> {failed}\n"
    assert f"{dead}:1: HTTP 503 Service Unavailable" in result.stderr
    assert "flows: error: 1 line(s) not replayed" in result.stderr
    assert len(receiver.requests) == 4, "two refused first, then each replayed once"
    (line,) = read_lines(failed)
    assert (line["destination"], line["message"]) == ("api", {"n": 1})
    assert line["reason"] == "HTTP 503 Service Unavailable"
    assert API_KEY not in failed.read_text() + result.stderr


def test_one_file_with_segment_and_api_lines_goes_to_both(
    receiver: Receiver, segment_receiver: SegmentReceiver, tmp_path: Path
) -> None:
    dead = tmp_path / "mixed.jsonl"
    segment_message = {"type": "track", "event": "x", "userId": "u1", "messageId": "m-1"}
    dead.write_bytes(
        dead_letter_line("api", "HTTP 400", {"n": 1})
        + dead_letter_line("segment", "HTTP 400", segment_message)
        + dead_letter_line("api", "HTTP 400", {"n": 2})
    )
    flow = write_flow(
        tmp_path / "flow.json",
        {
            "segment": {
                "package": "segment",
                "config": {"settings": {"writeKey": WRITE_KEY, "host": segment_receiver.url}},
            },
            "api": {"package": "api", "config": {"settings": api_settings(receiver.url)}},
        },
    )
    result = run_flows("replay", str(dead), str(flow))
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"replayed 3 message(s) from {dead}; 0 failed\n"
    assert [request.body for request in receiver.wait_for(2)] == [b'{"n":1}', b'{"n":2}']
    assert segment_receiver.message_ids() == {"m-1"}


def test_a_flow_with_no_destination_that_replays_says_which_it_has(tmp_path: Path) -> None:
    dead = tmp_path / "dead.jsonl"
    dead.write_bytes(dead_letter_line("out", "x", {"n": 1}))
    flow = write_flow(tmp_path / "flow.json", {"out": {"package": "log"}})
    result = run_flows("replay", str(dead), str(flow))
    assert result.returncode == 1
    assert result.stderr == (
        f"flows: error: {flow}: flow 'default' has no destination that replays dead letters "
        "(its destinations: out (log))\n"
    )


def test_destination_must_name_one_that_replays(receiver: Receiver, tmp_path: Path) -> None:
    dead = tmp_path / "dead.jsonl"
    dead.write_bytes(dead_letter_line("api", "x", {"n": 1}))
    flow = write_flow(
        tmp_path / "flow.json",
        {
            "out": {"package": "log"},
            "api": {"package": "api", "config": {"settings": api_settings(receiver.url)}},
        },
    )
    result = run_flows("replay", str(dead), str(flow), "--destination", "out")
    assert result.returncode == 1
    assert result.stderr == (
        "flows: error: --destination: destination 'out' (log) cannot replay dead letters; "
        "those that can: api\n"
    )
    assert receiver.requests == []


# -- the account, with destinations of every temper ------------------------------------------


class Quiet(BaseModel):
    pass


class Faithful(Destination[Quiet]):
    """Delivers everything, two at a time, and remembers what it got."""

    type = "faithful"
    Settings = Quiet

    def __init__(self, destination_id: str) -> None:
        super().__init__(Quiet(), destination_id=destination_id)
        self.got: list[Any] = []

    def push(self, event: Mapping[str, Any], context: PushContext) -> Skipped | None:
        return None

    def replay(self, records: Iterable[DeadLetterRecord], outcome: ReplayOutcome) -> None:
        batch: list[DeadLetterRecord] = []
        for record in records:
            batch.append(record)
            if len(batch) == 2:
                self._deliver(batch, outcome)
                batch = []
        self._deliver(batch, outcome)

    def _deliver(self, batch: list[DeadLetterRecord], outcome: ReplayOutcome) -> None:
        self.got += [record.message for record in batch]
        outcome.delivered(batch)
        outcome.delivered(batch)  # told twice: counted once
        outcome.failed(batch, "too late")  # and a later failure changes nothing


class Forgetful(Faithful):
    """Reads one record and reports nothing."""

    def replay(self, records: Iterable[DeadLetterRecord], outcome: ReplayOutcome) -> None:
        self.got.append(next(iter(records)).message)


class Buggy(Faithful):
    """Delivers the first record, then raises with a secret in the message."""

    def replay(self, records: Iterable[DeadLetterRecord], outcome: ReplayOutcome) -> None:
        iterator = iter(records)
        first = next(iterator)
        outcome.delivered([first])
        next(iterator)
        raise ValueError("leaked s3cret")


def lines_of(*records: tuple[str, Any]) -> bytes:
    return b"".join(dead_letter_line(target, "refused", message) for target, message in records)


def replay(
    path: Path, destinations: list[Destination[Any]], **options: Any
) -> tuple[ReplayReport, list[str]]:
    problems: list[str] = []
    report = replay_file(
        path, {d.id: d for d in destinations}, on_problem=problems.append, **options
    )
    return report, problems


def test_each_destination_gets_its_own_lines_and_every_line_is_counted_once(
    tmp_path: Path,
) -> None:
    path = tmp_path / "dead.jsonl"
    path.write_bytes(
        lines_of(("a", 1), ("b", 2))
        + b"{not json\n\n"
        + lines_of(("a", 3), ("gone", 4), ("out", 5), ("a", 6))
        + b'{"destination": "a", "event": {"name": "x"}}\n'
    )
    a, b = Faithful("a"), Faithful("b")
    out = LogDestination(LogSettings(), destination_id="out")
    report, problems = replay(path, [a, b, out])
    assert (a.got, b.got) == ([1, 3, 6], [2])
    assert (report.replayed, report.failed) == (4, 4)
    assert problems == [
        f"{path}:3: not valid JSON: Expecting property name enclosed in double quotes: "
        "line 1 column 2 (char 1)",
        f'{path}:9: an "event" line (an events dead-letter file): replay sends messages; '
        "post the event to the flow again",
        f"{path}:6: destination 'gone' is not in the flow (choose one with --destination ID)",
        f"{path}:7: destination 'out' (log) cannot replay dead letters",
    ]
    failed = report.failed_path.read_bytes().splitlines()
    assert failed[0] == b"{not json", "an unreadable line is copied verbatim"
    assert json.loads(failed[1])["event"] == {"name": "x"}
    assert [(line["destination"], line["message"]) for line in map(json.loads, failed[2:])] == [
        ("gone", 4),
        ("out", 5),
    ]


def test_destination_sends_every_line_to_the_one_named(tmp_path: Path) -> None:
    path = tmp_path / "dead.jsonl"
    path.write_bytes(lines_of(("a", 1), ("gone", 2)) + b'{"message": 3}\n')
    b = Faithful("b")
    report, problems = replay(path, [Faithful("a"), b], destination="b")
    assert (b.got, report.replayed, report.failed, problems) == ([1, 2, 3], 3, 0, [])


def test_what_a_destination_never_reports_or_never_reads_fails(tmp_path: Path) -> None:
    path = tmp_path / "dead.jsonl"
    path.write_bytes(lines_of(("a", 1), ("a", 2), ("a", 3)))
    forgetful = Forgetful("a")
    report, problems = replay(path, [forgetful])
    assert forgetful.got == [1]
    assert (report.replayed, report.failed) == (0, 3)
    reason = "destination 'a' did not report it replayed"
    assert problems == [f"{path}:1: {reason}", f"{path}:2: {reason}", f"{path}:3: {reason}"]
    assert [line["message"] for line in read_lines(report.failed_path)] == [1, 2, 3]


def test_a_destination_that_raises_fails_its_open_lines_without_the_error_text(
    tmp_path: Path,
) -> None:
    path = tmp_path / "dead.jsonl"
    path.write_bytes(lines_of(("a", 1), ("a", 2), ("a", 3), ("b", 4)))
    b = Faithful("b")
    report, problems = replay(path, [Buggy("a"), b])
    assert (report.replayed, report.failed, b.got) == (2, 2, [4])
    reason = "destination 'a' failed while replaying: ValueError"
    assert problems == [f"{path}:2: {reason}", f"{path}:3: {reason}"]
    assert "s3cret" not in report.failed_path.read_text() + "".join(problems)
    assert [line["message"] for line in read_lines(report.failed_path)] == [2, 3]


def test_the_failed_file_is_replaced_and_removed_once_all_went(tmp_path: Path) -> None:
    path = tmp_path / "dead.jsonl"
    stale = Path(f"{path}.failed")
    stale.write_text("left from an earlier replay\n")
    path.write_bytes(lines_of(("a", 1), ("gone", 2)))
    report, _ = replay(path, [Faithful("a")])
    assert report.failed_path == stale
    assert [line["message"] for line in read_lines(stale)] == [2], "replaced, not appended to"
    path.write_bytes(lines_of(("a", 1)))
    report, _ = replay(path, [Faithful("a")])
    assert (report.replayed, report.failed) == (1, 0)
    assert not stale.exists()


def test_lines_added_while_replaying_wait_for_the_next_replay(tmp_path: Path) -> None:
    path = tmp_path / "dead.jsonl"
    path.write_bytes(lines_of(("a", 1), ("b", 2)))

    class Appending(Faithful):
        def replay(self, records: Iterable[DeadLetterRecord], outcome: ReplayOutcome) -> None:
            with path.open("ab") as file:  # a running flow dead-letters more meanwhile
                file.write(lines_of(("b", 3)))
            super().replay(records, outcome)

    b = Faithful("b")
    report, _ = replay(path, [Appending("a"), b])
    assert (b.got, report.replayed) == ([2], 2)


def test_only_destinations_that_override_replay_replay() -> None:
    log = LogDestination(LogSettings(), destination_id="out")
    assert not log.replays
    with pytest.raises(CannotReplayError, match=r"destination 'out' \(log\) cannot replay"):
        log.replay([], None)  # type: ignore[arg-type]
    api = build_destination("api", ApiDestination, {"settings": {"url": "http://127.0.0.1:1"}})
    segment = build_destination(
        "segment", SegmentDestination, {"settings": {"writeKey": WRITE_KEY}}
    )
    assert all(active.destination.replays for active in (api, segment))
    assert Faithful("a").replays


def test_api_bodies_come_back_as_push_made_them() -> None:
    def active(**settings: Any) -> ActiveDestination:
        return build_destination(
            "api", ApiDestination, {"settings": {"url": "http://127.0.0.1:1", **settings}}
        )

    text = active(transform="tests.mapping_callables:wrapped").destination
    for value in ({"n": 1.5, "s": "ü"}, "two", [3], None):
        for destination in (active().destination, active(batch=10).destination, text):
            context = PushContext(None, value, {}, logging.getLogger("test"))
            part = destination.body.part({"name": "x"}, context)
            message = orjson.loads(orjson.dumps(destination.body.as_message(part)))
            assert destination.body.part_from_message(message) == part
