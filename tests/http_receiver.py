"""A tiny stdlib HTTP server on 127.0.0.1 that records every request, for HTTP destinations.

``answer(status, count, retry_after)`` makes the next ``count`` requests fail;
``hold()`` keeps requests waiting until ``let_go()`` (an endpoint that hangs).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]
    """Header names lowercased."""
    body: bytes
    at: float
    """``time.monotonic()`` when it arrived."""


class Receiver:
    """Records requests; answers 200 unless told otherwise."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self._changed = threading.Condition()
        self._faults: deque[tuple[int, str | None]] = deque()
        self._open = threading.Event()
        self._open.set()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # else each answer waits ~40 ms for a delayed ACK

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                with receiver._changed:
                    receiver.requests.append(
                        Request(
                            self.command,
                            self.path,
                            {k.lower(): v for k, v in self.headers.items()},
                            body,
                            time.monotonic(),
                        )
                    )
                    receiver._changed.notify_all()
                receiver._open.wait(30)
                status, retry_after = receiver._next_answer()
                self.send_response(status)
                if retry_after is not None:
                    self.send_header("Retry-After", retry_after)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "11")
                self.end_headers()
                self.wfile.write(b'{"ok":true}')

            do_POST = do_PUT = do_GET = do_PATCH = do_DELETE = _any  # noqa: N815

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._open.set()
        self.server.shutdown()
        self.server.server_close()

    def _next_answer(self) -> tuple[int, str | None]:
        with self._changed:
            return self._faults.popleft() if self._faults else (200, None)

    def answer(self, status: int, count: int = 1, retry_after: str | None = None) -> None:
        """Answer the next ``count`` requests with ``status`` (and ``Retry-After``)."""
        with self._changed:
            self._faults.extend([(status, retry_after)] * count)

    def hold(self) -> None:
        """Keep every request waiting (up to 30 s) until ``let_go``."""
        self._open.clear()

    def let_go(self) -> None:
        self._open.set()

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Request]:
        """The first ``count`` requests once they arrived (answered or held); AssertionError
        after ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self.requests) < count:
                remaining = deadline - time.monotonic()
                assert remaining > 0, f"{len(self.requests)} request(s) arrived, wanted {count}"
                self._changed.wait(remaining)
            return self.requests[:count]
