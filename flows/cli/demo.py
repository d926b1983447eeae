"""``flows demo`` (and ``make run``, ``python -m flows.cli.demo``): the shop flow with a
local Segment-compatible receiver.

Starts the receiver (unless a real Segment write key or a host is set), then
serves the packaged examples/shop.flow.json, and prints where to POST events and
where to read what Segment would receive. With ``SEGMENT_WRITE_KEY`` alone the
events go to real Segment: the flow's own host default (the local receiver) must
not win. The examples are package data, so this works from an installed wheel;
the receiver's record goes to ``./out/`` of the current directory, never into
the package.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping
from importlib.resources import as_file, files
from importlib.resources.abc import Traversable
from pathlib import Path

from flows.cli.commands import AddCommand, CommandError

REAL_SEGMENT_HOST = "https://api.segment.io"
"""Segment's own API (the SDK's default host), where a write key alone sends."""

RECORD = Path("out") / "segment-received.jsonl"
"""Where the local receiver appends what it got, under the current directory."""


def examples() -> Traversable:
    """The examples shipped in the package (``flows/examples``)."""
    return files("flows") / "examples"


def segment_target(env: Mapping[str, str]) -> str | None:
    """Where the demo sends: ``SEGMENT_HOST`` when set, real Segment for a write key
    alone, else None: the local receiver."""
    if env.get("SEGMENT_HOST"):
        return env["SEGMENT_HOST"]
    if env.get("SEGMENT_WRITE_KEY"):
        return REAL_SEGMENT_HOST
    return None


def shown(path: Path, cwd: Path | None = None) -> str:
    """``path`` relative to ``cwd`` (default: the current directory) when under it, else
    absolute: what a user can paste where they are."""
    here = (cwd or Path.cwd()).resolve()
    absolute = path.resolve()
    return str(absolute.relative_to(here)) if absolute.is_relative_to(here) else str(absolute)


def add_command(add: AddCommand) -> None:
    """Add ``demo`` and its options to ``flows``."""
    demo = add("demo", run, "Serve the example shop flow into a local Segment receiver")
    demo.add_argument("--port", type=int, help="flow's listen port (default: PORT, else 8080)")
    demo.add_argument(
        "--sink-port",
        type=int,
        help="local receiver's port (default: SEGMENT_SINK_PORT, else 9010)",
    )


def run(args: argparse.Namespace) -> int:
    """Run the receiver and the demo flow together until Ctrl-C."""
    from destination_segment.receiver.cli import port_from_env

    try:
        port = port_from_env("PORT", 8080) if args.port is None else args.port
        sink_port = port_from_env() if args.sink_port is None else args.sink_port
    except ValueError as error:
        raise CommandError(str(error)) from None
    with (
        as_file(examples() / "shop.flow.json") as flow,
        as_file(examples() / "events" / "journey.json") as journey,
    ):
        return _serve(flow, journey, port, sink_port)


def _serve(flow: Path, journey: Path, port: int, sink_port: int) -> int:
    from destination_segment.receiver import SegmentReceiver
    from flows.cli.main import main as flows_main

    target = segment_target(os.environ)
    receiver = None
    record = Path.cwd() / RECORD
    if target is not None:
        os.environ["SEGMENT_HOST"] = target
    else:
        record.parent.mkdir(parents=True, exist_ok=True)
        try:
            receiver = SegmentReceiver(port=sink_port, record_path=record).start()
        except OSError as error:
            raise CommandError(
                f"--sink-port: cannot listen on 127.0.0.1:{sink_port}: {error.strerror or error}"
            ) from None
        os.environ["SEGMENT_HOST"] = receiver.url
    collect = f"http://127.0.0.1:{port}/collect"
    print(
        "\n".join(
            [
                f"demo flow: {shown(flow)}",
                f"POST events to {collect}, e.g.:",
                f"  curl -s {collect} -H 'Content-Type: application/json' --data @{shown(journey)}",
                (
                    f"what Segment would receive: curl -s {receiver.url}/messages "
                    f"(also appended to {shown(record)})"
                    if receiver is not None
                    else f"sending to {target} (SEGMENT_WRITE_KEY / SEGMENT_HOST are set)"
                ),
                f"metrics: curl -s http://127.0.0.1:{port}/metrics; stop with Ctrl-C",
            ]
        ),
        flush=True,
    )
    try:
        return flows_main(["run", str(flow), "--port", str(port), "--host", "127.0.0.1"])
    finally:
        if receiver is not None:
            receiver.stop()


def main(argv: list[str] | None = None) -> int:
    """``python -m flows.cli.demo [--port N] [--sink-port N]``: the same as ``flows demo``."""
    from flows.cli.main import main as flows_main

    return flows_main(["demo", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
