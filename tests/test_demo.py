"""``make run``: the demo (``python -m flows.cli.demo``) with its local receiver, for real.

The README's first command: the receiver and the demo flow start, the example journey is
answered 200, and the receiver has the Segment messages the journey makes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import httpx
import pytest

from destination_segment.receiver import SegmentReceiver
from flows.cli.demo import segment_target
from tests.cli_helpers import EXAMPLES, ROOT, free_port


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


def run_demo(env: dict[str, str], port: int, receiver_url: str) -> str:
    """Start the demo, post the journey, wait for its 4 messages at ``receiver_url``, stop it."""
    demo = subprocess.Popen(
        [sys.executable, "-m", "flows.cli.demo"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert demo.poll() is None, demo.communicate()[1]
            try:
                if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the demo did not get ready in 30 s"
            time.sleep(0.1)
        journey = json.loads((EXAMPLES / "events" / "journey.json").read_text())
        answer = httpx.post(f"http://127.0.0.1:{port}/collect", json=journey, timeout=10)
        assert answer.json() == {"ok": True, "accepted": len(journey)}
        messages: list[dict[str, object]] = []
        while len(messages) < 4 and time.monotonic() < deadline + 10:
            messages = httpx.get(f"{receiver_url}/messages", timeout=5).json()["messages"]
            time.sleep(0.1)
        assert sorted(str(m["type"]) for m in messages) == ["identify", "page", "track", "track"]
    finally:
        demo.send_signal(signal.SIGTERM)
        out, err = demo.communicate(timeout=30)
    assert demo.returncode == 0, err
    assert f"POST events to http://127.0.0.1:{port}/collect" in out
    return out
