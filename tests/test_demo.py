"""``make run``: the demo (``python -m flows.cli.demo``) with its local receiver, for real.

The README's first command: the receiver and the demo flow start, the example journey is
answered 200, and the receiver has the Segment messages the journey makes.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import httpx
import pytest

from destination_segment.receiver import SegmentReceiver
from flows.cli.demo import segment_target
from tests.cli_helpers import FLOWS, ROOT, free_port, run_flows
from tests.demo_helpers import JOURNEY_TYPES, run_demo


def test_where_the_demo_sends() -> None:
    assert segment_target({}) is None, "no key, no host: the local receiver"
    assert segment_target({"SEGMENT_WRITE_KEY": "wk"}) == "https://api.segment.io", (
        "a write key alone is real Segment: the flow's local default must not win"
    )
    eu = "https://events.eu1.segmentapis.com"
    assert segment_target({"SEGMENT_WRITE_KEY": "wk", "SEGMENT_HOST": eu}) == eu


def test_the_demo_serves_the_shop_flow_into_its_local_receiver() -> None:
    port, sink = free_port(), free_port()
    env = {**os.environ, "PORT": str(port), "SEGMENT_SINK_PORT": str(sink)}
    env.pop("SEGMENT_WRITE_KEY", None)
    env.pop("SEGMENT_HOST", None)
    out = run_demo(env, port, f"http://127.0.0.1:{sink}")
    assert f"what Segment would receive: curl -s http://127.0.0.1:{sink}/messages" in out


def test_with_a_write_key_and_host_the_demo_sends_there_and_starts_no_receiver() -> None:
    port, sink = free_port(), free_port()
    with SegmentReceiver(write_key="wk-real-mode-1234567") as receiver:
        env = {
            **os.environ,
            "PORT": str(port),
            "SEGMENT_SINK_PORT": str(sink),
            "SEGMENT_WRITE_KEY": "wk-real-mode-1234567",
            "SEGMENT_HOST": receiver.url,
        }
        url = receiver.url
        out = run_demo(env, port, url)
    assert f"sending to {url}" in out
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{sink}/health", timeout=1)


def test_flows_demo_flags_win_and_the_record_lands_in_the_current_directory(
    tmp_path: Path,
) -> None:
    port, sink = free_port(), free_port()
    env = {**os.environ, "PORT": "not-used", "SEGMENT_SINK_PORT": "not-used"}
    env.pop("SEGMENT_WRITE_KEY", None)
    env.pop("SEGMENT_HOST", None)
    command = [*FLOWS, "demo", "--port", str(port), "--sink-port", str(sink)]
    out = run_demo(env, port, f"http://127.0.0.1:{sink}", command=command, cwd=tmp_path)
    shop = ROOT / "flows" / "examples" / "shop.flow.json"
    assert f"demo flow: {shop}\n" in out, "not under the cwd: shown absolute"
    assert "(also appended to out/segment-received.jsonl)" in out, "under the cwd: relative"
    record = tmp_path / "out" / "segment-received.jsonl"
    lines = [json.loads(line) for line in record.read_text().splitlines()]
    assert sorted(line["type"] for line in lines) == JOURNEY_TYPES


def test_from_the_repository_the_demo_shows_paths_relative_to_it() -> None:
    port, sink = free_port(), free_port()
    env = {**os.environ, "PORT": str(port), "SEGMENT_SINK_PORT": str(sink)}
    env.pop("SEGMENT_WRITE_KEY", None)
    env.pop("SEGMENT_HOST", None)
    out = run_demo(env, port, f"http://127.0.0.1:{sink}", stop=signal.SIGINT)
    assert "demo flow: flows/examples/shop.flow.json\n" in out
    assert "--data @flows/examples/events/journey.json" in out


def test_a_port_variable_that_is_not_a_number_is_named() -> None:
    result = run_flows("demo", env={"PORT": "eighty"})
    assert result.returncode == 1
    assert result.stderr == "flows: error: PORT must be a port number, not 'eighty'\n"
