"""How ``flows run`` logs: text or JSON lines on stderr, uvicorn under our names, and a
failing destination told once with its traceback, then as counts at a bounded rate.

JSON lines carry ``time`` (UTC, ISO 8601), ``level``, ``logger`` and
``message``, then whatever a call passed as ``extra`` (``destination``,
``event``, the access log's ``client``/``method``/``path``/``status``) and
``exception`` when there is a traceback. The standard library does it in a
few lines, so there is no logging dependency.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Final, TextIO

import orjson

TEXT_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s"
FORMATS: Final = ("text", "json")

RENAMED: Final = {
    "uvicorn.access": "flows.http.access",
    "uvicorn.error": "flows.server",
    "uvicorn": "flows.server",
    "uvicorn.asgi": "flows.server",
}
"""uvicorn's loggers, shown under the names of the parts of flows they speak for."""

_STANDARD: Final = frozenset(
    {*vars(logging.makeLogRecord({})), "message", "asctime", "taskName", "color_message"}
)
"""LogRecord's own attributes (and uvicorn's ANSI-coloured copy of its message); any
other was passed as ``extra`` and goes into the line."""
QUIETER: Final = ("httpx", "httpcore")
"""Libraries that log every request at info; shown from warning up unless the level is debug."""

PUSH_FAILED: Final = "destination %s failed on event %r"
"""The message ``collector.collector`` logs (with the traceback) when a destination's push raises."""
PUSH_FAILED_REPEATED: Final = (
    "destination %s failed on event %r: %d failure(s) in the last %.0f s (traceback logged once)"
)
REPEAT_INTERVAL: Final = 10.0
"""Seconds between two lines about the same destination failing the same way."""


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                line[key] = value
        if record.exc_info:
            record.exc_text = record.exc_text or self.formatException(record.exc_info)
        if record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return orjson.dumps(line, default=str).decode()


class UvicornNames(logging.Filter):
    """Shows uvicorn's records under our logger names; access records get their fields."""

    def filter(self, record: logging.LogRecord) -> bool:
        renamed = RENAMED.get(record.name)
        if renamed is None:
            return True
        args = record.args
        if record.name == "uvicorn.access" and isinstance(args, tuple) and len(args) == 5:
            client, method, path, http_version, status = args  # '%s - "%s %s HTTP/%s" %d'
            record.client, record.method, record.path = client, method, path
            record.http_version, record.status = http_version, status
        record.name = renamed
        return True


class RepeatedPushFailures(logging.Filter):
    """The first push failure of a destination (per error type) passes with its traceback;
    later ones are counted and told as one line per ``interval`` seconds, with no traceback.

    A destination that raises on every event would otherwise write a traceback
    per event. Counts are told when the next failure comes after the interval.
    """

    def __init__(
        self, interval: float = REPEAT_INTERVAL, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__()
        self.interval = interval
        self.clock = clock
        self._seen: dict[tuple[str, str], list[float]] = {}  # key -> [last told, untold]
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg != PUSH_FAILED or not isinstance(record.args, tuple):
            return True
        destination, event = record.args[:2]
        record.destination, record.event = destination, event
        error = record.exc_info[1] if record.exc_info else None
        key = (str(destination), type(error).__name__)
        now = self.clock()
        with self._lock:
            seen = self._seen.get(key)
            if seen is None:
                self._seen[key] = [now, 0]
                return True
            seen[1] += 1
            if now - seen[0] < self.interval:
                return False
            count, seen[0], seen[1] = int(seen[1]), now, 0
        record.msg = PUSH_FAILED_REPEATED
        record.args = (destination, event, count, self.interval)
        record.exc_info, record.exc_text = None, None
        record.failures = count
        return True


def configure_logging(level: str, log_format: str = "text", stream: TextIO | None = None) -> None:
    """Log ``level`` and above to ``stream`` (stderr) as ``log_format`` (text or json lines)."""
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    formatter = JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)
    handler.setFormatter(formatter)
    handler.addFilter(UvicornNames())
    logging.basicConfig(level=getattr(logging, level.upper()), handlers=[handler], force=True)
    logging.captureWarnings(True)  # Python's warnings as log lines too, not bare stderr text
    for name in QUIETER:
        logging.getLogger(name).setLevel(logging.DEBUG if level == "debug" else logging.WARNING)
    collector_logger = logging.getLogger("flows.collector")
    for old in [f for f in collector_logger.filters if isinstance(f, RepeatedPushFailures)]:
        collector_logger.removeFilter(old)
    collector_logger.addFilter(RepeatedPushFailures())
