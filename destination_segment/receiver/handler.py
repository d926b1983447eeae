"""The request handler: routes the tracking API and the read-back/control surface.

Tracking requests (``/v1/...``) are counted, held or failed as the armed faults
say, authorized, parsed and handed to the receiver; everything else is the small
local surface described in the package docstring. Every answer is JSON.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import orjson

from destination_segment.receiver.body import read_body
from destination_segment.receiver.protocol import (
    BATCH_PATH,
    SINGLE_PATHS,
    RequestError,
    brief,
    check_write_key,
    decode_body,
    error_code,
    now_iso,
    parse_messages,
)

if TYPE_CHECKING:
    from destination_segment.receiver.server import ReceiverServer

log = logging.getLogger("destination_segment.receiver")

_JSON = "application/json"


class ReceiverHandler(BaseHTTPRequestHandler):
    """One connection; routes each request to the receiver."""

    server: ReceiverServer
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
        self._respond(code, {"code": error_code(code), "message": message or phrase}, close=True)

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

    def _reject(self, rejection: RequestError) -> None:
        payload = {"code": error_code(rejection.status), "message": rejection.message}
        self._respond(rejection.status, payload, close=rejection.close or not self._body_read)

    def _read_body(self) -> bytes:
        """The raw body, bounded by MAX_BODY_BYTES (plain or chunked)."""
        self._body_read = True  # from here on, any failure sets close itself
        return read_body(self.headers, self.rfile)

    def _decode(self, body: bytes) -> bytes:
        return decode_body(body, self.headers.get("Content-Encoding"))

    def _authorize(self) -> None:
        """Basic auth with the write key as user name; the key itself is never echoed."""
        check_write_key(self.headers.get("Authorization"), self.server.receiver.write_key)

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
        except RequestError as rejection:
            self._reject(rejection)
        except OSError:
            raise  # the client went away; the server logs it at debug level
        except Exception:
            log.exception("the receiver failed on %s %s", self.command, path)
            payload = {"code": "internal_error", "message": "receiver error"}
            self._respond(500, payload, close=not self._body_read)

    def _tracking(self, path: str) -> None:
        receiver = self.server.receiver
        received_at = now_iso()
        if path == BATCH_PATH:
            kind = None
        elif path in SINGLE_PATHS:
            kind = SINGLE_PATHS[path]
        else:
            raise RequestError(404, f"{brief(path)} is not a Segment Tracking API endpoint")
        if self.command != "POST":
            raise RequestError(405, f"{path} accepts POST only")
        body = self._read_body()
        delay, failure = receiver._take_faults()
        if delay > 0 and receiver._stopping.wait(delay):
            self.close_connection = True  # stopped while hanging: no answer at all
            return
        if failure is not None:
            header = failure.header()
            self._respond(
                failure.status,
                {"code": error_code(failure.status), "message": "injected failure"},
                headers={"Retry-After": header} if header is not None else None,
            )
            return
        self._authorize()
        messages, sent_at = parse_messages(kind, self._decode(body))
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
            raise RequestError(405, f"{self.command} is not supported on {path}")
        raise RequestError(
            404,
            f"{brief(path)} is not served here; try POST /v1/batch or GET /messages",
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
            raise RequestError(400, f"the body is not valid JSON: {error}") from None
        receiver = self.server.receiver
        try:
            receiver._apply_control(spec)
        except (TypeError, ValueError) as error:
            raise RequestError(400, str(error)) from None
        self._respond(200, {"success": True, "faults": receiver.faults})
