"""Connection limits of the http source: header size, read deadlines, concurrent connections.

uvicorn alone buffers a request's headers without bound, waits forever for headers
or a body that never finish, and takes every connection offered. The protocol
classes (``flows.http.limited_httptools``, ``flows.http.limited_h11``) count header bytes
before the parser sees them and refuse connections over the cap; one timer per
server (``ConnectionGuard``) sweeps the open connections for requests past their
deadline, so a request costs a clock read and a few attribute stores, not a timer.
The clock is ``time.monotonic``, read when a request begins: the loop's own time is
the start of its current iteration, which can be long past, and a deadline counted
from it could end early.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http import HTTPStatus
from time import monotonic
from typing import TYPE_CHECKING, Any, ClassVar

import orjson

from flows.http.settings import HttpSettings

if TYPE_CHECKING:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as _Base

    from flows.http.cors import Cors
else:
    _Base = object

logger = logging.getLogger("flows.server")

IDLE, HEAD, BODY, LINGER = 0, 1, 2, 3
"""A connection's phase: between requests, reading headers, reading a body, closing."""
LINGER_SECONDS = 1.0
"""After a 431, how long the rest of the request is read and dropped, so the client
gets to read the answer instead of a reset (closing with unread data sends RST)."""
OPEN_FILES_HEADROOM = 64
"""Open files besides the connections: the listening socket, logs, the SDK's sockets."""


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    """The limits of one server, in the units the event loop uses (seconds)."""

    max_header_size: int
    headers_timeout: float
    request_timeout: float
    keep_alive_timeout: float
    max_connections: int
    retry_after: int

    @classmethod
    def from_settings(cls, settings: HttpSettings) -> ConnectionLimits:
        return cls(
            max_header_size=settings.max_header_size,
            headers_timeout=settings.headers_timeout / 1000,
            request_timeout=settings.request_timeout / 1000,
            keep_alive_timeout=settings.keep_alive_timeout / 1000,
            max_connections=settings.max_connections,
            retry_after=settings.retry_after,
        )

    @property
    def sweep_interval(self) -> float:
        """A tenth of the shortest deadline: late by at most that, never early."""
        return min(max(self.headers_timeout / 10, 0.01), 1.0)


def answer(status: int, reason: str, *extra: str) -> bytes:
    """A complete HTTP/1.1 answer that closes the connection, with the usual JSON error body."""
    body = orjson.dumps({"ok": False, "error": reason})
    head = [
        f"HTTP/1.1 {status} {HTTPStatus(status).phrase}",
        "content-type: application/json",
        f"content-length: {len(body)}",
        "x-content-type-options: nosniff",
        "cache-control: no-store",
        "connection: close",
        *extra,
    ]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


def header_lines(headers: Iterable[tuple[bytes, bytes]]) -> list[str]:
    """ASGI header pairs as ``name: value`` lines for ``answer``."""
    return [f"{name.decode('latin-1')}: {value.decode('latin-1')}" for name, value in headers]


class ConnectionGuard:
    """What the connections of one server share: the limits, the answers, the sweep timer."""

    def __init__(
        self,
        limits: ConnectionLimits,
        answered: Callable[[int], None] | None = None,
        cors: Cors | None = None,
    ) -> None:
        self.limits = limits
        self.answered = answered or _uncounted
        """Counts each answer written here by status (the source's flows_http_requests_total)."""
        self.cors = cors
        """The source's CORS, so a page can read why its request was cut off."""
        # With "*" every answer can say so; with a list of origins only an answer to a
        # request whose headers were read (the 408 of a late body) knows the origin.
        anyone = header_lines(cors.headers([])) if cors is not None and cors.any else []
        ms = round(limits.headers_timeout * 1000), round(limits.request_timeout * 1000)
        self.too_large = answer(
            431,
            f"request line and headers over maxHeaderSize ({limits.max_header_size} bytes)",
            *anyone,
        )
        self.headers_late = answer(
            408, f"headers not complete within headersTimeout ({ms[0]} ms)", *anyone
        )
        self.request_late_reason = f"request not complete within requestTimeout ({ms[1]} ms)"
        self.request_late = answer(408, self.request_late_reason, *anyone)
        self.busy = answer(
            503,
            f"too many connections (maxConnections {limits.max_connections}); "
            f"retry after {limits.retry_after}s",
            f"retry-after: {limits.retry_after}",
            *anyone,
        )
        self.deadlines = (math.inf, limits.headers_timeout, limits.request_timeout, LINGER_SECONDS)
        """Seconds a connection may stay in each phase, indexed by phase."""
        self.open: set[LimitedConnection] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None

    def late_body(self, headers: Iterable[tuple[bytes, bytes]]) -> bytes:
        """The 408 for a request whose body came too late, with CORS for its ``Origin``."""
        if self.cors is None or self.cors.any:
            return self.request_late
        return answer(
            408, self.request_late_reason, *header_lines(self.cors.headers(list(headers)))
        )

    def full(self) -> bool:
        return len(self.open) >= self.limits.max_connections

    def watch(self, connection: LimitedConnection, loop: asyncio.AbstractEventLoop) -> None:
        """Count ``connection``; the sweep runs while any connection is open."""
        self.open.add(connection)
        if self._timer is None:
            self._loop = loop
            self._timer = loop.call_later(self.limits.sweep_interval, self._sweep)

    def _sweep(self) -> None:
        self._timer = None
        if not self.open or self._loop is None:
            return
        now = monotonic()
        for connection in [c for c in self.open if c.is_late(now)]:
            connection.time_out()
        self._timer = self._loop.call_later(self.limits.sweep_interval, self._sweep)


class LimitedConnection(_Base):
    """The limits, over either of uvicorn's HTTP/1.1 protocols (a mixin: see ``protocol_class``).

    The phase moves IDLE -> HEAD on a request's first byte (a new connection
    starts in HEAD), HEAD -> BODY when its headers are complete and back to IDLE
    once the whole request was read; ``_started`` is when HEAD began. Header
    bytes are counted per read: a read that would pass the limit is fed only up
    to it, so the parser never holds more than ``maxHeaderSize`` of one request.
    The one gap: when a request pipelined behind another begins inside a read,
    that read's share of its headers is not counted (one read, at most 256 KB).
    """

    guard: ClassVar[ConnectionGuard]
    max_head: ClassVar[int]
    _phase = HEAD
    _started = 0.0
    _head_bytes = 0

    def connection_made(self, transport: Any) -> None:
        guard = self.guard
        if guard.full():
            self.transport = transport
            self._phase = IDLE
            transport.write(guard.busy)
            guard.answered(503)
            transport.close()
            return
        super().connection_made(transport)
        self._started = monotonic()
        guard.watch(self, self.loop)

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self._phase = IDLE
        self.guard.open.discard(self)

    def data_received(self, data: bytes) -> None:
        phase = self._phase
        if phase != BODY:
            if phase == IDLE:
                self._phase = HEAD
                self._started = monotonic()
                self._head_bytes = 0
            elif phase == LINGER:
                return
            seen = self._head_bytes + len(data)
            if seen > self.max_head:
                self._feed_to_limit(data)
                return
            self._head_bytes = seen
        self._feed(data)

    def _feed(self, data: bytes) -> None:
        """Hand ``data`` to uvicorn's parser; a subclass sets it to its base's data_received,
        to spare a call per read, or notes the phase after it."""
        super().data_received(data)

    def _feed_to_limit(self, data: bytes) -> None:
        room = self.max_head - self._head_bytes
        self._head_bytes = self.max_head
        if room:
            self._feed(data[:room])
        if self.transport.is_closing():
            return
        if self._phase == HEAD:  # still the same request's headers, and no room left
            self._too_large()
        elif room < len(data):
            self.data_received(data[room:])

    def _too_large(self) -> None:
        """Answer 431 unless a response is under way, then read and drop until closed."""
        self._unset_keepalive_if_required()
        transport = self.transport
        cycle = self.cycle
        self._phase = IDLE
        if cycle is None or cycle.response_complete:
            transport.write(self.guard.too_large)
            self.guard.answered(431)
            if transport.can_write_eof():
                transport.write_eof()
                self._phase = LINGER
                self._started = monotonic()
                return
        transport.close()

    def is_late(self, now: float) -> bool:
        return now - self._started >= self.guard.deadlines[self._phase]

    def time_out(self) -> None:
        """Close a connection past its deadline, with a 408 if a request began unanswered."""
        phase = self._phase
        self._phase = IDLE
        transport = self.transport
        if transport.is_closing():
            return
        cycle = self.cycle
        if phase == HEAD:
            if self._head_bytes and (cycle is None or cycle.response_complete):
                transport.write(self.guard.headers_late)
                self.guard.answered(408)
        elif phase == BODY and cycle is not None and not cycle.response_started:
            transport.write(self.guard.late_body(cycle.scope["headers"]))
            self.guard.answered(408)
        transport.close()  # the app's next read gets http.disconnect: nothing is pushed


def _uncounted(status: int) -> None:
    """No source to count answers for (a bare app)."""


def protocol_class(
    limits: ConnectionLimits,
    *,
    fast: bool,
    answered: Callable[[int], None] | None = None,
    cors: Cors | None = None,
) -> type[LimitedConnection]:
    """A protocol class for one server: httptools when ``fast``, else h11 (pure Python)."""
    base: type[LimitedConnection]
    if fast:
        from flows.http.limited_httptools import LimitedHttpToolsProtocol

        base = LimitedHttpToolsProtocol
    else:
        from flows.http.limited_h11 import LimitedH11Protocol

        base = LimitedH11Protocol
    guard = ConnectionGuard(limits, answered, cors)
    return type(base.__name__, (base,), {"guard": guard, "max_head": limits.max_header_size})


def ensure_open_files(max_connections: int) -> None:
    """Raise the soft open-file limit to fit ``maxConnections``, or warn that it cannot.

    Past the limit, accept() fails and new clients hang instead of being refused.
    """
    try:
        import resource
    except ImportError:  # not on Windows
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = max_connections + OPEN_FILES_HEADROOM
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return
    target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    if target < needed:
        logger.warning(
            "maxConnections %d needs %d open files but the limit is %d (ulimit -n): "
            "raise the limit or lower maxConnections",
            max_connections,
            needed,
            target,
        )
