"""A local Segment-compatible receiver: what Segment would receive, without an account.

It speaks the Segment HTTP Tracking API as far as a client can observe it
(``POST /v1/batch`` and the six single-call endpoints, Basic auth with the
write key, gzip bodies, Segment's 32 KB message and 500 KB batch limits, JSON
errors with ``code`` and ``message``), records every accepted message, and lets
tests inject failures and hangs. Tests, benchmarks and ``make run`` all send
here, so it stays standard-library HTTP plus orjson and keeps each request cheap.

Beyond the tracking API it serves a small read-back and control surface::

    GET    /messages[?type=track]  -> {"count": N, "messages": [...]}
    DELETE /messages               -> clears messages and counters
    GET    /stats                  -> the counters of ``SegmentReceiver.stats``
    GET    /health                 -> {"status": "ok"}
    POST   /_control  {"status": 500, "count": 3, "retryAfter": 2, "delay": 0.5}
    GET    /_control               -> the faults now armed
    DELETE /_control               -> no more faults

Run it with ``python -m destination_segment.receiver --port 9010``.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import contextlib
import hmac
import logging
import math
import os
import random
import selectors
import signal
import socket
import socketserver
import sys
import threading
import time
import zlib
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType, TracebackType
from typing import IO, Any, Final
from urllib.parse import parse_qs, urlsplit

import orjson

__all__ = [
    "MAX_BATCH_BYTES",
    "MAX_BODY_BYTES",
    "MAX_MESSAGE_BYTES",
    "SegmentReceiver",
    "main",
]

log = logging.getLogger("destination_segment.receiver")

#: Segment rejects a single message whose JSON is over 32 KB.
MAX_MESSAGE_BYTES: Final = 32768
#: Segment rejects a batch body over 500 KB (measured after gzip decoding).
MAX_BATCH_BYTES: Final = 512000
#: Hard cap on what is read from the wire or inflated from gzip: a gzip bomb or a
#: runaway client gets a 413 instead of the receiver's memory.
MAX_BODY_BYTES: Final = 5 * 1024 * 1024

DEFAULT_PORT: Final = 9010
SPEC_TYPES: Final = ("track", "identify", "group", "page", "screen", "alias")
_BATCH_PATH: Final = "/v1/batch"
_SINGLE_PATHS: Final = {f"/v1/{kind}": kind for kind in SPEC_TYPES}
_JSON: Final = "application/json"


def _brief(value: object, limit: int = 60) -> str:
    """A client-supplied value, shortened, so error messages stay small."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _error_code(status: int) -> str:
    """A snake_case ``code`` for a status, as Segment's JSON errors carry one."""
    known = {
        400: "invalid_request",
        401: "unauthorized",
        404: "not_found",
        405: "method_not_allowed",
        413: "payload_too_large",
        429: "too_many_requests",
    }
    if status in known:
        return known[status]
    try:
        return HTTPStatus(status).phrase.lower().replace(" ", "_").replace("-", "_")
    except ValueError:
        return "server_error" if status >= 500 else "error"


def _now_iso() -> str:
    """Segment's ``receivedAt`` style: UTC, milliseconds, ``Z``."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _fresh(messages: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """A deep copy via orjson: callers may mutate it without touching the record."""
    return list(orjson.loads(orjson.dumps(list(messages))))


class _RequestError(Exception):
    """An answer other than 200 for a tracking request; nothing is recorded."""

    def __init__(self, status: int, message: str, *, close: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.close = close


@dataclass
class _Failure:
    """An armed ``fail()``: answer ``remaining`` more requests (None: all) with ``status``."""

    status: int
    remaining: int | None
    retry_after: float | None
    rate: float | None = None

    def header(self) -> str | None:
        """Retry-After as whole seconds: RFC 7231 delta-seconds, and the SDK ignores fractions."""
        return None if self.retry_after is None else str(math.ceil(self.retry_after))


@dataclass
class _Delay:
    """An armed ``delay()``: hold ``remaining`` more answers (None: all) for ``seconds``."""

    seconds: float
    remaining: int | None


def _gunzip(data: bytes, limit: int) -> bytes:
    """Inflate every gzip member of ``data``, never producing more than ``limit`` bytes."""
    out = bytearray()
    while data:
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            out += inflater.decompress(data, limit - len(out) + 1)
        except zlib.error as error:
            raise _RequestError(400, f"the gzip body cannot be decoded: {error}") from None
        if len(out) > limit or inflater.unconsumed_tail:
            raise _RequestError(413, f"the gzip body inflates to more than {limit} bytes")
        if not inflater.eof:
            raise _RequestError(400, "the gzip body is truncated")
        data = inflater.unused_data
    return bytes(out)


def _check_size(message: dict[str, Any], where: str) -> None:
    """Segment's 32 KB per-message limit, on the compact UTF-8 JSON encoding.

    The SDK measures ``json.dumps`` with spaces and ASCII escapes, which is never
    smaller, so anything the SDK lets through passes here too.
    """
    size = len(orjson.dumps(message))
    if size > MAX_MESSAGE_BYTES:
        raise _RequestError(
            400, f"{where} is {size} bytes as JSON; the limit is {MAX_MESSAGE_BYTES} (32 KB)"
        )


def _parse_messages(kind: str | None, raw: bytes) -> tuple[list[dict[str, Any]], Any]:
    """The messages of a batch (``kind`` None) or single-call body, and its ``sentAt``."""
    if kind is None and len(raw) > MAX_BATCH_BYTES:
        raise _RequestError(
            400, f"the batch is {len(raw)} bytes; the limit is {MAX_BATCH_BYTES} (500 KB)"
        )
    try:
        payload = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise _RequestError(400, f"the body is not valid JSON: {error}") from None
    if not isinstance(payload, dict):
        raise _RequestError(400, "the body must be a JSON object")
    if kind is not None:
        # A single call may carry the key in its body; it is a credential, not data.
        payload.pop("writeKey", None)
        payload.setdefault("type", kind)
        _check_size(payload, "the message")
        return [payload], payload.get("sentAt")
    batch = payload.get("batch")
    if not isinstance(batch, list):
        raise _RequestError(400, 'the body must have a "batch" array')
    for index, message in enumerate(batch):
        if not isinstance(message, dict):
            raise _RequestError(400, f"batch[{index}] is not a JSON object")
        _check_size(message, f"batch[{index}]")
    return batch, payload.get("sentAt")


class _Server(ThreadingHTTPServer):
    """ThreadingHTTPServer that tracks its connections so stop() can cut them.

    Keep-alive connections outlive ``shutdown()``: without cutting them a client
    could still be answered by a receiver that has stopped.
    """

    daemon_threads = True
    block_on_close = False  # stop() must not wait for a hanging request
    request_queue_size = 512
    allow_reuse_address = True
    timeout = 0.0  # handle_request() runs only once select() saw a client waiting

    def __init__(self, address: tuple[str, int], receiver: SegmentReceiver, family: int) -> None:
        self.address_family = family
        self.receiver = receiver
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        self._wake_reader, self._wake_writer = socket.socketpair()
        try:
            super().__init__(address, _Handler)
        except BaseException:
            self._close_wake()
            raise

    def serve_until(self, stopping: threading.Event) -> None:
        """Accept connections until ``stopping`` is set and wake() is called.

        serve_forever() notices shutdown() only on its poll interval, which would
        add that much to every stop(); a self-pipe ends the wait at once.
        """
        with selectors.DefaultSelector() as selector:
            selector.register(self.socket, selectors.EVENT_READ)
            selector.register(self._wake_reader, selectors.EVENT_READ)
            while not stopping.is_set():
                for key, _ in selector.select():
                    if key.fileobj is self.socket and not stopping.is_set():
                        self.handle_request()

    def wake(self) -> None:
        """Interrupt serve_until()'s wait."""
        with contextlib.suppress(OSError):
            self._wake_writer.send(b"\0")

    def server_close(self) -> None:
        super().server_close()
        self._close_wake()

    def _close_wake(self) -> None:
        self._wake_reader.close()
        self._wake_writer.close()

    def server_bind(self) -> None:
        """Bind without HTTPServer's getfqdn(), a DNS lookup that can stall start()."""
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def process_request(self, request: Any, client_address: Any) -> None:
        """Remember the connection before its thread starts."""
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        """Forget the connection once its thread is done with it."""
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Shut every open connection so blocked handler threads wake and exit."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that vanished is routine; log instead of printing a traceback."""
        error = sys.exc_info()[1]
        if isinstance(error, OSError):
            log.debug("connection from %s ended: %s", client_address, error)
        else:
            log.exception("unexpected error serving %s", client_address)


class _Handler(BaseHTTPRequestHandler):
    """One connection; routes each request to the receiver."""

    server: _Server
    protocol_version = "HTTP/1.1"  # keep-alive: the SDK's requests.Session reuses connections
    disable_nagle_algorithm = True  # headers and body go out in two writes
    timeout = 60  # an idle keep-alive connection frees its thread eventually
    server_version = "segment-receiver"
    sys_version = ""
    _counted = False  # this request is a /v1/ one, so its answer goes into by_status
    _body_read = True  # an error before the body was read must close the connection
    _body = b""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Silent: one line per request would swamp benchmarks."""

    def log_error(self, format: str, *args: Any) -> None:
        """Protocol errors at debug level (no headers, so never a write key)."""
        log.debug("%s: " + format, self.address_string(), *args)

    def do_POST(self) -> None:
        self._dispatch()

    def do_GET(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's own errors (bad request line, unknown method) as Segment-style JSON."""
        phrase = self.responses.get(code, ("error",))[0]
        self._respond(code, {"code": _error_code(code), "message": message or phrase}, close=True)

    # -- plumbing ----------------------------------------------------------------

    def _respond(
        self,
        status: int,
        payload: dict[str, Any],
        *,
        close: bool = False,
        headers: dict[str, str] | None = None,
    ) -> None:
        body = orjson.dumps(payload, option=orjson.OPT_NON_STR_KEYS)
        if self._counted:  # before writing: a client never sees an answer stats lack
            self._counted = False
            self.server.receiver._count_status(status)
        self.send_response(status)
        self.send_header("Content-Type", _JSON)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if getattr(self, "command", "") != "HEAD":
            self.wfile.write(body)

    def _reject(self, rejection: _RequestError) -> None:
        payload = {"code": _error_code(rejection.status), "message": rejection.message}
        self._respond(rejection.status, payload, close=rejection.close or not self._body_read)

    def _read_body(self) -> bytes:
        """The raw body, bounded by MAX_BODY_BYTES (plain or chunked)."""
        self._body_read = True  # from here on, any failure sets close itself
        encoding = self.headers.get("Transfer-Encoding")
        if encoding is not None:
            if encoding.strip().lower() != "chunked":
                raise _RequestError(400, "only chunked Transfer-Encoding is supported", close=True)
            return self._read_chunked()
        header = self.headers.get("Content-Length")
        if header is None:
            return b""
        try:
            length = int(header)
            if length < 0:
                raise ValueError(header)
        except ValueError:
            raise _RequestError(400, "the Content-Length header is invalid", close=True) from None
        if length > MAX_BODY_BYTES:
            raise _RequestError(413, f"the body is over {MAX_BODY_BYTES} bytes", close=True)
        data = self.rfile.read(length)
        if len(data) != length:
            raise _RequestError(400, "the body ended before Content-Length", close=True)
        return data

    def _read_chunked(self) -> bytes:
        chunks: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(1024)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise _RequestError(400, "a chunk size is invalid", close=True) from None
            if size == 0:
                while self.rfile.readline(8192) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(chunks)
            total += size
            if total > MAX_BODY_BYTES:
                raise _RequestError(413, f"the body is over {MAX_BODY_BYTES} bytes", close=True)
            chunk = self.rfile.read(size)
            if len(chunk) != size:
                raise _RequestError(400, "the chunked body ended early", close=True)
            chunks.append(chunk)
            self.rfile.readline(8)

    def _decode(self, body: bytes) -> bytes:
        encoding = (self.headers.get("Content-Encoding") or "identity").strip().lower()
        if encoding in ("", "identity"):
            return body
        if encoding in ("gzip", "x-gzip"):
            return _gunzip(body, MAX_BODY_BYTES)
        raise _RequestError(415, f"Content-Encoding {_brief(encoding)} is not supported; use gzip")

    def _authorize(self) -> None:
        """Basic auth with the write key as user name; the key itself is never echoed."""
        header = self.headers.get("Authorization")
        if not header:
            raise _RequestError(
                401, "no write key: send Authorization: Basic base64(<write key> + ':')"
            )
        scheme, _, value = header.strip().partition(" ")
        if scheme.lower() != "basic":
            raise _RequestError(401, "only Basic authentication with the write key is supported")
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise _RequestError(401, "the Basic credentials are not valid base64") from None
        key = decoded.partition(":")[0]
        if not key:
            raise _RequestError(401, "the write key is empty")
        expected = self.server.receiver.write_key
        if expected is not None and not hmac.compare_digest(key.encode(), expected.encode()):
            raise _RequestError(401, "the write key is not valid for this receiver")

    # -- routing -----------------------------------------------------------------

    def _dispatch(self) -> None:
        self._counted = False
        self._body_read = False
        path = urlsplit(self.path).path
        try:
            if path.startswith("/v1/"):
                self._counted = True
                self.server.receiver._count_request()
                self._tracking(path)
            else:
                self._local(path)
        except _RequestError as rejection:
            self._reject(rejection)
        except OSError:
            raise  # the client went away; the server logs it at debug level
        except Exception:
            log.exception("the receiver failed on %s %s", self.command, path)
            payload = {"code": "internal_error", "message": "receiver error"}
            self._respond(500, payload, close=not self._body_read)

    def _tracking(self, path: str) -> None:
        receiver = self.server.receiver
        received_at = _now_iso()
        if path == _BATCH_PATH:
            kind = None
        elif path in _SINGLE_PATHS:
            kind = _SINGLE_PATHS[path]
        else:
            raise _RequestError(404, f"{_brief(path)} is not a Segment Tracking API endpoint")
        if self.command != "POST":
            raise _RequestError(405, f"{path} accepts POST only")
        body = self._read_body()
        delay, failure = receiver._take_faults()
        if delay > 0 and receiver._stopping.wait(delay):
            self.close_connection = True  # stopped while hanging: no answer at all
            return
        if failure is not None:
            header = failure.header()
            self._respond(
                failure.status,
                {"code": _error_code(failure.status), "message": "injected failure"},
                headers={"Retry-After": header} if header is not None else None,
            )
            return
        self._authorize()
        messages, sent_at = _parse_messages(kind, self._decode(body))
        receiver._accept(messages, received_at, sent_at)
        self._counted = False  # _accept() counted the 200 with the messages
        self._respond(200, {"success": True})

    def _local(self, path: str) -> None:
        receiver = self.server.receiver
        self._body = self._read_body()
        routes: dict[tuple[str, str], Callable[[], None]] = {
            ("GET", "/messages"): self._get_messages,
            ("DELETE", "/messages"): self._clear,
            ("GET", "/stats"): lambda: self._respond(200, receiver.stats),
            ("GET", "/health"): lambda: self._respond(200, {"status": "ok"}),
            ("POST", "/_control"): self._control,
            ("GET", "/_control"): lambda: self._respond(200, {"faults": receiver.faults}),
            ("DELETE", "/_control"): self._reset_faults,
        }
        route = routes.get((self.command, path))
        if route is not None:
            route()
            return
        if any(known == path for _, known in routes):
            raise _RequestError(405, f"{self.command} is not supported on {path}")
        raise _RequestError(
            404,
            f"{_brief(path)} is not served here; try POST /v1/batch or GET /messages",
        )

    def _get_messages(self) -> None:
        query = parse_qs(urlsplit(self.path).query)
        kind = query.get("type", [None])[0]
        messages = self.server.receiver.messages(kind)
        self._respond(200, {"count": len(messages), "messages": messages})

    def _clear(self) -> None:
        self.server.receiver.clear()
        self._respond(200, {"success": True})

    def _reset_faults(self) -> None:
        self.server.receiver.reset_faults()
        self._respond(200, {"success": True})

    def _control(self) -> None:
        try:
            spec = orjson.loads(self._decode(self._body) or b"{}")
        except orjson.JSONDecodeError as error:
            raise _RequestError(400, f"the body is not valid JSON: {error}") from None
        receiver = self.server.receiver
        try:
            receiver._apply_control(spec)
        except (TypeError, ValueError) as error:
            raise _RequestError(400, str(error)) from None
        self._respond(200, {"success": True, "faults": receiver.faults})


def _number(spec: dict[str, Any], key: str, *, integer: bool = False) -> Any:
    """A non-negative number (or None) from a /_control body, with a clear error."""
    value = spec.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int if integer else int | float):
        valid = False
    else:
        valid = value >= 0
    if not valid:
        wanted = "a non-negative integer" if integer else "a non-negative number"
        raise ValueError(f"{key} must be {wanted} or null, not {_brief(value)}")
    return value


class SegmentReceiver:
    """An in-process Segment Tracking API endpoint that records what it accepts.

    Start it (or use it as a context manager), pass ``url`` to the SDK as its
    host, then read what arrived with ``messages()`` / ``wait_for()``. It is
    thread-safe: the HTTP server answers on its own threads.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        write_key: str | None = None,
        record_path: str | Path | None = None,
        *,
        max_messages: int | None = None,
    ) -> None:
        """``write_key`` None accepts any non-empty key; ``max_messages`` bounds memory
        for long benchmarks by keeping only the newest messages (counters still count all)."""
        if max_messages is not None and max_messages < 1:
            raise ValueError("max_messages must be at least 1 (or None for no bound)")
        self.host = host
        self._requested_port = port
        self.write_key = write_key
        self.record_path = Path(record_path) if record_path is not None else None
        self._cond = threading.Condition(threading.Lock())
        self._messages: deque[dict[str, Any]] = deque(maxlen=max_messages)
        self._message_ids: set[str] = set()
        self._type_counts: Counter[str | None] = Counter()
        self._accepted = 0
        self._requests = 0
        self._by_status: Counter[int] = Counter()
        self._fault_lock = threading.Lock()
        self._chance = random.Random(20261125)  # fault injection, repeatable
        self._failure: _Failure | None = None
        self._delay: _Delay | None = None
        self._file_lock = threading.Lock()
        self._record_file: IO[bytes] | None = None
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    def __repr__(self) -> str:
        state = self.url if self._server is not None else "stopped"
        return f"<SegmentReceiver {state}>"  # never the write key

    # -- lifecycle -----------------------------------------------------------------

    def start(self) -> SegmentReceiver:
        """Bind and serve in a daemon thread; port 0 picks a free port (see ``url``)."""
        if self._server is not None:
            raise RuntimeError("the receiver is already running")
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        record_file = self.record_path.open("ab") if self.record_path is not None else None
        try:
            server = _Server((self.host, self._requested_port), self, family)
        except BaseException:
            if record_file is not None:
                record_file.close()
            raise
        self._stopping = threading.Event()
        self._record_file = record_file
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_until,
            args=(self._stopping,),
            name=f"segment-receiver-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and cut open connections; returns promptly even mid-hang."""
        server, thread = self._server, self._thread
        if server is None:
            return
        self._stopping.set()  # also wakes every delayed answer
        server.wake()
        if thread is not None:
            thread.join(timeout=5)
        server.server_close()
        server.close_connections()
        with self._file_lock:
            if self._record_file is not None:
                self._record_file.close()
                self._record_file = None
        self._server = None
        self._thread = None

    def __enter__(self) -> SegmentReceiver:
        return self if self._server is not None else self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The bound port once started (the requested one before)."""
        if self._server is not None:
            return int(self._server.server_address[1])
        return self._requested_port

    @property
    def url(self) -> str:
        """What to pass as the SDK's ``host``, e.g. ``http://127.0.0.1:54321``."""
        if self._server is None and self._requested_port == 0:
            raise RuntimeError("the receiver picks its port on start(); start it first")
        host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(self.host, self.host)
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    # -- read-back -----------------------------------------------------------------

    def messages(self, type: str | None = None) -> list[dict[str, Any]]:
        """A deep copy of the recorded messages, oldest first, optionally of one type."""
        with self._cond:
            selected = self._select(type)
        return _fresh(selected)

    def message_ids(self) -> set[str]:
        """Distinct messageIds accepted: Segment de-duplicates on these."""
        with self._cond:
            return set(self._message_ids)

    def clear(self) -> None:
        """Forget messages and reset counters (faults and the record file stay)."""
        with self._cond:
            self._messages.clear()
            self._message_ids.clear()
            self._type_counts.clear()
            self._accepted = 0
            self._requests = 0
            self._by_status.clear()

    def wait_for(
        self, count: int, timeout: float = 10.0, type: str | None = None
    ) -> list[dict[str, Any]]:
        """Block until at least ``count`` messages (of ``type``) were accepted; return them.

        Raises TimeoutError naming how many did arrive, so a failing test says
        "2 of 3" rather than just timing out.
        """
        with self._cond:
            arrived = self._cond.wait_for(lambda: self._count_of(type) >= count, timeout)
            if not arrived:
                what = f"{type} message(s)" if type else "message(s)"
                raise TimeoutError(
                    f"waited {timeout:g}s for {count} {what} at {self!r} but "
                    f"{self._count_of(type)} arrived ({self._accepted} of any type; "
                    f"{self._requests} request(s), by status {dict(self._by_status)})"
                )
            selected = self._select(type)
        return _fresh(selected)

    def wait_for_requests(self, count: int, timeout: float = 10.0) -> int:
        """Block until ``count`` tracking-API requests have arrived (answered or not).

        Lets a test know a request is being held by ``delay()`` without sleeping.
        """
        with self._cond:
            if not self._cond.wait_for(lambda: self._requests >= count, timeout):
                raise TimeoutError(
                    f"waited {timeout:g}s for {count} request(s) at {self!r} but "
                    f"{self._requests} arrived"
                )
            return self._requests

    @property
    def stats(self) -> dict[str, Any]:
        """Counters since start or the last clear().

        ``requests`` counts /v1/ requests on arrival, ``by_status`` counts answers
        by status code, ``messages`` accepted messages (duplicates included) and
        ``distinct_message_ids`` what Segment would keep after de-duplication.
        """
        with self._cond:
            return {
                "requests": self._requests,
                "by_status": dict(self._by_status),
                "messages": self._accepted,
                "distinct_message_ids": len(self._message_ids),
            }

    # -- faults --------------------------------------------------------------------

    def fail(
        self,
        status: int,
        count: int | None = None,
        retry_after: float | None = None,
        rate: float | None = None,
    ) -> None:
        """Answer the next ``count`` requests (None: all) with ``status``.

        With ``rate`` (0-1), each request fails with that probability instead
        (seeded, so a soak run is repeatable); ``count`` then counts failures.

        ``retry_after`` adds a Retry-After header in whole seconds (rounded up,
        since the SDK only parses integers). Failed requests record nothing.
        """
        if isinstance(status, bool) or not isinstance(status, int) or not 300 <= status <= 599:
            raise ValueError(f"status must be an HTTP status from 300 to 599, not {status!r}")
        if count is not None and count < 0:
            raise ValueError("count must be non-negative or None")
        if retry_after is not None and retry_after < 0:
            raise ValueError("retry_after must be non-negative or None")
        if rate is not None and not 0 < rate <= 1:
            raise ValueError("rate must be a fraction in (0, 1] or None")
        with self._fault_lock:
            self._failure = _Failure(status, count, retry_after, rate) if count != 0 else None

    def delay(self, seconds: float, count: int | None = None) -> None:
        """Hold the next ``count`` answers (None: all) for ``seconds``; a long delay is a hang.

        The wait is on an Event, so stop() still returns promptly.
        """
        if seconds < 0:
            raise ValueError("seconds must be non-negative")
        if count is not None and count < 0:
            raise ValueError("count must be non-negative or None")
        with self._fault_lock:
            self._delay = _Delay(seconds, count) if count != 0 and seconds > 0 else None

    def reset_faults(self) -> None:
        """Answer normally again."""
        with self._fault_lock:
            self._failure = None
            self._delay = None

    @property
    def faults(self) -> dict[str, Any]:
        """The faults now armed, in the /_control JSON spelling."""
        with self._fault_lock:
            failure, delay = self._failure, self._delay
            return {
                "fail": None
                if failure is None
                else {
                    "status": failure.status,
                    "remaining": failure.remaining,
                    "retryAfter": failure.retry_after,
                    "rate": failure.rate,
                },
                "delay": None
                if delay is None
                else {"seconds": delay.seconds, "remaining": delay.remaining},
            }

    # -- internals used by the handler ---------------------------------------------

    def _apply_control(self, spec: Any) -> None:
        """POST /_control: arm what the body names (status and/or delay), sharing count."""
        if not isinstance(spec, dict):
            raise ValueError("the /_control body must be a JSON object")
        unknown = set(spec) - {"status", "count", "retryAfter", "delay", "rate"}
        if unknown:
            raise ValueError(
                f"unknown /_control field(s) {sorted(unknown)}; "
                "use status, count, retryAfter, rate, delay"
            )
        count = _number(spec, "count", integer=True)
        status = _number(spec, "status", integer=True)
        retry_after = _number(spec, "retryAfter")
        rate = _number(spec, "rate")
        seconds = _number(spec, "delay")
        if status is None and seconds is None:
            raise ValueError('give "status" and/or "delay" (DELETE /_control resets)')
        if status is None and retry_after is not None:
            raise ValueError('"retryAfter" needs a "status"')
        if status is None and rate is not None:
            raise ValueError('"rate" needs a "status"')
        if status is not None:
            self.fail(status, count, retry_after, rate)
        if seconds is not None:
            self.delay(seconds, count)

    def _take_faults(self) -> tuple[float, _Failure | None]:
        """Consume one use of each armed fault for the request now being answered."""
        with self._fault_lock:
            seconds = 0.0
            delay = self._delay
            if delay is not None:
                seconds = delay.seconds
                if delay.remaining is not None:
                    delay.remaining -= 1
                    if delay.remaining <= 0:
                        self._delay = None
            failure = self._failure
            rate = failure.rate if failure is not None else None
            if rate is not None and self._chance.random() >= rate:
                return seconds, None
            if failure is not None:
                if failure.remaining is not None:
                    failure.remaining -= 1
                    if failure.remaining <= 0:
                        self._failure = None
                failure = _Failure(failure.status, None, failure.retry_after)
            return seconds, failure

    def _count_request(self) -> None:
        with self._cond:
            self._requests += 1
            self._cond.notify_all()

    def _count_status(self, status: int) -> None:
        with self._cond:
            self._by_status[status] += 1

    def _accept(self, messages: list[dict[str, Any]], received_at: str, sent_at: Any) -> None:
        """Stamp and keep accepted messages, and count the 200 in the same step.

        The file is written first and the status counted with the messages, so
        whatever wait_for() returns, the file and ``stats`` already reflect it.
        """
        for message in messages:
            message["receivedAt"] = received_at
            if sent_at is not None:
                message.setdefault("sentAt", sent_at)
        if messages and self.record_path is not None:
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

    def _count_of(self, type: str | None) -> int:
        return self._accepted if type is None else self._type_counts[type]

    def _select(self, type: str | None) -> list[dict[str, Any]]:
        if type is None:
            return list(self._messages)
        return [message for message in self._messages if message.get("type") == type]


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


if __name__ == "__main__":
    raise SystemExit(main())
