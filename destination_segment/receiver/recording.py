"""What the receiver accepted: messages, counters, the JSON-lines file, and waiting on them."""

from __future__ import annotations

import threading
from collections import Counter, deque
from collections.abc import Iterable
from typing import IO, Any

import orjson


def _fresh(messages: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """A deep copy via orjson: callers may mutate it without touching the record."""
    return list(orjson.loads(orjson.dumps(list(messages))))


class Recording:
    """The accepted messages and the counters, thread-safe; see ``SegmentReceiver``.

    ``max_messages`` keeps only the newest messages (counters still count all).
    """

    def __init__(self, max_messages: int | None = None) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._messages: deque[dict[str, Any]] = deque(maxlen=max_messages)
        self._message_ids: set[str] = set()
        self._type_counts: Counter[str | None] = Counter()
        self._accepted = 0
        self._requests = 0
        self._by_status: Counter[int] = Counter()
        self._file_lock = threading.Lock()
        self._record_file: IO[bytes] | None = None

    # -- the JSON-lines file -------------------------------------------------------

    def record_to(self, record_file: IO[bytes] | None) -> None:
        """Also append accepted messages to ``record_file`` (None: keep them in memory only)."""
        self._record_file = record_file

    def close_file(self) -> None:
        """Close the record file, if any; later messages stay in memory only."""
        with self._file_lock:
            if self._record_file is not None:
                self._record_file.close()
                self._record_file = None

    # -- counting and accepting ------------------------------------------------------

    def count_request(self) -> None:
        with self._cond:
            self._requests += 1
            self._cond.notify_all()

    def count_status(self, status: int) -> None:
        with self._cond:
            self._by_status[status] += 1

    def accept(self, messages: list[dict[str, Any]], received_at: str, sent_at: Any) -> None:
        """Stamp and keep accepted messages, and count the 200 in the same step.

        The file is written first and the status counted with the messages, so
        whatever wait_for() returns, the file and ``stats`` already reflect it.
        """
        for message in messages:
            message["receivedAt"] = received_at
            if sent_at is not None:
                message.setdefault("sentAt", sent_at)
        if messages and self._record_file is not None:
            lines = b"".join(orjson.dumps(message) + b"\n" for message in messages)
            with self._file_lock:
                if self._record_file is not None:
                    self._record_file.write(lines)
                    self._record_file.flush()
        with self._cond:
            self._messages.extend(messages)
            for message in messages:
                kind = message.get("type")
                self._type_counts[kind if isinstance(kind, str) else None] += 1
                message_id = message.get("messageId")
                if message_id is not None:
                    self._message_ids.add(str(message_id))
            self._accepted += len(messages)
            self._by_status[200] += 1
            self._cond.notify_all()

    # -- read-back -------------------------------------------------------------------

    def messages(self, type: str | None = None) -> list[dict[str, Any]]:
        with self._cond:
            selected = self._select(type)
        return _fresh(selected)

    def message_ids(self) -> set[str]:
        with self._cond:
            return set(self._message_ids)

    def clear(self) -> None:
        with self._cond:
            self._messages.clear()
            self._message_ids.clear()
            self._type_counts.clear()
            self._accepted = 0
            self._requests = 0
            self._by_status.clear()

    def wait_for(
        self, count: int, timeout: float, type: str | None, owner: object
    ) -> list[dict[str, Any]]:
        """Wait for ``count`` messages (of ``type``); a timeout names ``owner`` and what came."""
        with self._cond:
            arrived = self._cond.wait_for(lambda: self._count_of(type) >= count, timeout)
            if not arrived:
                what = f"{type} message(s)" if type else "message(s)"
                raise TimeoutError(
                    f"waited {timeout:g}s for {count} {what} at {owner!r} but "
                    f"{self._count_of(type)} arrived ({self._accepted} of any type; "
                    f"{self._requests} request(s), by status {dict(self._by_status)})"
                )
            selected = self._select(type)
        return _fresh(selected)

    def wait_for_requests(self, count: int, timeout: float, owner: object) -> int:
        """Wait for ``count`` tracking-API requests; a timeout names ``owner``."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._requests >= count, timeout):
                raise TimeoutError(
                    f"waited {timeout:g}s for {count} request(s) at {owner!r} but "
                    f"{self._requests} arrived"
                )
            return self._requests

    def stats(self) -> dict[str, Any]:
        with self._cond:
            return {
                "requests": self._requests,
                "by_status": dict(self._by_status),
                "messages": self._accepted,
                "distinct_message_ids": len(self._message_ids),
            }

    def _count_of(self, type: str | None) -> int:
        return self._accepted if type is None else self._type_counts[type]

    def _select(self, type: str | None) -> list[dict[str, Any]]:
        if type is None:
            return list(self._messages)
        return [message for message in self._messages if message.get("type") == type]
