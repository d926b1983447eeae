"""Running the demo (``python -m flows.cli.demo``, ``flows demo``) for real, as a user would."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.cli_helpers import EXAMPLES, ROOT

DEMO = [sys.executable, "-m", "flows.cli.demo"]
JOURNEY_TYPES = ["identify", "page", "track", "track"]
"""The Segment calls examples/events/journey.json makes through the shop flow, sorted."""


def run_demo(
    env: dict[str, str],
    port: int,
    receiver_url: str,
    *,
    command: list[str] | None = None,
    cwd: Path = ROOT,
    stop: signal.Signals = signal.SIGTERM,
) -> str:
    """Start the demo (``command``, default ``python -m flows.cli.demo``) in ``cwd``, post the
    journey, wait for its 4 messages at ``receiver_url``, stop it with ``stop``; its stdout."""
    demo = subprocess.Popen(
        command or DEMO,
        cwd=cwd,
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
        assert sorted(str(m["type"]) for m in messages) == JOURNEY_TYPES
    finally:
        demo.send_signal(stop)
        try:
            out, err = demo.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            demo.kill()
            out, err = demo.communicate(timeout=10)
    assert demo.returncode == 0, err
    assert "Warning" not in err, err  # e.g. runpy's, when flows.cli imported the demo early
    assert f"POST events to http://127.0.0.1:{port}/collect" in out
    return out
