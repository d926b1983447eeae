"""One shutdown deadline: draining, flushing and exit all within --shutdown-timeout."""

from __future__ import annotations

import signal
import socket
import threading
import time
from pathlib import Path

import httpx
import orjson

from collector.collector import Collector, build_destination
from destination_segment.receiver import SegmentReceiver
from flows.server.serving import FLUSH_SLACK, flush_by
from tests.cli_helpers import DEMO_FLOW, flows_running
from tests.slow_client import read_to_close
from tests.user_destinations import StubbornDestination

SLACK = 1.5
"""Seconds past the deadline an exit may take (interpreter teardown on a loaded machine)."""


def _stuck_request(url: str) -> socket.socket:
    """A POST whose headers and first bytes arrived and whose body never finishes."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=15)
    sock.sendall(
        b"POST /collect HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b'Content-Length: 1000\r\n\r\n[{"name": "stuck body"'
    )
    return sock


def _await_refused(host: str, port: int, timeout: float = 10.0) -> None:
    """Wait until the server stopped listening (its stop began)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection((host, port), timeout=1).close()
        except ConnectionRefusedError:
            return
        except ConnectionResetError:
            continue  # accepted as the listener closed, then dropped: look again
    raise AssertionError("the server kept listening after the signal")


def _dead_lettered(directory: Path) -> set[str]:
    path = directory / "dead-letter" / "segment.jsonl"
    if not path.exists():
        return set()
    return {orjson.loads(line)["message"]["messageId"] for line in path.read_bytes().splitlines()}


def test_a_hanging_segment_and_a_stuck_client_stop_within_the_timeout(tmp_path: Path) -> None:
    with SegmentReceiver() as receiver:
        receiver.delay(60)  # Segment hangs: every upload is still in flight at the deadline
        env = {"SEGMENT_HOST": receiver.url, "FLOWS_DEAD_LETTER_DIR": str(tmp_path)}
        with flows_running(DEMO_FLOW, "--shutdown-timeout", "5", env=env) as (process, url, _):
            stuck = _stuck_request(url)
            accepted: list[str] = []
            with httpx.Client(timeout=10) as client:
                for index in range(20):
                    batch = [
                        {"name": "product view", "id": f"d{index}-{n}", "user": {"id": "u"}}
                        for n in range(10)
                    ]
                    assert client.post(url + "/collect", json=batch).status_code == 200
                    accepted.extend(event["id"] for event in batch)
            receiver.wait_for_requests(1)  # an upload is hanging
            signalled = time.monotonic()
            process.send_signal(signal.SIGTERM)
            answer = read_to_close(stuck, 15)
            code = process.wait(timeout=30)
            took = time.monotonic() - signalled
            _, stderr = process.communicate(timeout=5)
        assert code == 0, stderr
        assert took <= 5 + SLACK, f"the stop took {took:.1f} s with --shutdown-timeout 5"
        assert answer.startswith(b"HTTP/1.1 503"), answer[:200]
        assert b"shutting down" in answer
        assert b"500" not in answer.split(b"\r\n", 1)[0]
        expected = {f"{event_id}-track" for event_id in accepted}
        kept = _dead_lettered(tmp_path) | receiver.message_ids()
        assert expected <= kept, f"{len(expected - kept)} accepted events are nowhere"
        assert "stuck" not in str(_dead_lettered(tmp_path)), "the cut-off request was not taken"


def test_a_destination_that_ignores_its_timeout_cannot_hold_the_exit() -> None:
    stubborn = build_destination("stubborn", StubbornDestination, {})
    collector = Collector(None, [stubborn])
    collector.start()
    started = time.monotonic()
    reports = flush_by(collector, started + 0.5)
    took = time.monotonic() - started
    assert took <= 0.5 + FLUSH_SLACK + 0.5, took
    assert reports["stubborn"].timed_out
    assert reports["stubborn"].detail == "hung"
    stubborn.destination.release.set()  # type: ignore[attr-defined]


def test_requests_after_the_stop_began_are_answered_503_not_dropped(tmp_path: Path) -> None:
    """A keep-alive client that posts while a stuck request holds the drain gets a 503."""
    with SegmentReceiver() as receiver:
        env = {"SEGMENT_HOST": receiver.url, "FLOWS_DEAD_LETTER_DIR": str(tmp_path)}
        with flows_running(DEMO_FLOW, "--shutdown-timeout", "4", env=env) as (process, url, _):
            stuck = _stuck_request(url)
            statuses: list[int] = []
            stop = threading.Event()
            with httpx.Client(timeout=10) as client:
                assert client.get(url + "/ready").status_code == 200
                process.send_signal(signal.SIGTERM)
                deadline = time.monotonic() + 3
                while time.monotonic() < deadline and not stop.is_set():
                    try:
                        response = client.post(
                            url + "/collect", json={"name": "late event", "user": {"id": "u"}}
                        )
                    except httpx.TransportError:
                        break  # the server closed the connection: the stop is under way
                    statuses.append(response.status_code)
                    if response.status_code == 503:
                        assert response.headers["retry-after"] == "1"
                        break
            read_to_close(stuck, 15)
            assert process.wait(timeout=30) == 0
        late = sum(1 for m in receiver.messages() if m.get("event") == "late event")
        assert late == statuses.count(200), "every late event answered 200 was delivered"
        assert 500 not in statuses


def test_a_second_sigint_does_not_cut_the_stop_short(tmp_path: Path) -> None:
    """Ctrl-C twice (or a worker's terminal and its parent both) still lets requests finish.

    The request's body is sent only after both signals: it is answered 200 and delivered,
    where a forced exit would have cut it off.
    """
    body = orjson.dumps({"name": "product view", "id": "late-body", "user": {"id": "u"}})
    with SegmentReceiver() as receiver:
        env = {"SEGMENT_HOST": receiver.url, "FLOWS_DEAD_LETTER_DIR": str(tmp_path)}
        with flows_running(DEMO_FLOW, "--shutdown-timeout", "4", env=env) as (process, url, _):
            host, port = url.removeprefix("http://").split(":")
            with socket.create_connection((host, int(port)), timeout=15) as sock:
                sock.sendall(
                    b"POST /collect HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                    b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(body)
                )
                assert sock.recv(100).startswith(b"HTTP/1.1 100"), "the app awaits the body"
                process.send_signal(signal.SIGINT)
                _await_refused(host, int(port))  # the first was handled: not merged with the next
                process.send_signal(signal.SIGINT)
                time.sleep(0.5)  # the behaviour under test: a body still on its way in the stop
                sock.sendall(body)
                answer = read_to_close(sock, 15)
            assert process.wait(timeout=30) == 0
        assert answer.startswith(b"HTTP/1.1 200"), answer[:120]
        receiver.wait_for(1)
    assert receiver.message_ids() == {"late-body-track"}
