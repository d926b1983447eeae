"""``flows segment-sink``: the local receiver as a ``flows`` command.

Registered under the entry-point group ``flows.commands`` (see
``flows.cli.commands``), so ``flows`` itself knows nothing of Segment.
"""

from __future__ import annotations

import argparse

from flows.cli.commands import AddCommand, CommandError


def add_command(add: AddCommand) -> None:
    """Add ``segment-sink`` and its options to ``flows``."""
    sink = add("segment-sink", run, "Run a local Segment-compatible receiver (no account)")
    sink.add_argument("--host", default="127.0.0.1", help="interface (default 127.0.0.1)")
    sink.add_argument(
        "--port",
        type=int,
        default=None,
        help="port, 0 for any free one (default $SEGMENT_SINK_PORT, else 9010)",
    )
    sink.add_argument("--record", help="append every received message to this JSON-lines file")
    sink.add_argument("--write-key", help="accept only this write key (default: any)")
    sink.add_argument(
        "--max-messages",
        type=_positive_int,
        default=None,
        metavar="N",
        help="keep only the newest N messages in memory (default: all)",
    )


def _positive_int(text: str) -> int:
    """``--max-messages``: a count of 1 or more (argparse words the error)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, not {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {value}")
    return value


def run(args: argparse.Namespace) -> int:
    """Serve until SIGINT/SIGTERM, then exit 0."""
    from destination_segment.receiver.cli import port_from_env, serve, start_error
    from destination_segment.receiver.core import SegmentReceiver

    try:
        port = port_from_env() if args.port is None else args.port
    except ValueError as error:
        raise CommandError(str(error)) from None
    receiver = SegmentReceiver(
        args.host, port, args.write_key, args.record, max_messages=args.max_messages
    )
    try:
        return serve(receiver, write_key=args.write_key, record=args.record)
    except OSError as error:
        raise CommandError(start_error(error, args.host, port)) from None
