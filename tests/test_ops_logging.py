"""What ``flows run`` logs: JSON or text lines, uvicorn under our names, an access log on
request, a failing destination told once, uploads that fail and recover told once each."""

from __future__ import annotations

import json
import logging
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from collector.collector import Collector, build_destination
from collector.destinations.api import ApiDestination
from destination_segment.receiver import SegmentReceiver
from flows.server.logs import PUSH_FAILED, JsonFormatter, RepeatedPushFailures
from tests.cli_helpers import flows_running
from tests.http_helpers import serving
from tests.http_receiver import Receiver

KEYS = {"time", "level", "logger", "message"}


def _flow_file(tmp_path: Path, receiver_url: str) -> Path:
    """An http source at /c and two api destinations: ``ok`` delivers, ``broken``'s
    transform raises on every event."""
    api = "tests.mapping_callables:transform_fails"
    flow = {
        "version": 4,
        "flows": {
            "default": {
                "sources": {"http": {"package": "http", "config": {"settings": {"path": "/c"}}}},
                "destinations": {
                    "ok": {"package": "api", "config": {"settings": {"url": receiver_url}}},
                    "broken": {
                        "package": "api",
                        "config": {"settings": {"url": receiver_url, "transform": api}},
                    },
                },
            }
        },
    }
    path = tmp_path / "ops.flow.json"
    path.write_text(json.dumps(flow))
    return path


def _run(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> str:
    """``flows run`` with ``args``: three events posted, then SIGTERM; returns its stderr."""
    with Receiver() as receiver:
        flow = _flow_file(tmp_path, receiver.url)
        environment = {"FLOWS_DEAD_LETTER_DIR": str(tmp_path), **(env or {})}
        with flows_running(flow, *args, env=environment) as (process, url, banner):
            assert "serving flow" in banner
            events = [{"name": "page view", "id": f"e{i}"} for i in range(3)]
            for event in events:
                assert httpx.post(url + "/c", json=event, timeout=10).status_code == 200
            receiver.wait_for(1)  # ok delivered
            process.send_signal(signal.SIGTERM)
            _, stderr = process.communicate(timeout=30)
            assert process.returncode == 0, stderr
    return stderr


def _json_lines(stderr: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in stderr.splitlines()]
    assert lines, "nothing was logged"
    for line in lines:
        assert line.keys() >= KEYS, line
    return lines


def test_json_lines_name_the_destination_and_event_and_tell_a_traceback_once(
    tmp_path: Path,
) -> None:
    lines = _json_lines(_run(tmp_path, "--log-format", "json"))
    failures = [line for line in lines if line["message"].startswith("destination broken failed")]
    assert len(failures) == 1, "three failures within 10 s: one line, with the traceback"
    [failure] = failures
    assert (failure["destination"], failure["event"]) == ("broken", "page view")
    assert failure["level"] == "ERROR"
    assert failure["logger"] == "flows.collector"
    assert "KeyError: 'sku'" in failure["exception"]
    loggers = {line["logger"] for line in lines}
    assert "flows.server" in loggers, "uvicorn's start-up lines, under our name"
    assert not [name for name in loggers if name.startswith("uvicorn")]
    assert "flows.http.access" not in loggers, "no access log unless asked"
    assert "httpx" not in loggers, "the api destination's client does not log every upload"
    assert not [line for line in lines if "color_message" in line]
    flushed = [line for line in lines if line["message"] == "destination ok: flushed"]
    assert [line["destination"] for line in flushed] == ["ok"]
    time.strptime(lines[0]["time"][:19], "%Y-%m-%dT%H:%M:%S")


def test_access_log_in_json_from_the_environment(tmp_path: Path) -> None:
    env = {"FLOWS_LOG_FORMAT": "json", "FLOWS_ACCESS_LOG": "1"}
    lines = _json_lines(_run(tmp_path, env=env))
    access = [line for line in lines if line["logger"] == "flows.http.access"]
    assert len(access) == 3
    for line in access:
        assert (line["method"], line["path"], line["status"]) == ("POST", "/c", 200)
        assert line["client"].startswith("127.0.0.1:")
        assert line["level"] == "INFO"


def test_access_log_in_text(tmp_path: Path) -> None:
    stderr = _run(tmp_path, "--access-log")
    access = [line for line in stderr.splitlines() if " flows.http.access: " in line]
    assert len(access) == 3
    assert all(line.endswith('"POST /c HTTP/1.1" 200') for line in access)
    assert " ERROR flows.collector: destination broken failed on event 'page view'" in stderr
    assert stderr.count("Traceback (most recent call last)") == 1


def _record(destination: str, error: BaseException) -> logging.LogRecord:
    return logging.LogRecord(
        "flows.collector",
        logging.ERROR,
        __file__,
        1,
        PUSH_FAILED,
        (destination, "page view"),
        (type(error), error, None),
    )


def test_repeated_push_failures_are_counted_at_a_bounded_rate() -> None:
    now = [100.0]
    failures = RepeatedPushFailures(interval=10.0, clock=lambda: now[0])
    first = _record("broken", KeyError("sku"))
    assert failures.filter(first)
    assert first.exc_info is not None, "the first keeps its traceback"
    assert not any(failures.filter(_record("broken", KeyError("sku"))) for _ in range(5))
    assert failures.filter(_record("broken", ValueError("x"))), "a new kind of error is told"
    assert failures.filter(_record("other", KeyError("sku"))), "so is another destination"
    now[0] += 10.0
    told = _record("broken", KeyError("sku"))
    assert failures.filter(told)
    assert told.exc_info is None
    assert told.getMessage() == (
        "destination broken failed on event 'page view': 6 failure(s) in the last 10 s"
        " (traceback logged once)"
    )
    line = json.loads(JsonFormatter().format(told))
    assert (line["destination"], line["event"], line["failures"]) == ("broken", "page view", 6)
    assert not failures.filter(_record("broken", KeyError("sku")))
    unrelated = logging.LogRecord("flows.collector", logging.ERROR, "", 1, "other %s", ("x",), None)
    assert failures.filter(unrelated)


def test_api_uploads_failing_and_recovering_are_told_once_each(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="flows.destination.api")
    with Receiver() as receiver:
        active = build_destination(
            "api", ApiDestination, {"settings": {"url": receiver.url, "maxRetries": 0}}
        )
        collector = Collector(destinations=[active])
        receiver.answer(400, count=2)
        for index in range(3):
            collector.push({"name": "page view", "id": f"h{index}"})
            stats = active.destination.stats
            deadline = time.monotonic() + 10
            while stats()["delivered"] + stats()["failed"] < index + 1:
                assert time.monotonic() < deadline, "the upload never settled"
                time.sleep(0.01)
        collector.shutdown(5)
    told = [r for r in caplog.records if r.name == "flows.destination.api" and "uploads" in r.msg]
    assert [r.levelname for r in told] == ["WARNING", "INFO"]
    assert told[0].getMessage().startswith("api: uploads are failing: ")
    assert "after 2 failed upload(s)" in told[1].getMessage()
    assert told[0].destination == "api"  # type: ignore[attr-defined]


def test_segment_uploads_failing_and_recovering_are_told_once_each(
    segment_receiver: SegmentReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="flows.destination.segment")
    segment = {"flushAt": 1, "maxRetries": 0, "maxTotalBackoffDuration": 0}
    with serving(segment_receiver.url, segment=segment) as served, httpx.Client() as client:
        segment_receiver.fail(400, count=2)
        stats = served.segment.destination.stats
        for index in range(3):
            event = {"name": "page view", "id": f"s{index}", "user": {"id": "u1"}}
            assert client.post(served.collect, json=event).status_code == 200
            deadline = time.monotonic() + 10
            while stats()["delivered"] + stats()["failed"] < index + 1:
                assert time.monotonic() < deadline, "the upload never settled"
                time.sleep(0.01)
    told = [r for r in caplog.records if "uploads" in str(r.msg)]
    assert [r.levelname for r in told] == ["WARNING", "INFO"], [r.getMessage() for r in told]
    assert told[0].getMessage().startswith("segment: uploads are failing: ")
    assert "after 2 failed upload(s)" in told[1].getMessage()
