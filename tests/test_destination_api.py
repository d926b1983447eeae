"""The api destination against a real HTTP server on 127.0.0.1: the walkerOS examples,
batching, retries, dead letters, the shutdown flush, queue room and metrics."""

from __future__ import annotations

import logging
import multiprocessing
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
import pytest

from collector.collector import (
    ActiveDestination,
    Collector,
    DestinationSetupError,
    build_destination,
)
from collector.destination import Destination, PushContext, Skipped
from collector.destinations.api import ApiDestination
from collector.paths import UNDEFINED
from tests.http_helpers import serving_collector
from tests.http_receiver import Receiver, Request
from tests.shared_fixtures import load_fixture

FIXTURE = load_fixture("walkeros-destination-api-examples.json")
CASES = {case["name"]: case for case in FIXTURE["cases"]}
FULL_EVENT: dict[str, Any] = CASES["directPushNoMappingWithMethodTimeout"]["in"]["event"]
"""The event the fixture's "<full event>" and "any event" stand for."""
FAST_RETRIES = {"retryBackoff": 10, "maxRetries": 2}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


def at(receiver: Receiver, url: str) -> str:
    """The fixture's url with its scheme and host replaced by the local receiver's."""
    parts = urlsplit(url)
    return receiver.url + parts.path + (f"?{parts.query}" if parts.query else "")


def api(settings: dict[str, Any], **config: Any) -> ActiveDestination:
    return build_destination("api", ApiDestination, {"settings": settings, **config})


def direct(destination: Destination[Any], event: dict[str, Any], data: Any = UNDEFINED) -> None:
    """``destination.push`` without a collector, as the fixture's direct cases do."""
    context = PushContext(None, data, {}, logging.getLogger("test"))
    assert destination.push(event, context) is None


def calls(case: dict[str, Any]) -> list[list[Any]]:
    out = case["out"]
    return [out] if out and isinstance(out[0], str) else out


def check_request(request: Request, expected: list[Any], receiver: Receiver) -> None:
    _name, url, body, options = expected
    assert request.method == (options.get("method") or "POST")
    assert receiver.url + request.path == at(receiver, url)
    assert request.body.decode() == body
    wanted = {"content-type": "application/json; charset=utf-8"}
    wanted.update({k.lower(): v for k, v in (options.get("headers") or {}).items()})
    for name, value in wanted.items():
        assert request.headers.get(name) == value, name


@pytest.mark.parametrize("name", sorted(CASES))
def test_walkeros_example(name: str, receiver: Receiver) -> None:
    case = CASES[name]
    expected = calls(case)
    settings = dict(case["settings"])
    if "url" in settings:
        settings["url"] = at(receiver, settings["url"])
    if case.get("needs_callback"):
        settings["transform"] = "tests.mapping_callables:transformed"
    entries = case["in"].get("batch_entries")
    if entries is not None:  # walkerOS's pushBatch: our batch setting makes the same request
        settings["batch"] = {"size": len(entries), "wait": 10_000}
    active = api(settings, mapping=case.get("mapping_config"))
    destination = active.destination
    assert isinstance(destination, ApiDestination)
    raw = case["in"].get("event")
    event = FULL_EVENT if not isinstance(raw, dict) else raw
    if entries is not None:
        for entry in entries:
            direct(destination, FULL_EVENT, entry.get("data", UNDEFINED))
    elif "called directly" in case.get("notes", ""):
        direct(destination, event)
    else:
        collector = Collector(destinations=[active])
        collector.start()
        outcome = collector.push(event).outcomes["api"]
        assert outcome == (Skipped("no url") if not expected else "sent")
    report = destination.shutdown(5)
    assert report.undelivered == 0
    if not expected:
        assert receiver.requests == []
        assert active.stats.skipped == {"no url": 1}
        return
    requests = receiver.wait_for(len(expected))
    for request, call in zip(requests, expected, strict=True):
        check_request(request, call, receiver)
    assert len(receiver.requests) == len(expected)
    timeout = (expected[0][3].get("timeout") or 5000) / 1000
    assert destination._transport().client.timeout.read == timeout
    assert destination.stats()["delivered"] == len(entries or [event])


def test_events_go_out_as_one_array_per_batch(receiver: Receiver) -> None:
    active = api({"url": receiver.url + "/batch", "batch": {"size": 3, "wait": 60_000}})
    collector = Collector(destinations=[active])
    collector.start()
    for index in range(5):
        collector.push({"name": "page view", "id": f"e{index}", "data": {"n": index}})
    (first,) = receiver.wait_for(1)  # three filled a batch; two wait for more
    assert [e["id"] for e in orjson.loads(first.body)] == ["e0", "e1", "e2"]
    report = collector.shutdown(5)["api"]  # the shutdown sends the part-filled batch at once
    assert report.undelivered == 0
    assert not report.timed_out
    second = receiver.wait_for(2)[1]
    assert [e["id"] for e in orjson.loads(second.body)] == ["e3", "e4"]
    assert active.destination.stats()["delivered"] == 5


def test_a_batch_is_sent_once_wait_passed(receiver: Receiver) -> None:
    active = api({"url": receiver.url, "batch": 50, "concurrency": 1})  # a number is the wait
    destination = active.destination
    assert isinstance(destination, ApiDestination)
    started = time.monotonic()
    direct(destination, {"name": "a b"}, {"a": 1})
    direct(destination, {"name": "a b"}, {"a": 2})
    (request,) = receiver.wait_for(1)
    assert request.at - started >= 0.05
    assert orjson.loads(request.body) == [{"a": 1}, {"a": 2}]
    destination.shutdown(5)


def test_transform_applies_to_each_batch_item_with_the_rule(receiver: Receiver) -> None:
    active = api(
        {
            "url": receiver.url,
            "transform": "tests.mapping_callables:wrapped",
            "batch": {"size": 2},
        },
        mapping={"order": {"complete": {"data": {"map": {"id": "data.id"}}}}},
    )
    collector = Collector(destinations=[active])
    collector.push({"name": "order complete", "data": {"id": "o1"}})
    collector.push({"name": "page view", "id": "p1"})
    (request,) = receiver.wait_for(1)
    assert orjson.loads(request.body) == ["wrapped:o1:order complete", "wrapped:p1:-"]
    collector.shutdown(5)


def test_a_503_is_retried_and_then_delivered(receiver: Receiver, tmp_path: Path) -> None:
    receiver.answer(503)
    dead = tmp_path / "dead.jsonl"
    active = api({"url": receiver.url, **FAST_RETRIES, "deadLetterFile": str(dead)})
    destination = active.destination
    direct(destination, {"name": "page view"}, {"n": 1})
    failed, retried = receiver.wait_for(2)
    assert failed.body == retried.body == b'{"n":1}'
    report = destination.shutdown(5)
    assert report.undelivered == 0
    stats = destination.stats()
    assert (stats["delivered"], stats["failed"], stats["dead_lettered"]) == (1, 0, 0)
    assert not dead.exists()


def test_retry_after_is_waited_out_without_using_a_retry(receiver: Receiver) -> None:
    receiver.answer(429, retry_after="1")
    active = api({"url": receiver.url, "retryBackoff": 10, "maxRetries": 0})
    direct(active.destination, {"name": "page view"}, {"n": 1})
    limited, retried = receiver.wait_for(2)
    assert retried.at - limited.at >= 0.9
    assert active.destination.shutdown(5).undelivered == 0
    assert active.destination.stats()["delivered"] == 1


def dead_letters(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def test_retries_used_up_dead_letter_the_batch(receiver: Receiver, tmp_path: Path) -> None:
    receiver.answer(503, count=10)
    dead = tmp_path / "dead.jsonl"
    settings = {"url": receiver.url, **FAST_RETRIES, "deadLetterFile": str(dead)}
    settings["headers"] = {"X-API-Key": "s3cret-key"}
    active = api({**settings, "batch": {"size": 2, "wait": 10_000}})
    destination = active.destination
    direct(destination, {"name": "page view"}, {"n": 1})
    direct(destination, {"name": "page view"}, {"n": 2})
    deadline = time.monotonic() + 10
    while destination.stats()["dead_lettered"] < 2:
        assert time.monotonic() < deadline, "the batch was never dead-lettered"
        time.sleep(0.01)
    assert len(receiver.requests) == 3  # the first attempt and maxRetries=2
    lines = dead_letters(dead)
    assert [line["message"] for line in lines] == [{"n": 1}, {"n": 2}]
    assert lines[0]["destination"] == "api"
    assert lines[0]["reason"] == "HTTP 503 Service Unavailable (after 3 attempts)"
    stats = destination.stats()
    assert (stats["queued"], stats["delivered"], stats["failed"]) == (2, 0, 2)
    assert "s3cret-key" not in dead.read_text()
    assert "s3cret-key" not in repr(destination.settings)
    assert destination.shutdown(5).undelivered == 0  # already recorded before the shutdown


def test_a_refusal_is_dead_lettered_without_retrying(receiver: Receiver, tmp_path: Path) -> None:
    receiver.answer(400)
    dead = tmp_path / "dead.jsonl"
    active = api({"url": receiver.url, **FAST_RETRIES, "deadLetterFile": str(dead)})
    direct(active.destination, {"name": "page view"}, "text")
    receiver.wait_for(1)
    active.destination.shutdown(5)
    assert len(receiver.requests) == 1
    (line,) = dead_letters(dead)
    assert line["message"] == "text"
    assert line["reason"] == "HTTP 400 Bad Request (after 1 attempt)"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_a_refused_connection_is_retried_then_dead_lettered(tmp_path: Path) -> None:
    dead = tmp_path / "dead.jsonl"
    url = f"http://127.0.0.1:{free_port()}/x"
    active = api({"url": url, **FAST_RETRIES, "deadLetterFile": str(dead)})
    destination = active.destination
    direct(destination, {"name": "page view"}, {"n": 1})
    report = destination.shutdown(5)  # the retries fit well within the deadline
    assert report.undelivered == 1
    assert not report.timed_out
    (line,) = dead_letters(dead)
    assert line["reason"].startswith("connection failed: ConnectError")
    assert line["reason"].endswith("(after 3 attempts)")


def test_shutdown_keeps_its_deadline_and_dead_letters_the_rest(
    receiver: Receiver, tmp_path: Path
) -> None:
    receiver.hold()  # the endpoint hangs
    dead = tmp_path / "dead.jsonl"
    active = api({"url": receiver.url, "concurrency": 1, "deadLetterFile": str(dead)})
    destination = active.destination
    for index in range(4):
        direct(destination, {"name": "page view"}, {"n": index})
    receiver.wait_for(1)  # the first is in flight, three are queued
    started = time.monotonic()
    report = destination.shutdown(0.3)
    took = time.monotonic() - started
    receiver.let_go()
    assert took < 1.0, f"shutdown took {took:.2f} s"
    assert report.timed_out
    assert report.undelivered == 4
    assert report.detail == (
        "3 queued item(s) not sent before the shutdown deadline; 1 item(s) still in flight"
    )
    lines = dead_letters(dead)
    assert sorted(line["message"]["n"] for line in lines) == [0, 1, 2, 3]
    assert {line["reason"] for line in lines} == {
        "shutdown: upload still in flight at the deadline (it may yet arrive)",
        "shutdown timeout: still queued at the deadline",
    }
    stats = destination.stats()
    assert (stats["failed"], stats["delivered"], stats["queue_depth"]) == (4, 0, 0)


def test_shutdown_cuts_a_retry_wait_short(receiver: Receiver, tmp_path: Path) -> None:
    receiver.answer(503, count=10)
    dead = tmp_path / "dead.jsonl"
    active = api({"url": receiver.url, "retryBackoff": 30_000, "deadLetterFile": str(dead)})
    direct(active.destination, {"name": "page view"}, {"n": 1})
    receiver.wait_for(1)
    started = time.monotonic()
    report = active.destination.shutdown(0.2)
    assert time.monotonic() - started < 1.0
    assert report.undelivered == 1
    (line,) = dead_letters(dead)
    assert line["reason"] == (
        "shutdown: stopped before the batch was delivered (HTTP 503 Service Unavailable)"
    )


def test_queue_room_is_held_for_admitted_requests(receiver: Receiver) -> None:
    receiver.hold()
    active = api({"url": receiver.url, "maxQueueSize": 3, "concurrency": 1})
    destination = active.destination
    assert destination.reserve(2)
    assert not destination.reserve(2), "2 held + 2 more is over maxQueueSize=3"
    assert destination.reserve(1)
    destination.release(3)
    for index in range(4):  # one in flight, three queued: the queue is full
        direct(destination, {"name": "page view"}, {"n": index})
        if index == 0:
            receiver.wait_for(1)
    assert destination.backlog() == 1.0
    assert not destination.reserve(1)
    context = PushContext(None, {"n": 9}, {}, logging.getLogger("test"))
    assert destination.push({"name": "page view"}, context) is None  # unreserved: dropped
    assert destination.stats()["dropped_queue_full"] == 1
    receiver.let_go()
    assert destination.shutdown(5).undelivered == 0
    assert destination.stats()["delivered"] == 4


def test_an_event_json_cannot_hold_is_rejected_before_queueing(receiver: Receiver) -> None:
    active = api({"url": receiver.url}, data={"value": 2**70})
    result = Collector(destinations=[active]).push({"name": "page view"})
    outcome = result.outcomes["api"]
    assert not isinstance(outcome, str | Skipped)
    assert "cannot be sent as JSON" in outcome.reason
    assert active.destination.stats()["rejected"] == 1
    assert active.destination.stats()["queued"] == 0


def sample(text: str, name: str, **labels: str) -> float:
    wanted = ",".join(f'{key}="{value}"' for key, value in labels.items())
    found = re.search(rf"^{re.escape(name)}\{{{re.escape(wanted)}\}} (\S+)$", text, re.M)
    return float(found.group(1)) if found else -1.0


def test_metrics_show_what_was_queued_and_delivered(receiver: Receiver) -> None:
    active = api({"url": receiver.url, "batch": {"size": 3, "wait": 10_000}})
    collector = Collector(destinations=[active])
    with serving_collector(collector) as (url, _source), httpx.Client() as client:
        events = [{"name": "page view", "id": f"m{i}"} for i in range(3)]
        assert client.post(url + "/collect", json=events).status_code == 200
        receiver.wait_for(1)
        deadline = time.monotonic() + 10
        while active.destination.stats()["delivered"] < 3:  # counted after the answer
            assert time.monotonic() < deadline
            time.sleep(0.01)
        text = client.get(url + "/metrics").text
    messages = "flows_destination_messages_total"
    assert sample(text, messages, destination="api", outcome="queued") == 3
    assert sample(text, messages, destination="api", outcome="delivered") == 3
    assert sample(text, messages, destination="api", outcome="failed") == 0
    assert sample(text, messages, destination="api", outcome="dead_lettered") == 0
    assert sample(text, "flows_destination_queue", destination="api", measure="capacity") == 10000
    uploads = "flows_destination_upload_seconds"
    assert sample(text, uploads + "_count", destination="api") == 1
    assert sample(text, uploads + "_bucket", destination="api", le="+Inf") == 1


@pytest.mark.parametrize(
    ("settings", "path", "reason"),
    [
        ({"url": "ftp://x/"}, "url", "must be an http:// or https:// URL"),
        ({"url": "http://x:99999/"}, "url", "port that is not a number"),
        ({"method": "PO ST"}, "method", "must be an HTTP method"),
        ({"headers": {"X-Key": "a\r\nb"}}, "headers", "line break"),
        ({"transform": "tests.mapping_callables:nope"}, "transform", "has no 'nope'"),
        ({"batch": "soon"}, "batch", "must be a number (wait in ms)"),
        ({"batch": {"size": 0}}, "batch.size", "greater than or equal to 1"),
        ({"timeout": 0}, "timeout", "greater than 0"),
        ({"maxQueueSize": 0}, "maxQueueSize", "greater than or equal to 1"),
    ],
)
def test_settings_errors_name_their_path(settings: dict[str, Any], path: str, reason: str) -> None:
    with pytest.raises(DestinationSetupError) as raised:
        api(settings)
    assert raised.value.path == f"destinations.api.config.settings.{path}"
    assert reason in raised.value.reason


def test_the_method_is_sent_as_configured(receiver: Receiver) -> None:
    active = api({"url": receiver.url + "/hook?k=1", "method": "patch"})
    direct(active.destination, {"name": "page view"}, {"n": 1})
    (request,) = receiver.wait_for(1)
    assert (request.method, request.path) == ("PATCH", "/hook?k=1")
    active.destination.shutdown(5)


def test_check_connection_connects_and_sends_nothing(receiver: Receiver) -> None:
    reachable = api({"url": receiver.url + "/x"}).destination.check_connection()
    assert reachable.ok
    assert reachable.detail == f"connected to 127.0.0.1:{urlsplit(receiver.url).port}"
    closed = api({"url": f"http://127.0.0.1:{free_port()}/"}).destination.check_connection()
    assert not closed.ok
    assert closed.detail.startswith("cannot connect to 127.0.0.1:")
    assert receiver.requests == []


def test_a_transform_that_raises_fails_the_event_into_the_events_file(
    receiver: Receiver, tmp_path: Path
) -> None:
    active = api({"url": receiver.url, "transform": "tests.mapping_callables:transform_fails"})
    active.dead_letter.path = tmp_path / "events.jsonl"
    result = Collector(destinations=[active]).push({"name": "page view", "id": "t1"})
    assert result.outcomes["api"] == "failed"
    (line,) = dead_letters(tmp_path / "events.jsonl")
    assert (line["event"]["id"], line["reason"]) == ("t1", "push failed: KeyError: 'sku'")
    assert active.destination.stats()["queued"] == 0


def test_preview_shows_the_body_and_sends_nothing(receiver: Receiver) -> None:
    active = api({"url": receiver.url, "method": "put"}, data={"map": {"id": "id"}})
    routed = active.route({"name": "page view", "id": "v1"}, {})
    assert not isinstance(routed, Skipped)
    destination, without_url = active.destination, api({}).destination
    assert isinstance(destination, ApiDestination)
    assert isinstance(without_url, ApiDestination)
    preview = destination.preview(*routed)
    assert preview == [{"destination": "api", "method": "PUT", "body": {"id": "v1"}}]
    assert without_url.preview(*routed) == Skipped("no url")
    assert receiver.requests == []


def test_a_forked_child_sends_with_its_own_threads(receiver: Receiver) -> None:
    active = api({"url": receiver.url, "concurrency": 1})
    collector = Collector(destinations=[active])
    collector.start()
    collector.push({"name": "page view", "id": "parent"})
    receiver.wait_for(1)

    def child() -> None:  # the parent's sender threads do not exist here
        collector.push({"name": "page view", "id": "forked"})
        report = collector.shutdown(5)["api"]
        raise SystemExit(0 if report.undelivered == 0 and not report.timed_out else 3)

    process = multiprocessing.get_context("fork").Process(target=child)
    process.start()
    process.join(15)
    assert process.exitcode == 0
    assert collector.shutdown(5)["api"].undelivered == 0
    bodies = sorted(orjson.loads(request.body)["id"] for request in receiver.wait_for(2))
    assert bodies == ["forked", "parent"]
