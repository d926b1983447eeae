"""``python -m destination_segment.receiver`` (``main``) and ``flows segment-sink`` (``serve``,
from ``destination_segment.sink_command``): serve until a signal."""

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


def port_from_env(name: str = "SEGMENT_SINK_PORT", default: int = DEFAULT_PORT) -> int:
    """``$name`` (the receiver's ``SEGMENT_SINK_PORT`` unless told), else ``default``;
    ValueError naming the variable when it is not a port number."""
    value = os.environ.get(name)
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{name} must be a port number, not {value!r}") from None


def _default_port() -> int:
    try:
        return port_from_env()
    except ValueError as error:
        raise SystemExit(str(error)) from None


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
    receiver = SegmentReceiver(
        args.host, args.port, args.write_key, args.record, max_messages=args.max_messages
    )
    try:
        return serve(receiver, write_key=args.write_key, record=args.record)
    except OSError as error:
        print(start_error(error, args.host, args.port), file=sys.stderr)
        return 1


def start_error(error: OSError, host: str, port: int) -> str:
    """Why ``serve`` could not start, in one line: the record file, or the address."""
    if error.filename is not None:
        return f"--record: cannot open {error.filename}: {error.strerror}"
    return f"cannot listen on {host}:{port}: {error.strerror}"


def serve(receiver: SegmentReceiver, *, write_key: str | None, record: str | None) -> int:
    """Start ``receiver``, print where it listens, serve until SIGINT/SIGTERM; 0 then.

    Raises OSError when it cannot listen (the caller words the error).
    """
    logging.basicConfig(level=logging.WARNING, format="segment-receiver: %(message)s")

    def on_signal(signum: int, frame: FrameType | None) -> None:
        raise _StopServingError

    # Handlers first and everything after inside the try, so a signal at any
    # point still ends in stop() and exit code 0.
    in_main_thread = threading.current_thread() is threading.main_thread()
    watched = (signal.SIGINT, signal.SIGTERM)
    previous = {sig: signal.signal(sig, on_signal) for sig in watched} if in_main_thread else {}
    try:
        receiver.start()
        keys = "only the configured write key" if write_key else "any non-empty write key"
        recording = f"; recording to {record}" if record else ""
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
