"""``SegmentReceiver``: start and stop the server; the API over its recording and faults."""

from __future__ import annotations

import socket
import threading
from pathlib import Path
from types import TracebackType
from typing import Any

from destination_segment.receiver.faults import Failure, Faults
from destination_segment.receiver.recording import Recording
from destination_segment.receiver.server import ReceiverServer


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
        self._recording = Recording(max_messages)
        self._faults = Faults()
        self._server: ReceiverServer | None = None
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
            server = ReceiverServer((self.host, self._requested_port), self, family)
        except BaseException:
            if record_file is not None:
                record_file.close()
            raise
        self._stopping = threading.Event()
        self._recording.record_to(record_file)
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
        self._recording.close_file()
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
        return self._recording.messages(type)

    def message_ids(self) -> set[str]:
        """Distinct messageIds accepted: Segment de-duplicates on these."""
        return self._recording.message_ids()

    def clear(self) -> None:
        """Forget messages and reset counters (faults and the record file stay)."""
        self._recording.clear()

    def wait_for(
        self, count: int, timeout: float = 10.0, type: str | None = None
    ) -> list[dict[str, Any]]:
        """Block until at least ``count`` messages (of ``type``) were accepted; return them.

        Raises TimeoutError naming how many did arrive, so a failing test says
        "2 of 3" rather than just timing out.
        """
        return self._recording.wait_for(count, timeout, type, self)

    def wait_for_requests(self, count: int, timeout: float = 10.0) -> int:
        """Block until ``count`` tracking-API requests have arrived (answered or not).

        Lets a test know a request is being held by ``delay()`` without sleeping.
        """
        return self._recording.wait_for_requests(count, timeout, self)

    @property
    def stats(self) -> dict[str, Any]:
        """Counters since start or the last clear().

        ``requests`` counts /v1/ requests on arrival, ``by_status`` counts answers
        by status code, ``messages`` accepted messages (duplicates included) and
        ``distinct_message_ids`` what Segment would keep after de-duplication.
        """
        return self._recording.stats()

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
        self._faults.fail(status, count, retry_after, rate)

    def delay(self, seconds: float, count: int | None = None) -> None:
        """Hold the next ``count`` answers (None: all) for ``seconds``; a long delay is a hang.

        The wait is on an Event, so stop() still returns promptly.
        """
        self._faults.delay(seconds, count)

    def reset_faults(self) -> None:
        """Answer normally again."""
        self._faults.reset()

    @property
    def faults(self) -> dict[str, Any]:
        """The faults now armed, in the /_control JSON spelling."""
        return self._faults.armed()

    # -- internals used by the handler ---------------------------------------------

    def _apply_control(self, spec: Any) -> None:
        """POST /_control: arm what the body names (status and/or delay), sharing count."""
        self._faults.apply_control(spec)

    def _take_faults(self) -> tuple[float, Failure | None]:
        """Consume one use of each armed fault for the request now being answered."""
        return self._faults.take()

    def _count_request(self) -> None:
        self._recording.count_request()

    def _count_status(self, status: int) -> None:
        self._recording.count_status(status)

    def _accept(self, messages: list[dict[str, Any]], received_at: str, sent_at: Any) -> None:
        """Stamp and keep accepted messages, and count the 200 in the same step."""
        self._recording.accept(messages, received_at, sent_at)
