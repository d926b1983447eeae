"""The ``http`` source: walkerOS events over HTTP into the collector, as raw ASGI.

Raw ASGI rather than a framework: the hot path is one parse, one validation
per event and one push, with responses built from bytes prepared at load.
Every answer is JSON (or a GIF for the pixel), 4xx names what to fix, and
nothing a client sends can turn into a 500 or a stack trace.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from collector.chain import Chain
from collector.collector import Collector
from collector.destination import EventRejected
from collector.event import EventValidationError, FieldError
from collector.mapping import MappingContext, Resolver, compile_value
from collector.paths import UNDEFINED, Setter, compile_setter
from flows.buffer import BufferFull, BufferReader, EventBuffer
from flows.buffer.reader import start_readers
from flows.buffer.stream import BufferError, encode
from flows.http.cors import cors_from
from flows.http.disconnect import ClientGoneError
from flows.http.input import (
    BadRequestError,
    Limits,
    body_within,
    check_limits,
    parse_body,
    parse_pixel_query,
)
from flows.http.origin_check import origin_check_from
from flows.http.settings import HttpSettings
from flows.http.worker_threads import WorkerThreads
from flows.server.metrics import SharedSnapshots, metrics_renderer, snapshot

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]
Answer = tuple[int, bytes, Headers]
"""A status, a body and the headers to send with it."""

logger = logging.getLogger("flows.source.http")

GIF = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00"
    b"\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)
JSON_TYPES = (b"application/json", b"text/plain")
_BASE_HEADERS = [(b"x-content-type-options", b"nosniff"), (b"cache-control", b"no-store")]
_JSON = (b"content-type", b"application/json")
READER_STOP_SLACK = 1.0
"""Seconds a buffer reader gets past its blocking read to stop."""


@dataclass(slots=True)
class SourceStats:
    """Counters read at scrape time; plain ints keep the request path cheap."""

    requests: dict[int, int] = field(default_factory=dict)
    received: int = 0
    accepted: int = 0
    rejected: int = 0
    overloaded: int = 0

    def answered(self, status: int) -> None:
        self.requests[status] = self.requests.get(status, 0) + 1


class HttpSource:
    """Configured ``http`` source; ``app(collector)`` gives the ASGI application."""

    type = "http"
    Settings = HttpSettings

    def __init__(self, settings: HttpSettings, *, source_id: str = "http") -> None:
        self.settings = settings
        self.id = source_id
        self.stats = SourceStats()
        self.shared: SharedSnapshots | None = None  # set in each of several workers
        self.chain: Chain | None = None
        self.primary = False
        """walkerOS ``primary``: ``flows push`` sends through this source's chain."""
        """The source's ``next`` transformer chain (set when the flow is built)."""
        self.ingest_mapping: Resolver | None = None
        """walkerOS ``config.ingest``: the request mapped into what transformers see."""
        self.buffer: EventBuffer | None = None
        """The flow's durable buffer (``config.settings.buffer``): events go there, not on."""

    def app(self, collector: Collector) -> CollectorApp:
        return CollectorApp(collector, self)


class CollectorApp:
    """The ASGI application of one http source in front of one collector."""

    def __init__(self, collector: Collector, source: HttpSource) -> None:
        settings = source.settings
        self.collector = collector
        self.source = source
        self.stats = source.stats
        self.path = settings.path
        self.max_body = settings.max_body_size
        self.limits = Limits(
            settings.max_batch_size,
            settings.max_depth,
            settings.max_string_length,
            settings.max_keys,
        )
        self.high_water = settings.queue_high_water
        self.retry_after = str(settings.retry_after).encode()
        self.cors = cors_from(settings.cors, settings.auth.header if settings.auth else None)
        self.origin_check = origin_check_from(settings)
        self.auth_header = settings.auth.header.lower().encode() if settings.auth else None
        self.auth_token = settings.auth.token.get_secret_value().encode() if settings.auth else b""
        self.ingest = _compile_ingest(settings.ingest)
        self.chain = source.chain
        self.describes_requests = source.chain is not None or collector.has_chains
        """Whether transformers run: only then is each request described for them."""
        self.metrics_enabled = settings.metrics
        self.status_enabled = (
            settings.status if settings.health_check is None else settings.health_check
        )
        self.event_paths = frozenset(
            variant
            for entry in [settings.path, *settings.paths]
            for base in [entry if isinstance(entry, str) else entry.path]
            for variant in (base, base.rstrip("/") + "/")
        )
        """Paths that take events: ``path``, ``paths``, each with and without a trailing /."""
        self.shutting_down = False
        self.workers = WorkerThreads() if collector.blocking else None
        """Where pushes run when a destination may block; None: on the event loop."""
        self._metrics: Callable[[], bytes] | None = None
        self.buffer = source.buffer
        self.readers: list[BufferReader] = []

    # -- ASGI entry --------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        publisher: asyncio.Task[None] | None = None
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    self.collector.start()
                except Exception as error:
                    logger.error(
                        "destinations failed to start: %s: %s",
                        type(error).__name__,
                        error,
                        exc_info=logger.isEnabledFor(logging.DEBUG),
                    )
                    await send({"type": "lifespan.startup.failed", "message": str(error)})
                    return
                publisher = self._start_publishing()
                if self.buffer is not None:
                    self.readers = start_readers(self.buffer, self.collector, self.buffer.chains)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.stop_accepting()
                if self.readers:
                    await asyncio.to_thread(self._stop_readers)
                if publisher is not None:
                    publisher.cancel()
                await send({"type": "lifespan.shutdown.complete"})
                return

    def _stop_readers(self) -> None:
        """Stop the buffer's readers before the destinations flush (bounded by a read)."""
        assert self.buffer is not None
        deadline = time.monotonic() + self.buffer.settings.block / 1000 + READER_STOP_SLACK
        for reader in self.readers:
            reader.stop(0.0)
        for reader in self.readers:
            reader.stop(max(0.0, deadline - time.monotonic()))

    def stop_accepting(self) -> None:
        """The stop began: answer new requests 503 and /ready 503 (the server calls this)."""
        self.shutting_down = True

    def _start_publishing(self) -> asyncio.Task[None] | None:
        """With several workers, share this one's counters every second (see metrics)."""
        shared = self.source.shared
        if shared is None:
            return None

        async def publish_every_second() -> None:
            while True:
                shared.publish(snapshot(self.collector, self.source))
                await asyncio.sleep(1.0)

        return asyncio.get_running_loop().create_task(publish_every_second())

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"]
        method = scope["method"]
        headers = scope["headers"]
        if path in self.event_paths:
            cors = self.cors.headers(headers) if self.cors else []
            refusal = (
                self.origin_check.refusal(headers)
                if self.origin_check is not None and method in ("POST", "GET")
                else None
            )
            if refusal is not None:  # before the body is read; the CORS headers still go out
                answer = _error(403, refusal)
                status, body, extra = _as_gif(answer) if method == "GET" else answer
            elif method == "POST" or method == "GET":
                status, body, extra = await self._events(method, scope, headers, receive)
            elif method == "OPTIONS":
                status, body, extra = 204, b"", self.cors.preflight(headers) if self.cors else []
            else:
                status, body, extra = _error(405, f"method {method} not allowed on {self.path}")
                extra = [*extra, (b"allow", b"POST, GET, OPTIONS")]
            await self._answer(send, status, body, [*cors, *extra])
        elif not self._served(path):
            await self._answer(send, *_error(404, f"no such path {path[:80]}; POST to {self.path}"))
        elif method not in ("GET", "HEAD"):
            status, body, extra = _error(405, f"method {method} not allowed on {path}")
            await self._answer(send, status, body, [*extra, (b"allow", b"GET, HEAD")])
        elif path == "/health":
            await self._answer(send, 200, b'{"status":"ok"}', [_JSON])
        elif path == "/ready":
            ready = self.collector.ready and not self.shutting_down
            body = b'{"status":"ready"}' if ready else b'{"status":"starting or stopping"}'
            await self._answer(send, 200 if ready else 503, body, [_JSON])
        else:
            body = self.metrics_body()
            await self._answer(
                send, 200, body, [(b"content-type", b"text/plain; version=0.0.4; charset=utf-8")]
            )

    async def _events(
        self, method: str, scope: Scope, headers: Headers, receive: Receive
    ) -> Answer:
        """A POST or pixel; one still unfinished at the stop's drain deadline gets a 503."""
        try:
            if method == "POST":
                return await self._post(scope, headers, receive)
            return await self._pixel(scope, headers)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if not self.shutting_down or task is None:
                raise
            task.uncancel()  # cut off by the server's stop, not by the client: answer it
            self.stats.overloaded += 1
            answer = _overloaded(
                "shutting down: the request did not finish before the stop deadline",
                self.retry_after,
            )
            return _as_gif(answer) if method == "GET" else answer

    def _served(self, path: str) -> bool:
        """Whether ``path`` is one of the GET endpoints this source has switched on."""
        if path == "/metrics":
            return self.metrics_enabled
        return self.status_enabled and path in ("/health", "/ready")

    async def _answer(self, send: Send, status: int, body: bytes, headers: Headers) -> None:
        self.stats.answered(status)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    *_BASE_HEADERS,
                    *headers,
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    # -- events ------------------------------------------------------------------------------

    async def _post(self, scope: Scope, headers: Headers, receive: Receive) -> Answer:
        refused = self._refuse(headers)
        if refused is not None:
            return refused
        content_type = b""
        length = -1
        for name, value in headers:
            if name == b"content-type":
                content_type = value.split(b";", 1)[0].strip().lower()
            elif name == b"content-length":
                length = int(value) if value.isdigit() else -1
        if content_type and content_type not in JSON_TYPES:
            return _error(
                415,
                f"Content-Type {content_type.decode('latin-1')[:60]} not supported: "
                "send application/json or text/plain",
            )
        if length > self.max_body:
            return _error(413, f"body of {length} bytes is over maxBodySize {self.max_body}")
        body = await self._read_body(receive)
        if body is None:
            return _error(413, f"body is over maxBodySize {self.max_body}")
        try:
            events = parse_body(body, self.limits)
        except BadRequestError as error:
            return _error(error.status, error.reason)
        return await self._admit(events, scope, headers, checked=body_within(body, self.limits))

    async def _pixel(self, scope: Scope, headers: Headers) -> Answer:
        refused = self._refuse(headers)
        if refused is not None:
            return _as_gif(refused)
        try:
            event = parse_pixel_query(scope["query_string"].decode("latin-1"), self.limits)
        except BadRequestError as error:
            return error.status, GIF, [_GIF_TYPE]
        return _as_gif(await self._admit([event], scope, headers))

    def _refuse(self, headers: Headers) -> Answer | None:
        """Why not to take events now (no token, overload), before reading the body."""
        if self.auth_header is not None:
            given = next((v for n, v in headers if n == self.auth_header), b"")
            if not hmac.compare_digest(given, self.auth_token):
                return _error(401, f"missing or wrong {self.auth_header.decode()} header")
        if self.shutting_down:
            return _overloaded("shutting down", self.retry_after)
        if self.buffer is not None:  # the destinations read the buffer at their own pace
            return None
        busy = self._busy_destination()
        if busy is not None:
            self.stats.overloaded += 1
            return _overloaded(f"destination {busy} is busy", self.retry_after)
        return None

    def _busy_destination(self) -> str | None:
        for active in self.collector.destinations:
            if active.destination.backlog() >= self.high_water:
                return active.id
        return None

    async def _read_body(self, receive: Receive) -> bytes | None:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                raise ClientGoneError
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    async def _admit(
        self,
        events: list[Any],
        scope: Scope,
        headers: Headers,
        checked: bool = False,
    ) -> Answer:
        """Hold queue room for the whole request, then push it; else 503 and nothing taken.

        Decided once the body is in, with the room held (``Collector.reserve``)
        until every event was pushed: what is answered 200 always fits, however
        many requests arrive together. Nothing is awaited between the check and
        the pushes but the worker thread of a blocking destination.
        """
        if self.buffer is not None:
            return await self._buffered(self.buffer, events, scope, headers, checked)
        count = len(events)
        busy = self.collector.reserve(count)
        if busy is None and self.workers is not None and self.workers.busy:
            self.collector.release(count)
            busy = "with a blocking push"
        if busy is not None:
            self.stats.overloaded += 1
            return _overloaded(
                f"destination {busy} has no room for {count} more event(s)", self.retry_after
            )
        if self.workers is None:
            return self._accept_held(events, scope, headers, checked)
        return await self.workers.run(self._accept_held, events, scope, headers, checked)

    def _accept_held(
        self,
        events: list[Any],
        scope: Scope,
        headers: Headers,
        checked: bool,
    ) -> Answer:
        """``_accept``, then give back the room ``_admit`` held for it."""
        try:
            return self._accept(events, scope, headers, checked)
        finally:
            self.collector.release(len(events))

    def _accept(
        self,
        events: list[Any],
        scope: Scope,
        headers: Headers,
        checked: bool = False,
    ) -> Answer:
        """Push each event; ``checked``: the body was small enough to be within every limit."""
        stats = self.stats
        stats.received += len(events)
        push = self.collector.push
        limits = self.limits
        ingest = self._ingest_values(scope, headers) if self.ingest else None
        request = self._describe(scope, headers) if self.describes_requests else None
        chain = self.chain
        rejected: list[dict[str, Any]] = []
        accepted = 0
        with self.collector.request():  # a destination may finish the request's events together
            for index, given in enumerate(events):
                raw = _within_limits(index, given, limits, checked, ingest, rejected)
                if raw is _REJECTED:
                    continue
                try:
                    if request is None:
                        refusals = push(raw).refusals
                    else:
                        refusals = push(raw, chain, dict(request)).refusals
                except EventValidationError as error:
                    rejected.append(_rejection(index, error.errors))
                    continue
                if refusals is not None:  # a destination can never send it: say so now
                    rejected.append(_rejection(index, _refused(refusals)))
                    continue
                accepted += 1
        return self._result(accepted, rejected, len(events))

    async def _buffered(
        self,
        buffer: EventBuffer,
        events: list[Any],
        scope: Scope,
        headers: Headers,
        checked: bool,
    ) -> Answer:
        """Validate each event, then store the valid ones in one round trip before the 200.

        Redis unreachable or the buffer at ``maxLength``: 503 and nothing stored.
        """
        stats = self.stats
        stats.received += len(events)
        limits = self.limits
        ingest = self._ingest_values(scope, headers) if self.ingest else None
        request = self._describe(scope, headers) if self.describes_requests else None
        prepare = self.collector.prepare
        source = self.source.id
        rejected: list[dict[str, Any]] = []
        entries: list[bytes] = []
        for index, given in enumerate(events):
            raw = _within_limits(index, given, limits, checked, ingest, rejected)
            if raw is _REJECTED:
                continue
            try:
                event = prepare(raw)
            except EventValidationError as error:
                rejected.append(_rejection(index, error.errors))
                continue
            entries.append(encode(dict(event), source, request))
        if entries:
            try:
                await asyncio.to_thread(buffer.append, entries)
            except BufferFull as full:
                stats.overloaded += 1
                return _overloaded(str(full), self.retry_after)
            except BufferError as error:
                buffer.stats.unreachable += 1
                stats.overloaded += 1
                logger.error("buffer: redis unreachable: %s", type(error).__name__)
                return _overloaded("the buffer (redis) is unreachable", self.retry_after)
        return self._result(len(entries), rejected, len(events))

    def _result(self, accepted: int, rejected: list[dict[str, Any]], total: int) -> Answer:
        """200 when every event was taken, else 400 naming each rejected one."""
        stats = self.stats
        stats.accepted += accepted
        if not rejected:
            return 200, b'{"ok":true,"accepted":%d}' % accepted, [_JSON]
        stats.rejected += len(rejected)
        body = orjson.dumps(
            {
                "ok": False,
                "accepted": accepted,
                "rejected": rejected,
                "error": f"{len(rejected)} of {total} event(s) rejected",
            }
        )
        return 400, body, [_JSON]

    def _ingest_values(self, scope: Scope, headers: Headers) -> list[tuple[IngestTarget, Any]]:
        request = _request_context(scope, headers)
        context = MappingContext(request, None)
        values = []
        for target, resolve in self.ingest:
            value = resolve(request, context)
            if value is not UNDEFINED and value is not None:
                values.append((target, value))
        return values

    def _describe(self, scope: Scope, headers: Headers) -> dict[str, Any]:
        """The request as transformers see it (``context.ingest``), once per request."""
        request = _request_context(scope, headers)
        request["method"] = scope.get("method", "")
        request["path"] = scope.get("path", "")
        mapping = self.source.ingest_mapping
        if mapping is None:
            return request
        mapped = mapping(request, MappingContext(request, None))
        return mapped if isinstance(mapped, dict) else {}

    def metrics_body(self) -> bytes:
        if self._metrics is None:
            self._metrics = metrics_renderer(self.collector, self.source, self.source.shared)
        return self._metrics()


_REJECTED: Any = object()
"""``_within_limits``'s answer for an event refused by the limits (already in ``rejected``)."""


def _within_limits(
    index: int,
    raw: Any,
    limits: Limits,
    checked: bool,
    ingest: list[tuple[IngestTarget, Any]] | None,
    rejected: list[dict[str, Any]],
) -> Any:
    """One event of a request before it is pushed or stored: within every limit (else
    recorded in ``rejected`` and ``_REJECTED``), with the request's ingest values filled in."""
    problem = None if checked else check_limits(raw, limits)
    if problem is not None:
        rejected.append(_rejection(index, [problem]))
        return _REJECTED
    if ingest and isinstance(raw, dict):
        return _with_ingest(raw, ingest)
    return raw


def _rejection(index: int, errors: Any) -> dict[str, Any]:
    return {
        "index": index,
        "errors": [{"path": e.path, "reason": e.reason} for e in errors],
    }


def _refused(refusals: list[tuple[str, EventRejected]]) -> list[FieldError]:
    return [FieldError(where, refusal.reason) for where, refusal in refusals]


_GIF_TYPE = (b"content-type", b"image/gif")


def _as_gif(answer: Answer) -> Answer:
    """The pixel's form of an answer: the same status and headers, the GIF as the body."""
    status, _body, headers = answer
    return status, GIF, [*(h for h in headers if h[0] != b"content-type"), _GIF_TYPE]


def _error(status: int, reason: str) -> Answer:
    return status, orjson.dumps({"ok": False, "error": reason}), [_JSON]


def _overloaded(reason: str, retry_after: bytes) -> Answer:
    status, body, headers = _error(503, f"{reason}; retry after {retry_after.decode()}s")
    return status, body, [*headers, (b"retry-after", retry_after)]


@dataclass(frozen=True, slots=True)
class IngestTarget:
    """Where a request value goes in the event: the dot path split once, and its setter."""

    keys: tuple[str, ...]
    set: Setter


def _compile_ingest(ingest: dict[str, Any] | None) -> list[tuple[IngestTarget, Resolver]]:
    if not ingest:
        return []
    return [
        (
            IngestTarget(tuple(path.split(".")), compile_setter(path)),
            compile_value(config, f"ingest.{path}"),
        )
        for path, config in ingest.items()
    ]


def _request_context(scope: Scope, headers: Headers) -> dict[str, Any]:
    by_name = {n.decode("latin-1"): v.decode("latin-1") for n, v in headers}
    client = scope.get("client")
    language = by_name.get("accept-language", "")
    return {
        "ip": client[0] if client else None,
        "userAgent": by_name.get("user-agent"),
        "language": language.split(",", 1)[0].split(";", 1)[0].strip() or None,
        "origin": by_name.get("origin"),
        "referer": by_name.get("referer"),
        "headers": by_name,
    }


def _with_ingest(raw: dict[str, Any], values: list[tuple[IngestTarget, Any]]) -> dict[str, Any]:
    """Request values fill the event; what the client sent wins."""
    for target, value in values:
        raw = target.set(raw, value) if _missing(raw, target.keys) else raw
    return raw


def _missing(raw: dict[str, Any], keys: tuple[str, ...]) -> bool:
    current: Any = raw
    for part in keys:
        if not isinstance(current, dict) or part not in current:
            return True
        current = current[part]
    return False


__all__ = ["GIF", "CollectorApp", "FieldError", "HttpSettings", "HttpSource"]
