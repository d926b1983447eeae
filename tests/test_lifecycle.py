"""The branches off the happy path: no groupId, a disabled destination, a failing error
handler, a destination that cannot start, and one that fails to shut down.

Each is a place where a quiet regression would lose or invent data, so each
test checks what reached the receiver (or that nothing did), not only a status.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import subprocess
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import BaseModel

from collector.collector import Collector, build_destination
from collector.destination import Destination, PushContext, ShutdownReport, Skipped
from destination_segment.calls import SegmentCall
from destination_segment.client import SegmentClient
from destination_segment.receiver import SegmentReceiver
from destination_segment.settings import SegmentSettings
from tests.cli_helpers import EXAMPLES, FLOWS, ROOT, free_port, run_flows
from tests.segment_helpers import WRITE_KEY, segment_flow

GROUP = {"group": {"map": {"groupId": "data.company", "traits": {"map": {"n": "data.n"}}}}}


def _event(event_id: str, **data: Any) -> dict[str, Any]:
    return {"name": "product view", "id": event_id, "user": {"id": "u-life"}, "data": data}


# -- group: only with a non-empty string groupId ----------------------------------------------

NO_GROUP_ID: list[dict[str, Any]] = [{}, {"company": ""}, {"company": 42}, {"company": None}]


def test_no_group_call_without_a_valid_group_id(segment_receiver: SegmentReceiver) -> None:
    active = build_destination("segment", "segment", {"settings": {"writeKey": WRITE_KEY, **GROUP}})
    collector = Collector(None, [active])
    for index, data in enumerate(NO_GROUP_ID):
        event = collector.prepare(_event(f"ng{index}", **data))
        routed = active.route(event, event["consent"])
        assert isinstance(routed, tuple)
        calls = active.destination.calls(*routed)  # type: ignore[attr-defined]
        assert [c.type for c in calls] == ["track"], data

    collector, _ = segment_flow(segment_receiver.url, GROUP)
    for index, data in enumerate([*NO_GROUP_ID, {"company": "acme", "n": 1}]):
        collector.push(_event(f"g{index}", **data))
    assert collector.shutdown(5)["segment"].undelivered == 0
    groups = segment_receiver.messages("group")
    assert [(m["messageId"], m["groupId"]) for m in groups] == [("g4-group", "acme")]
    assert len(segment_receiver.messages("track")) == 5


# -- disable: mapped and previewed, never sent ---------------------------------------------------


def test_a_disabled_destination_sends_nothing_and_counts_the_skips(
    segment_receiver: SegmentReceiver,
) -> None:
    collector, active = segment_flow(segment_receiver.url, {"disable": True, **GROUP})
    result = collector.push(_event("off", company="acme"))
    assert result.outcomes == {"segment": Skipped("disabled")}
    assert (active.stats.sent, active.stats.skipped) == (0, {"disabled": 1})
    assert active.destination.stats()["enqueued"] == 0
    assert active.destination.client.alive_consumers() == 0  # type: ignore[attr-defined]
    report = collector.shutdown(5)["segment"]
    assert (report.undelivered, report.timed_out) == (0, False)
    # shut down and flushed: anything handed to the SDK would have been posted by now
    assert segment_receiver.stats["requests"] == 0


def test_flows_push_still_previews_a_disabled_destination(tmp_path: Path) -> None:
    flow = json.loads((EXAMPLES / "shop.flow.json").read_text())
    settings = flow["flows"]["default"]["destinations"]["segment"]["config"]["settings"]
    settings["disable"] = True
    flow_file = tmp_path / "disabled.flow.json"
    flow_file.write_text(json.dumps(flow))
    event = EXAMPLES / "events" / "product-view.json"
    result = run_flows("push", str(flow_file), "--event", str(event))
    assert result.returncode == 0, result.stderr
    messages = [json.loads(line) for line in result.stdout.splitlines()]
    tracks = [m for m in messages if m.get("type") == "track"]
    assert [(m["event"], m["messageId"]) for m in tracks] == [
        ("Product Viewed", "1700000001000-product-view-track")
    ]


# -- the SDK's error handler: a failing report must not kill the consumer -------------------------


def test_a_failing_failure_handler_is_logged_and_the_consumer_keeps_sending(
    segment_receiver: SegmentReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    reported: list[list[str]] = []

    def failing_handler(batch: list[dict[str, Any]], reason: str) -> None:
        reported.append([m["messageId"] for m in batch])
        raise OSError("the dead-letter disk is gone")

    settings = SegmentSettings.model_validate(
        {"writeKey": WRITE_KEY, "host": segment_receiver.url, "flushInterval": 20, "flushAt": 1}
    )
    client = SegmentClient(settings, on_failure=failing_handler)
    segment_receiver.fail(400, count=1)
    identity = {"userId": "u-handler", "timestamp": datetime.now(UTC)}
    with caplog.at_level(logging.ERROR, logger="flows.destination.segment"):
        assert client.send(_call("lost", identity))
        segment_receiver.wait_for_requests(1)
        assert client.send(_call("after", identity))
        [arrived] = segment_receiver.wait_for(1)
    assert arrived["messageId"] == "after"
    assert reported == [["lost"]]
    assert client.stats.failed == 1
    assert "segment: error handler failed" in caplog.text
    assert client.alive_consumers() == 1
    assert client.shutdown(5).undelivered == 0


def _call(message_id: str, identity: dict[str, Any]) -> SegmentCall:
    return SegmentCall("track", {**identity, "event": "x", "messageId": message_id})


# -- a destination that cannot start -------------------------------------------------------------


def test_flows_run_exits_non_zero_when_a_destination_cannot_start(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-dir" / "events.log"
    flow = {
        "version": 4,
        "flows": {
            "default": {
                "sources": {"http": {"package": "http"}},
                "destinations": {
                    "log": {"package": "log", "config": {"settings": {"path": str(missing)}}}
                },
            }
        },
    }
    flow_file = tmp_path / "broken.flow.json"
    flow_file.write_text(json.dumps(flow))
    port = free_port()
    process = subprocess.Popen(
        [*FLOWS, "run", str(flow_file), "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT,
        env=dict(os.environ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    statuses: list[int] = []
    polls = 0
    try:
        deadline = time.monotonic() + 30
        with httpx.Client(timeout=2) as client:
            while process.poll() is None and polls < 300 and time.monotonic() < deadline:
                polls += 1
                # not listening yet, or cut off as the process exits
                with contextlib.suppress(httpx.TransportError):
                    statuses.append(client.get(f"http://127.0.0.1:{port}/ready").status_code)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=0.05)  # between polls: wait for the exit itself
        stdout, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert polls >= 1, "the process was polled while it ran"
    assert 200 not in statuses, statuses
    assert process.returncode == 1, "the README's exit code for an error"
    assert "serving" not in stdout, "no banner for a server that never started"
    assert "destinations failed to start" in stderr
    assert f"No such file or directory: '{missing}'" in stderr
    assert "Traceback" not in stderr, "one clear line (a traceback only with --log-level debug)"


# -- a destination whose shutdown raises ---------------------------------------------------------


class _NoSettings(BaseModel):
    pass


class ShutdownFails(Destination[_NoSettings]):
    """Takes events, then fails to shut down, as a buggy third-party destination might."""

    type = "shutdown-fails"
    Settings = _NoSettings

    def push(self, event: Mapping[str, Any], context: PushContext) -> Skipped | None:
        return None

    def shutdown(self, timeout: float) -> ShutdownReport:
        raise RuntimeError("flush exploded")


def test_a_destination_failing_to_shut_down_is_reported_and_the_others_still_flush(
    segment_receiver: SegmentReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    _, segment = segment_flow(segment_receiver.url)
    broken = build_destination("broken", ShutdownFails, {})
    collector = Collector(None, [broken, segment])
    collector.start()
    for index in range(3):
        collector.push(_event(f"sd{index}"))
    with caplog.at_level(logging.ERROR, logger="flows.collector"):
        reports = collector.shutdown(5)
    assert reports["broken"] == ShutdownReport(detail="shutdown failed: RuntimeError")
    assert reports["segment"] == ShutdownReport(undelivered=0, timed_out=False, detail="flushed")
    assert "destination broken failed to shut down" in caplog.text
    assert "flush exploded" in caplog.text  # the traceback is logged
    assert segment_receiver.message_ids() == {f"sd{i}-track" for i in range(3)}
    assert segment.destination.client.alive_consumers() == 0  # type: ignore[attr-defined]
