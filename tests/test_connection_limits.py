"""Connection limits of the http source, over real sockets against the real server.

Raw sockets play the clients that misbehave (oversized headers, stalled headers and
bodies, idle and surplus connections); the well-behaved ones use httpx. Most tests run
on both of uvicorn's protocols: httptools (the default) and h11 (the pure-Python
fallback). Timeouts are short here (hundreds of ms) and every wait has a deadline.
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from destination_segment.receiver import SegmentReceiver
from flows.http.openapi import openapi_document
from flows.http.settings import HttpSettings
from tests.cli_helpers import DEMO_FLOW, flows_running, run_flows
from tests.http_helpers import Served, serving
from tests.slow_client import read_to_close

HEADERS_TIMEOUT, REQUEST_TIMEOUT, KEEP_ALIVE_TIMEOUT = 0.3, 0.6, 0.4
TIMEOUTS = {
    "headersTimeout": int(HEADERS_TIMEOUT * 1000),
    "requestTimeout": int(REQUEST_TIMEOUT * 1000),
    "keepAliveTimeout": int(KEEP_ALIVE_TIMEOUT * 1000),
}
LATE = 0.7
"""How long after its deadline a close may come: the sweep runs every tenth of the
headers timeout, and a shared CI machine adds its own delays."""
KEEP_ALIVE_EARLY = 0.05
"""uvicorn arms its keep-alive timer before the answer reaches the client, on the loop's
clock (read at the start of a loop iteration): the close may come this much early."""
MAX_HEADER_SIZE = 16_384


def event(event_id: str) -> dict[str, Any]:
    return {"name": "product view", "id": event_id, "user": {"id": "u1"}}


@pytest.fixture(params=[True, False], ids=["httptools", "h11"])
def httptools(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


@pytest.fixture
def served(segment_receiver: SegmentReceiver, httptools: bool) -> Iterator[Served]:
    with serving(segment_receiver.url, TIMEOUTS, httptools=httptools) as running:
        yield running


def connect(url: str) -> socket.socket:
    parts = urlsplit(url)
    assert parts.hostname == "127.0.0.1"
    return socket.create_connection((parts.hostname, parts.port or 80), timeout=5)


class Answers:
    """Answers read one at a time from a kept-alive connection (pipelined ones included)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.data = b""

    def next(self) -> tuple[int, dict[str, str], bytes]:
        """Status, headers and body (by Content-Length) of the next answer."""
        while b"\r\n\r\n" not in self.data:
            self._more()
        status, headers, rest = parse(self.data)
        length = int(headers["content-length"])
        while len(rest) < length:
            self._more()
            status, headers, rest = parse(self.data)
        self.data = rest[length:]
        return status, headers, rest[:length]

    def _more(self) -> None:
        chunk = self.sock.recv(65536)
        assert chunk, f"connection closed after {self.data!r}"
        self.data += chunk


def read_answer(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    return Answers(sock).next()


def parse(data: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, body


def post_head(size: int, body: bytes) -> bytes:
    """A POST /collect request line and headers of exactly ``size`` bytes (blank line included)."""
    start = (
        "POST /collect HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nX-Pad: "
    ).encode()
    return start + b"a" * (size - len(start) - 4) + b"\r\n\r\n"


GET_HEALTH = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


def delivered(receiver: SegmentReceiver, served: Served, marker: str) -> set[str]:
    """The messageIds the receiver got, once a marker event posted last has arrived."""
    with httpx.Client(timeout=5) as client:
        assert client.post(served.collect, json=event(marker)).status_code == 200
    deadline = time.monotonic() + 10
    while f"{marker}-track" not in receiver.message_ids() and time.monotonic() < deadline:
        time.sleep(0.01)
    return receiver.message_ids()


def wait_until(condition: Callable[[], object], what: str, within: float = 5) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, f"not {what} within {within} s"
        time.sleep(0.01)


def requests_done(served: Served) -> None:
    """Wait until the server runs no request and holds no connection."""
    state = served.server.server_state
    wait_until(lambda: not state.tasks and not state.connections, "idle")


def warnings_logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


# -- maxHeaderSize --------------------------------------------------------------------------


def test_headers_of_max_header_size_are_served_and_one_byte_more_gets_431(
    served: Served, segment_receiver: SegmentReceiver
) -> None:
    at_limit = json.dumps(event("at-limit")).encode()
    after = json.dumps(event("pipelined")).encode()
    with connect(served.url) as sock:  # pipelined behind it: the body and the next request
        sock.sendall(
            post_head(MAX_HEADER_SIZE, at_limit) + at_limit + post_head(200, after) + after
        )
        answers = Answers(sock)
        assert answers.next()[::2] == (200, b'{"ok":true,"accepted":1}')
        assert answers.next()[::2] == (200, b'{"ok":true,"accepted":1}')
    over = json.dumps(event("over-limit")).encode()
    with connect(served.url) as sock:
        sock.sendall(post_head(MAX_HEADER_SIZE + 1, over) + over)
        status, headers, body = parse(read_to_close(sock, 5))
    assert status == 431
    assert headers["connection"] == "close"
    assert json.loads(body) == {
        "ok": False,
        "error": "request line and headers over maxHeaderSize (16384 bytes)",
    }
    assert delivered(segment_receiver, served, "marker") == {
        "at-limit-track",
        "pipelined-track",
        "marker-track",
    }
    assert served.source.stats.requests[431] == 1, "counted in flows_http_requests_total"


def test_a_16_mb_header_is_refused_without_being_buffered(served: Served) -> None:
    with connect(served.url) as sock:
        before = rss_kb()
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ")
        chunk = b"a" * 65536
        for _ in range(16 * 2**20 // len(chunk)):  # read and dropped: no reset, no broken pipe
            sock.sendall(chunk)
        answer = read_to_close(sock, 5)
        growth_kb = rss_kb() - before
    assert answer.startswith(b"HTTP/1.1 431 ")
    assert growth_kb < 4096, f"RSS grew by {growth_kb} KB"


def rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS in /proc/self/status")


# -- headersTimeout, requestTimeout, keepAliveTimeout ---------------------------------------


def test_a_connection_that_stalls_in_its_headers_is_closed_after_headers_timeout(
    served: Served,
) -> None:
    start = time.monotonic()  # a first request's clock starts when its connection opens
    with connect(served.url) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.")
        status, _, body = parse(read_to_close(sock, 3))
        elapsed = time.monotonic() - start
    assert HEADERS_TIMEOUT <= elapsed < HEADERS_TIMEOUT + LATE
    assert status == 408
    assert json.loads(body)["error"] == "headers not complete within headersTimeout (300 ms)"


def test_headers_timeout_counts_from_a_kept_alive_requests_first_byte(served: Served) -> None:
    with connect(served.url) as sock:
        sock.sendall(GET_HEALTH)
        assert read_answer(sock)[0] == 200
        time.sleep(KEEP_ALIVE_TIMEOUT / 2)  # idle on purpose, within keepAliveTimeout
        start = time.monotonic()
        sock.sendall(b"GET /health HTTP/1.1\r\n")
        assert read_to_close(sock, 3).startswith(b"HTTP/1.1 408 ")
        elapsed = time.monotonic() - start
    assert HEADERS_TIMEOUT <= elapsed < HEADERS_TIMEOUT + LATE


def test_header_bytes_trickled_in_do_not_extend_headers_timeout(served: Served) -> None:
    start = time.monotonic()
    with connect(served.url) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\n")
        closed = False
        for _ in range(60):  # a byte every 50 ms, for at most 3 s
            sock.sendall(b"X")
            sock.settimeout(0.05)
            try:
                closed = sock.recv(65536).startswith(b"HTTP/1.1 408 ")
                break
            except TimeoutError:
                continue
        elapsed = time.monotonic() - start
    assert closed
    assert HEADERS_TIMEOUT <= elapsed < HEADERS_TIMEOUT + LATE


def test_a_body_that_stalls_is_cut_after_request_timeout_and_nothing_of_it_is_accepted(
    served: Served, segment_receiver: SegmentReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    body = json.dumps(event("stalled")).encode()
    with httpx.Client(timeout=5) as client:  # made first: making it takes a while
        start = time.monotonic()
        with connect(served.url) as sock:
            sock.sendall(post_head(300, body) + body[: len(body) // 2])
            meanwhile = client.post(served.collect, json=event("meanwhile"))
            assert meanwhile.status_code == 200  # another connection is served all along
            status, _, answer = parse(read_to_close(sock, 3))
            elapsed = time.monotonic() - start
    assert REQUEST_TIMEOUT <= elapsed < REQUEST_TIMEOUT + LATE
    assert status == 408
    assert json.loads(answer)["error"] == "request not complete within requestTimeout (600 ms)"
    assert delivered(segment_receiver, served, "marker") == {"meanwhile-track", "marker-track"}
    requests_done(served)
    assert served.source.stats.requests == {200: 2, 408: 1}  # the cut request: its 408, no 400
    assert served.source.stats.received == 2
    assert warnings_logged(caplog) == []


def test_answers_a_connection_gets_carry_cors_so_a_page_can_read_them(
    served: Served, segment_receiver: SegmentReceiver, httptools: bool
) -> None:
    """The default ``cors: true`` is ``*``: the 431 and the 408s say so, as every answer does."""
    with connect(served.url) as sock:
        sock.sendall(post_head(MAX_HEADER_SIZE + 1, b"{}"))
        status, headers, _ = parse(read_to_close(sock, 3))
    assert (status, headers["access-control-allow-origin"]) == (431, "*")
    body = json.dumps(event("late")).encode()
    with connect(served.url) as sock:
        sock.sendall(post_head(300, body) + body[:5])
        status, headers, _ = parse(read_to_close(sock, 3))
    assert (status, headers["access-control-allow-origin"]) == (408, "*")
    listed = {**TIMEOUTS, "cors": {"origin": ["https://shop.example"]}}
    with serving(segment_receiver.url, listed, httptools=httptools) as shop:
        for origin, allowed in (
            ("https://shop.example", "https://shop.example"),
            ("https://x.example", None),
        ):
            head = post_head(300, body).replace(
                b"Host: 127.0.0.1\r\n", f"Host: 127.0.0.1\r\nOrigin: {origin}\r\n".encode()
            )
            with connect(shop.url) as sock:
                sock.sendall(head + body[:5])  # the headers, then a body that never ends
                status, headers, _ = parse(read_to_close(sock, 3))
            assert status == 408
            assert headers.get("access-control-allow-origin") == allowed, origin
            assert headers["vary"] == "origin"  # parse() lowercases the lines


def test_a_client_gone_mid_body_ends_its_request_quietly(
    served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    body = json.dumps(event("abandoned")).encode()
    with connect(served.url) as sock:
        sock.sendall(post_head(300, body) + body[:10])
        wait_until(lambda: served.server.server_state.tasks, "reading the body")
    requests_done(served)
    assert served.source.stats.requests == {}
    assert served.source.stats.received == 0
    assert warnings_logged(caplog) == []


def test_an_idle_kept_alive_connection_is_closed_after_keep_alive_timeout(served: Served) -> None:
    with connect(served.url) as sock:
        sock.sendall(GET_HEALTH)
        assert read_answer(sock)[0] == 200
        start = time.monotonic()
        assert read_to_close(sock, 3) == b""  # closed quietly: there was no request to answer
        elapsed = time.monotonic() - start
    assert KEEP_ALIVE_TIMEOUT - KEEP_ALIVE_EARLY <= elapsed < KEEP_ALIVE_TIMEOUT + LATE


# -- maxConnections -------------------------------------------------------------------------

CAP = 8


@pytest.fixture
def capped_flow(tmp_path: Path) -> Path:
    """The demo flow without its log destination, capped at CAP connections."""
    data = json.loads(DEMO_FLOW.read_text())
    flow = data["flows"]["default"]
    del flow["destinations"]["log"]
    flow["sources"]["http"]["config"]["settings"].update(
        {"maxConnections": CAP, "keepAliveTimeout": 60_000}
    )
    path = tmp_path / "capped.flow.json"
    path.write_text(json.dumps(data))
    return path


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def wait_for_fds(pid: int, at_most: int) -> int:
    deadline = time.monotonic() + 5
    while (count := open_fds(pid)) > at_most and time.monotonic() < deadline:
        time.sleep(0.01)
    return count


def test_connections_over_max_connections_are_refused_and_the_open_ones_keep_working(
    capped_flow: Path, segment_receiver: SegmentReceiver
) -> None:
    with flows_running(capped_flow, env={"SEGMENT_HOST": segment_receiver.url}) as (
        process,
        url,
        banner,
    ):
        assert "serving" in banner
        idle_fds = open_fds(process.pid)
        held = [connect(url) for _ in range(CAP)]
        for sock in held:
            sock.sendall(GET_HEALTH)
            assert read_answer(sock)[0] == 200
        full_fds = open_fds(process.pid)
        assert full_fds <= idle_fds + CAP

        surplus = [connect(url) for _ in range(100)]  # all kept open by the client
        started = time.monotonic()
        answers = [read_to_close(sock, 3) for sock in surplus]
        refused_within = time.monotonic() - started
        assert wait_for_fds(process.pid, full_fds) <= full_fds
        for sock in surplus:
            sock.close()

        assert refused_within < 3
        status, headers, body = parse(answers[0])
        assert status == 503
        assert headers["retry-after"] == "1"
        assert (
            json.loads(body)["error"] == "too many connections (maxConnections 8); retry after 1s"
        )
        assert all(a == answers[0] for a in answers)
        for sock in held:  # the established connections were not starved
            sock.sendall(GET_HEALTH)
            assert read_answer(sock)[0] == 200

        held.pop().close()  # a freed place is taken again
        wait_for_fds(process.pid, full_fds - 1)
        with connect(url) as sock:
            sock.sendall(GET_HEALTH)
            assert read_answer(sock)[0] == 200
        for sock in held:
            sock.close()
        process.terminate()
        _, errors = process.communicate(timeout=20)
    assert process.returncode == 0
    assert not re.search(r" (WARNING|ERROR|CRITICAL) |Traceback", errors), errors


def test_the_open_file_limit_is_raised_to_fit_max_connections_or_a_warning_says_why() -> None:
    script = (
        "import logging, resource, sys\n"
        "logging.basicConfig(level=logging.WARNING)\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (256, int(sys.argv[1])))\n"
        "from flows.http.connection_limits import ensure_open_files\n"
        "ensure_open_files(1024)\n"
        "print(resource.getrlimit(resource.RLIMIT_NOFILE)[0])\n"
    )

    def soft_limit_after(hard: int) -> tuple[int, str]:
        done = subprocess.run(
            [sys.executable, "-c", script, str(hard)],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        return int(done.stdout), done.stderr

    raised, quiet = soft_limit_after(4096)
    assert raised == 1024 + 64
    assert quiet == ""
    kept, warning = soft_limit_after(512)
    assert kept == 512
    assert "maxConnections 1024 needs 1088 open files but the limit is 512" in warning


# -- settings -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "errors"),
    [
        (
            {
                "maxHeaderSize": 100,
                "requestTimeout": "soon",
                "keepAliveTimeout": 0,
                "maxConnections": -1,
            },
            [
                "maxHeaderSize: Input should be greater than or equal to 1024 (got 100)",
                "requestTimeout: Input should be a valid integer, unable to parse string as an"
                ' integer (got "soon")',
                "keepAliveTimeout: Input should be greater than or equal to 1 (got 0)",
                "maxConnections: Input should be greater than or equal to 1 (got -1)",
            ],
        ),
        (
            {"headersTimeout": 40_000},
            ["headersTimeout: must not be longer than requestTimeout (30000 ms) (got 40000)"],
        ),
        (
            {"headersTimeout": 0, "requestTimeout": 3_600_001},
            [
                "requestTimeout: Input should be less than or equal to 3600000 (got 3600001)",
                "headersTimeout: Input should be greater than or equal to 1 (got 0)",
            ],
        ),
    ],
)
def test_bad_limit_settings_are_named_with_the_reason(
    tmp_path: Path, settings: dict[str, Any], errors: list[str]
) -> None:
    data = json.loads(DEMO_FLOW.read_text())
    data["flows"]["default"]["sources"]["http"]["config"]["settings"].update(settings)
    path = tmp_path / "bad.flow.json"
    path.write_text(json.dumps(data))
    result = run_flows("validate", str(path))
    assert result.returncode == 1
    prefix = "flows: error: flows.default.sources.http.config.settings."
    assert result.stderr.splitlines() == [prefix + error for error in errors]


def test_the_openapi_description_gives_every_operation_the_connection_answers() -> None:
    limits = {"maxHeaderSize": 8192, "headersTimeout": 2000, "maxConnections": 50}
    document = openapi_document(HttpSettings.model_validate(limits))
    operations = [op for path in document["paths"].values() for op in path.values()]
    assert len(operations) == 6  # collect (post, get, options), health, ready, metrics
    for operation in operations:
        responses = operation["responses"]
        assert "maxHeaderSize (8192 bytes)" in responses["431"]["description"]
        assert "headersTimeout (2000 ms)" in responses["408"]["description"]
    assert "at most 50 open per server process" in document["info"]["description"]
