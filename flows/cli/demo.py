"""``make run``: the demo shop flow with a local Segment-compatible receiver.

Starts the receiver (unless a real Segment write key is set and no host
override), then serves examples/shop.flow.json, and prints where to POST
events and where to read what Segment would receive.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from flows.cli.main import main as flows_main

ROOT = Path(__file__).resolve().parents[2]
DEMO_FLOW = ROOT / "examples" / "shop.flow.json"
EXAMPLE_EVENTS = ROOT / "examples" / "events" / "journey.json"


def main() -> int:
    """Run the receiver and the demo flow together until Ctrl-C."""
    from destination_segment.receiver import SegmentReceiver

    port = int(os.environ.get("PORT", "8080"))
    real_segment = "SEGMENT_WRITE_KEY" in os.environ and "SEGMENT_HOST" not in os.environ
    receiver = None
    if not real_segment:
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
                    else "sending to real Segment (SEGMENT_WRITE_KEY is set)"
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
