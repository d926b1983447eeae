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

from tests.cli_helpers import EXAMPLES, ROOT, free_port


def test_the_demo_serves_the_shop_flow_into_its_local_receiver() -> None:
    port, sink = free_port(), free_port()
    env = {**os.environ, "PORT": str(port), "SEGMENT_SINK_PORT": str(sink)}
    env.pop("SEGMENT_WRITE_KEY", None)
    env.pop("SEGMENT_HOST", None)
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
            messages = httpx.get(f"http://127.0.0.1:{sink}/messages", timeout=5).json()["messages"]
            time.sleep(0.1)
        assert sorted(str(m["type"]) for m in messages) == ["identify", "page", "track", "track"]
    finally:
        demo.send_signal(signal.SIGTERM)
        out, err = demo.communicate(timeout=30)
    assert demo.returncode == 0, err
    assert f"POST events to http://127.0.0.1:{port}/collect" in out
