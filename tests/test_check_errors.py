"""``flows validate --check`` says why a connection failed in words, over loopback only:
a closed port, a name under ``.invalid`` (RFC 2606: never resolves), a socket that accepts
and never answers, a self-signed certificate, a receiver refusing the write key."""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from collector.collector import build_destination
from collector.destination import ConnectionReport
from collector.destinations.api import ApiDestination
from destination_segment.receiver import SegmentReceiver
from tests.cli_helpers import DEMO_FLOW, free_port, run_flows
from tests.segment_helpers import WRITE_KEY, segment_flow


def segment_check(host: str, timeout_ms: int = 2000) -> ConnectionReport:
    _, active = segment_flow(host, {"httpRequestTimeout": timeout_ms})
    report = active.destination.check_connection()
    assert WRITE_KEY not in report.detail
    return report


def api_check(url: str, timeout_ms: int = 2000) -> ConnectionReport:
    settings: dict[str, Any] = {"url": url, "timeout": timeout_ms}
    return build_destination(
        "api", ApiDestination, {"settings": settings}
    ).destination.check_connection()


@contextmanager
def silent_listener() -> Iterator[int]:
    """A port whose connections are accepted (by the kernel's backlog) and never answered."""
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen(8)
        yield listening.getsockname()[1]


@contextmanager
def self_signed_tls(tmp_path: Path) -> Iterator[int]:
    """A TLS server on loopback with a self-signed certificate; it handshakes and closes."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is needed to make a self-signed certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
         "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    listening = socket.socket()
    listening.bind(("127.0.0.1", 0))
    listening.listen(8)
    listening.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listening.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(5)
            try:
                with context.wrap_socket(conn, server_side=True):
                    pass
            except OSError:
                pass  # the client gave up on our certificate: what the test wants
            finally:
                conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listening.getsockname()[1]
    finally:
        stop.set()
        thread.join(5)
        listening.close()


def test_a_closed_port_is_connection_refused() -> None:
    port = free_port()
    assert segment_check(f"http://127.0.0.1:{port}").detail == (
        f"cannot connect to 127.0.0.1:{port} (connection refused)"
    )
    assert api_check(f"http://127.0.0.1:{port}/x").detail == (
        f"cannot connect to 127.0.0.1:{port} (connection refused)"
    )


def test_a_name_that_does_not_resolve() -> None:
    assert segment_check("https://api.segment.invalid").detail == (
        "cannot connect to api.segment.invalid:443 (name not resolved)"
    )
    assert api_check("http://hooks.example.invalid:8080/x").detail == (
        "cannot connect to hooks.example.invalid:8080 (name not resolved)"
    )


def test_a_host_that_never_answers_times_out_with_the_timeout_named() -> None:
    with silent_listener() as port:
        assert segment_check(f"http://127.0.0.1:{port}", 300).detail == (
            f"no answer from 127.0.0.1:{port} (timed out after 0.3 s)"
        )
        assert api_check(f"https://127.0.0.1:{port}/x", 300).detail == (
            f"no answer from 127.0.0.1:{port} (timed out after 0.3 s)"
        )


def test_a_self_signed_certificate_fails_verification(tmp_path: Path) -> None:
    with self_signed_tls(tmp_path) as port:
        segment = segment_check(f"https://127.0.0.1:{port}").detail
        api = api_check(f"https://127.0.0.1:{port}/x").detail
    want = f"cannot connect to 127.0.0.1:{port} (TLS: certificate verify failed: "
    assert segment.startswith(want), segment
    assert api.startswith(want), api
    assert "self" in api.removeprefix(want), api  # "self-signed certificate" (OpenSSL's words)


def test_a_refused_write_key_says_check_the_write_key() -> None:
    with SegmentReceiver("127.0.0.1", 0, "another-key") as receiver:
        report = segment_check(receiver.url)
        where = receiver.url.removeprefix("http://")
    assert not report.ok
    assert report.detail == f"{where} answered 401: check the write key"


def test_validate_check_prints_the_reason_per_destination() -> None:
    port = free_port()
    result = run_flows(
        "validate", str(DEMO_FLOW), "--check", env={"SEGMENT_HOST": f"http://127.0.0.1:{port}"}
    )
    assert result.returncode == 1
    assert f"segment: FAILED: cannot connect to 127.0.0.1:{port} (connection refused)\n" in (
        result.stdout
    )
    assert "Max retries" not in result.stdout
    assert result.stderr == "flows: error: 1 destination connection check(s) failed\n"


def test_tls_to_a_plain_http_server_names_the_tls_reason() -> None:
    with SegmentReceiver() as receiver:
        port = receiver.url.rsplit(":", 1)[1]
        report = api_check(f"https://127.0.0.1:{port}/x")
    assert report.detail.startswith(f"cannot connect to 127.0.0.1:{port} (TLS: "), report.detail
    assert "_" not in report.detail, "OpenSSL's reason code is put in words"
