"""``flows replay``: send the messages of a dead-letter file to Segment again.

The messages go out exactly as they were written (same messageId, so Segment
drops any that did arrive before), posted in batches with the SDK's own
request function, so the wire format is the one the destination uses. Each
batch is tried once: what fails is written to ``FILE.failed`` in the same
format with the new reason, ready to be replayed again later.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from segment.analytics.consumer import BATCH_SIZE_LIMIT, MAX_MSG_SIZE
from segment.analytics.request import post

from collector.dead_letter import dead_letter_line
from destination_segment.redaction import RedactSecret, first_line
from destination_segment.settings import SegmentSettings


@dataclass(slots=True)
class ReplayReport:
    """What a replay did: messages delivered, lines that failed, where those went."""

    path: Path
    failed_path: Path
    replayed: int = 0
    failed: int = 0


@dataclass(slots=True)
class _Pending:
    """One destination's batch being filled."""

    settings: SegmentSettings
    messages: list[dict[str, Any]] = field(default_factory=list)
    size: int = 0


def failed_path_for(path: Path) -> Path:
    return path.with_name(path.name + ".failed")


def replay_file(
    path: str | Path,
    destination_settings_by_id: Mapping[str, SegmentSettings],
    *,
    destination: str | None = None,
    on_problem: Callable[[str], None] = lambda line: None,
) -> ReplayReport:
    """Re-send every message of the dead-letter file ``path``.

    Each line goes to ``destination`` if given, else to the destination it
    records; ``destination_settings_by_id`` gives the host, write key, gzip
    and timeout to use. ``on_problem`` gets one ``FILE:LINE: reason`` per bad
    line and one line per failed batch. Raises OSError if ``path`` cannot be read.
    """
    source = Path(path)
    with source.open("rb") as lines, _FailedFile(failed_path_for(source)) as failed:
        report = ReplayReport(source, failed.path)
        pending: dict[str, _Pending] = {}

        def send(target: str) -> None:
            batch = pending.pop(target)
            delivered = _post(batch, target, source, failed, on_problem)
            report.replayed += delivered
            report.failed += len(batch.messages) - delivered

        for number, raw in enumerate(lines, 1):
            if not raw.strip():
                continue
            parsed = _parse(raw, destination)
            if isinstance(parsed, str):
                on_problem(f"{source}:{number}: {parsed}")
                failed.copy(raw)
                report.failed += 1
                continue
            target, message = parsed
            settings = destination_settings_by_id.get(target)
            size = len(json.dumps(message).encode())
            problem = _unsendable(target, settings, size)
            if problem is not None or settings is None:
                on_problem(f"{source}:{number}: {problem}")
                failed.write(target, str(problem), message)
                report.failed += 1
                continue
            batch = pending.get(target)
            if batch is not None and (
                len(batch.messages) >= settings.flush_at or batch.size + size > BATCH_SIZE_LIMIT
            ):
                send(target)
                batch = None
            if batch is None:
                batch = pending[target] = _Pending(settings)
            batch.messages.append(message)
            batch.size += size
        for target in list(pending):
            send(target)
    return report


def _parse(raw: bytes, destination: str | None) -> tuple[str, dict[str, Any]] | str:
    """(destination, message) of one dead-letter line, or why it cannot be replayed."""
    try:
        record = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        return f"not valid JSON: {error}"
    if not isinstance(record, dict):
        return "not a dead-letter record (a JSON object with a message)"
    message = record.get("message")
    if not isinstance(message, dict):
        return 'no "message" object'
    target = destination or record.get("destination")
    if not isinstance(target, str) or not target:
        return 'no "destination" (give one with --destination ID)'
    return target, message


def _unsendable(target: str, settings: SegmentSettings | None, size: int) -> str | None:
    """Why a well-formed line still cannot be sent, or None."""
    if settings is None:
        return (
            f"destination {target!r} is not a segment destination of the flow "
            "(choose one with --destination ID)"
        )
    if size > MAX_MSG_SIZE:
        return f"the message is {size} bytes; Segment's limit is {MAX_MSG_SIZE} (32 KB)"
    return None


def _post(
    batch: _Pending,
    target: str,
    source: Path,
    failed: _FailedFile,
    on_problem: Callable[[str], None],
) -> int:
    """Post one batch once; the number delivered (all or none)."""
    settings = batch.settings
    write_key = settings.write_key.get_secret_value()
    try:
        with _redacting(write_key):
            post(
                write_key,
                host=settings.sdk_host,
                gzip=settings.gzip,
                timeout=settings.http_request_timeout / 1000,
                batch=batch.messages,
            )
    except Exception as error:
        reason = first_line(error, [write_key])
        on_problem(f"{source}: {len(batch.messages)} message(s) to {target!r} failed: {reason}")
        for message in batch.messages:
            failed.write(target, reason, message)
        return 0
    return len(batch.messages)


@contextlib.contextmanager
def _redacting(secret: str) -> Iterator[None]:
    """Keep ``secret`` out of what the SDK logs while posting (it logs request bodies)."""
    sdk_logger = logging.getLogger("segment")
    redaction = RedactSecret(secret)
    sdk_logger.addFilter(redaction)
    try:
        yield
    finally:
        sdk_logger.removeFilter(redaction)


class _FailedFile:
    """``FILE.failed``: created on the first failure, replaced on each replay.

    When nothing failed a stale one from an earlier replay is removed: every
    line in it came from FILE and has now been replayed.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[bytes] | None = None

    def __enter__(self) -> _FailedFile:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._file is not None:
            self._file.close()
        elif exc_info[0] is None:
            self.path.unlink(missing_ok=True)

    def write(self, destination: str, reason: str, message: dict[str, Any]) -> None:
        self._out().write(dead_letter_line(destination, reason, message))

    def copy(self, raw: bytes) -> None:
        """A line that cannot be parsed goes over verbatim, to be fixed by hand."""
        self._out().write(raw if raw.endswith(b"\n") else raw + b"\n")

    def _out(self) -> IO[bytes]:
        if self._file is None:
            self._file = self.path.open("wb")
        return self._file
