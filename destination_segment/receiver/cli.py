"""``python -m destination_segment.receiver`` and ``flows segment-sink``: serve until a signal."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from types import FrameType
from typing import Final

from destination_segment.receiver.core import SegmentReceiver

DEFAULT_PORT: Final = 9010


class _StopServingError(Exception):
    """Raised by the signal handler to leave main()'s wait."""


def _default_port() -> int:
    value = os.environ.get("SEGMENT_SINK_PORT")
    if not value:
        return DEFAULT_PORT
    try:
        return int(value)
    except ValueError:
        raise SystemExit(f"SEGMENT_SINK_PORT must be a port number, not {value!r}") from None


def main(argv: list[str] | None = None) -> int:
    """Run the receiver until SIGINT/SIGTERM; print where it listens."""
    parser = argparse.ArgumentParser(
        prog="python -m destination_segment.receiver",
        description="A local Segment-compatible receiver: see what Segment would receive.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface (default 127.0.0.1)")
    parser.add_argument(
        "--port",
        type=int,
        default=_default_port(),
        help=f"port, 0 for any free one (default $SEGMENT_SINK_PORT or {DEFAULT_PORT})",
    )
    parser.add_argument(
        "--write-key", default=None, help="accept only this write key (default: any non-empty)"
    )
    parser.add_argument("--record", metavar="FILE", help="also append each message as a JSON line")
    parser.add_argument(
        "--max-messages", type=int, default=None, help="keep only the newest N in memory"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="segment-receiver: %(message)s")

    receiver = SegmentReceiver(
        args.host, args.port, args.write_key, args.record, max_messages=args.max_messages
    )

    def on_signal(signum: int, frame: FrameType | None) -> None:
        raise _StopServingError

    # Handlers first and everything after inside the try, so a signal at any
    # point still ends in stop() and exit code 0.
    in_main_thread = threading.current_thread() is threading.main_thread()
    watched = (signal.SIGINT, signal.SIGTERM)
    previous = {sig: signal.signal(sig, on_signal) for sig in watched} if in_main_thread else {}
    try:
        try:
            receiver.start()
        except OSError as error:
            print(f"cannot listen on {args.host}:{args.port}: {error.strerror}", file=sys.stderr)
            return 1
        keys = "only the configured write key" if args.write_key else "any non-empty write key"
        recording = f"; recording to {args.record}" if args.record else ""
        print(
            f"Segment receiver listening on {receiver.url} (SDK host; accepts {keys}); "
            f"read messages back: curl -s {receiver.url}/messages{recording}",
            flush=True,
        )
        while True:
            time.sleep(3600)  # interrupted by the signal handler's _StopServingError
    except (_StopServingError, KeyboardInterrupt):
        return 0
    finally:
        for sig in previous:
            signal.signal(sig, signal.SIG_IGN)  # a second Ctrl-C must not break stop()
        receiver.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
