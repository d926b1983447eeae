"""``make run``: the demo shop flow with a local Segment-compatible receiver.

Starts the receiver (unless a real Segment write key or a host is set), then
serves examples/shop.flow.json, and prints where to POST events and where to
read what Segment would receive. With ``SEGMENT_WRITE_KEY`` alone the events go
to real Segment: the flow's own host default (the local receiver) must not win.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

from flows.cli.main import main as flows_main

ROOT = Path(__file__).resolve().parents[2]
DEMO_FLOW = ROOT / "examples" / "shop.flow.json"
EXAMPLE_EVENTS = ROOT / "examples" / "events" / "journey.json"


REAL_SEGMENT_HOST = "https://api.segment.io"
"""Segment's own API (the SDK's default host), where a write key alone sends."""


def segment_target(env: Mapping[str, str]) -> str | None:
    """Where the demo sends: ``SEGMENT_HOST`` when set, real Segment for a write key
    alone, else None: the local receiver."""
    if env.get("SEGMENT_HOST"):
        return env["SEGMENT_HOST"]
    if env.get("SEGMENT_WRITE_KEY"):
        return REAL_SEGMENT_HOST
    return None


def main() -> int:
    """Run the receiver and the demo flow together until Ctrl-C."""
    from destination_segment.receiver import SegmentReceiver

    port = int(os.environ.get("PORT", "8080"))
    target = segment_target(os.environ)
    receiver = None
    if target is not None:
        os.environ["SEGMENT_HOST"] = target
    else:
        sink_port = int(os.environ.get("SEGMENT_SINK_PORT", "9010"))
        record = ROOT / "out" / "segment-received.jsonl"
        record.parent.mkdir(exist_ok=True)
        receiver = SegmentReceiver(port=sink_port, record_path=record).start()
        os.environ["SEGMENT_HOST"] = receiver.url
    collect = f"http://127.0.0.1:{port}/collect"
    print(
        "\n".join(
            [
                f"demo flow: {DEMO_FLOW.relative_to(ROOT)}",
                f"POST events to {collect}, e.g.:",
                f"  curl -s {collect} -H 'Content-Type: application/json' "
                f"--data @{EXAMPLE_EVENTS.relative_to(ROOT)}",
                (
                    f"what Segment would receive: curl -s {receiver.url}/messages "
                    f"(also appended to {record.relative_to(ROOT)})"
                    if receiver is not None
                    else f"sending to {target} (SEGMENT_WRITE_KEY / SEGMENT_HOST are set)"
                ),
                f"metrics: curl -s http://127.0.0.1:{port}/metrics; stop with Ctrl-C",
            ]
        ),
        flush=True,
    )
    try:
        return flows_main(["run", str(DEMO_FLOW), "--port", str(port), "--host", "127.0.0.1"])
    finally:
        if receiver is not None:
            receiver.stop()


if __name__ == "__main__":
    sys.exit(main())
