"""Dead-letter files: where what a destination could not deliver is kept, one JSON line each.

A destination's undeliverable messages (Segment: a 4xx, retries exhausted,
still queued or in flight at shutdown) go to ``dead-letter/{destination}.jsonl``
and ``flows replay`` sends them again; an event whose ``push`` raised goes to
``dead-letter/{destination}.events.jsonl`` (the walkerOS event, to post again)::

    {"time": "...Z", "destination": "segment", "reason": "...", "message": {...}}
    {"time": "...Z", "destination": "webhook", "reason": "...", "event": {...}}

Writes come from several threads: they are serialised, flushed and synced one
batch at a time (a crash keeps what was written), the file is opened only on
the first failure (a healthy flow never needs a writable directory), and
nothing here raises into the caller; a write that fails is logged and counted.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import threading
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Final

import orjson

logger = logging.getLogger("flows.dead_letter")

#: Base directory for a relative ``deadLetterFile`` (default: the working directory).
DIR_ENV: Final = "FLOWS_DEAD_LETTER_DIR"
DEFAULT_TEMPLATE: Final = "dead-letter/{destination}.jsonl"
EVENTS_TEMPLATE: Final = "dead-letter/{destination}.events.jsonl"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def dead_letter_path(
    template: str, destination_id: str, env: Mapping[str, str] | None = None
) -> Path:
    """The file for ``destination_id``: ``{destination}`` filled in, relative to $FLOWS_DEAD_LETTER_DIR.

    The id is reduced to file-name characters, so an id such as ``../x`` cannot
    move the file elsewhere.
    """
    environment = os.environ if env is None else env
    safe_id = _UNSAFE.sub("_", destination_id).lstrip(".") or "_"
    path = Path(template.replace("{destination}", safe_id)).expanduser()
    base = environment.get(DIR_ENV)
    if base and not path.is_absolute():
        path = Path(base).expanduser() / path
    return path


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every non-empty secret replaced."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    return text


REDACTED: Final = "[redacted]"


def first_line(error: BaseException, secrets: Iterable[str] = ()) -> str:
    """An error as one short line for a log or a dead-letter reason, secrets replaced."""
    text = str(error) or type(error).__name__
    return redact(text.splitlines()[0][:300], secrets)


def utc_now() -> str:
    """ISO-8601 UTC with milliseconds and ``Z``, as Segment writes timestamps."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def dead_letter_line(
    destination: str, reason: str, message: Any, time: str | None = None, key: str = "message"
) -> bytes:
    """One dead-letter record as a JSON line (``flows replay`` writes the same format)."""
    record = {
        "time": time or utc_now(),
        "destination": destination,
        "reason": reason,
        key: message,
    }
    return orjson.dumps(
        record, option=orjson.OPT_APPEND_NEWLINE | orjson.OPT_NON_STR_KEYS, default=str
    )


class DeadLetterFile:
    """Appends undeliverable messages (or events: ``key="event"``) of one destination to a file."""

    def __init__(
        self, path: Path, destination: str, *, secrets: Iterable[str] = (), key: str = "message"
    ) -> None:
        self.path = path
        self.destination = destination
        self.key = key
        self.lines_written = 0
        self.write_failures = 0  # messages that could not be written (logged)
        self._secrets = tuple(s for s in secrets if s)
        self._file: IO[bytes] | None = None
        self._lock = threading.Lock()

    def write(self, messages: list[dict[str, Any]], reason: str) -> None:
        """Append one line per message; never raises (a failure is logged and counted)."""
        if not messages:
            return
        try:
            reason = redact(reason, self._secrets)
            time = utc_now()
            data = b"".join(
                dead_letter_line(self.destination, reason, message, time, self.key)
                for message in messages
            )
            with self._lock:
                file = self._open()
                file.write(data)
                file.flush()
                os.fsync(file.fileno())
                self.lines_written += len(messages)
        except Exception as error:
            self._failed(messages, error)

    def _open(self) -> IO[bytes]:
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("ab")
        return self._file

    def _failed(self, messages: list[dict[str, Any]], error: Exception) -> None:
        count = len(messages)
        with contextlib.suppress(Exception), self._lock:
            self.write_failures += count
            if self._file is not None:  # reopen next time: the file may be fixable
                file, self._file = self._file, None
                file.close()
        with contextlib.suppress(Exception):
            logger.error(
                "%s: %d undeliverable %s(s) LOST: cannot write dead-letter file %s: %s (ids: %s)",
                self.destination,
                count,
                self.key,
                self.path,
                redact(str(error) or type(error).__name__, self._secrets),
                _ids(messages),
            )

    def close(self) -> None:
        """Close the file (a later write opens it again)."""
        with self._lock:
            if self._file is not None:
                file, self._file = self._file, None
                file.close()


def _ids(messages: list[dict[str, Any]], limit: int = 20) -> str:
    """The messageIds for a log line, so lost messages can at least be traced."""
    ids = [
        str(m.get("messageId") or m.get("id")) if isinstance(m, dict) else "?"
        for m in messages[:limit]
    ]
    more = len(messages) - limit
    return ", ".join(ids) + (f" (+{more} more)" if more > 0 else "")
