"""Connection limits of the http source, over real sockets against the real server."""

from __future__ import annotations

import json
import logging
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from destination_segment.receiver import SegmentReceiver
from tests.cli_helpers import DEMO_FLOW, run_flows
from tests.http_helpers import Served, serving


def event(event_id: str) -> dict[str, Any]:
    return {"name": "product view", "id": event_id, "user": {"id": "u1"}}


def connect(url: str) -> socket.socket:
    parts = urlsplit(url)
    assert parts.hostname == "127.0.0.1"
    return socket.create_connection((parts.hostname, parts.port or 80), timeout=5)


def post_head(size: int, body: bytes) -> bytes:
    """A POST /collect request line and headers of exactly ``size`` bytes (blank line included)."""
    start = (
        "POST /collect HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nX-Pad: "
    ).encode()
    return start + b"a" * (size - len(start) - 4) + b"\r\n\r\n"


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


def test_a_client_gone_mid_body_ends_its_request_quietly(
    segment_receiver: SegmentReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    body = json.dumps(event("abandoned")).encode()
    with serving(segment_receiver.url) as served:
        with connect(served.url) as sock:
            sock.sendall(post_head(300, body) + body[:10])
            wait_until(lambda: served.server.server_state.tasks, "reading the body")
        requests_done(served)
        assert served.source.stats.requests == {}
        assert served.source.stats.received == 0
    assert warnings_logged(caplog) == []


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
