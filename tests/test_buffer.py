"""The durable buffer (``config.settings.buffer``) on a real redis-server with real
``flows run`` processes: what is answered 200 reaches Segment through a SIGKILL, a replica
killed with entries pending, and Redis stopped mid-run; 503 at maxLength or without Redis."""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from destination_segment.calls import message_id
from destination_segment.receiver import SegmentReceiver
from tests.cli_helpers import flows_running, run_flows
from tests.redis_helpers import RedisServer, redis_server, write_redis_flow
from tests.worker_helpers import wait_until


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RedisServer]:
    with redis_server(tmp_path) as running:
        yield running


def write_flow(tmp_path: Path, segment: dict[str, Any] | None = None, **buffer: Any) -> Path:
    settings = {"writeKey": "wk-buffer", "host": "$env.SEGMENT_HOST", "flushInterval": 50}
    config = {
        "platform": "server",
        "settings": {"buffer": {"store": "shared", "claimIdle": 1000, "block": 200, **buffer}},
    }
    return write_redis_flow(tmp_path, {**settings, **(segment or {})}, config)


def event(n: int) -> dict[str, Any]:
    return {"name": "product view", "id": f"ev-{n}", "user": {"id": f"u-{n % 7}"}}


def expected(ids: list[int]) -> set[str]:
    return {message_id(f"ev-{n}", "track") for n in ids}


def post(client: httpx.Client, url: str, body: Any) -> httpx.Response:
    return client.post(url + "/collect", json=body)


def delivered(receiver: SegmentReceiver, wanted: set[str], timeout: float) -> None:
    """Wait until every wanted messageId arrived (Segment keeps one per id)."""
    wait_until(
        lambda: True if wanted <= receiver.message_ids() else None,
        timeout,
        f"{len(wanted)} messages at the receiver",
    )


def pending(server: RedisServer) -> int:
    with server.client() as client:
        groups = client.xinfo_groups("flows:buffer:default")
    return sum(int(group["pending"]) for group in groups)


def test_config_errors_name_the_buffer_setting(tmp_path: Path) -> None:
    env = {"REDIS_URL": "redis://127.0.0.1:1/0", "SEGMENT_HOST": "http://127.0.0.1:1"}
    result = run_flows("validate", str(write_flow(tmp_path, store="shraed")), env=env)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "flows.default.config.settings.buffer.store" in output, output
    assert 'did you mean "shared"' in output, output
    result = run_flows("validate", str(write_flow(tmp_path, maxLength=0)), env=env)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "flows.default.config.settings.buffer.maxLength" in output, output


def test_sigkill_under_load_then_a_restart_delivers_everything_answered_200(
    server: RedisServer, segment_receiver: SegmentReceiver, tmp_path: Path
) -> None:
    flow = write_flow(tmp_path)
    env = {"SEGMENT_HOST": segment_receiver.url, "REDIS_URL": server.url}
    answered: list[int] = []
    segment_receiver.delay(0.3)  # uploads in flight when the kill comes
    with flows_running(flow, env=env) as (process, url, _):
        stop = threading.Event()

        def load() -> None:
            with httpx.Client(timeout=5) as client:
                for n in range(100_000):
                    if stop.is_set():
                        return
                    batch = [event(n * 10 + k) for k in range(10)]
                    try:
                        response = post(client, url, {"batch": batch})
                    except httpx.HTTPError:
                        return
                    if response.status_code == 200:
                        answered.extend(n * 10 + k for k in range(10))

        sender = threading.Thread(target=load)
        sender.start()
        wait_until(lambda: True if len(answered) >= 300 else None, 20, "300 events answered")
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        stop.set()
        sender.join(10)
    assert pending(server) > 0 or len(segment_receiver.message_ids()) < len(answered)
    segment_receiver.reset_faults()
    started = time.monotonic()
    with flows_running(flow, env=env) as (process, _url, _):
        delivered(segment_receiver, expected(answered), 30)
        assert time.monotonic() - started < 30
        process.send_signal(signal.SIGTERM)
        assert process.wait(15) == 0


def test_a_replica_killed_with_pending_entries_the_other_delivers_them(
    server: RedisServer, segment_receiver: SegmentReceiver, tmp_path: Path
) -> None:
    flow = write_flow(tmp_path)
    env = {"SEGMENT_HOST": segment_receiver.url, "REDIS_URL": server.url}
    segment_receiver.fail(503)  # replica A reads the entries, Segment does not take them
    with flows_running(flow, env=env) as (first, url_a, _):
        with httpx.Client(timeout=5) as client:  # one request: the reader takes it at once
            response = post(client, url_a, {"batch": [event(n) for n in range(20)]})
            assert response.status_code == 200, response.text
        wait_until(lambda: True if pending(server) == 20 else None, 10, "20 entries pending")
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    assert segment_receiver.message_ids() == set()
    segment_receiver.reset_faults()
    with flows_running(flow, env=env) as (second, url_b, _):
        delivered(segment_receiver, expected(list(range(20))), 30)
        wait_until(lambda: True if pending(server) == 0 else None, 10, "nothing pending")
        text = httpx.get(url_b + "/metrics").text
        assert "flows_buffer_claimed_total 20" in text, text
        second.send_signal(signal.SIGTERM)
        assert second.wait(15) == 0
    with server.client() as client:
        assert client.xlen("flows:buffer:default") <= 1, "acknowledged entries are trimmed"


def test_redis_stopped_503s_then_recovers_without_a_restart_nothing_lost(
    segment_receiver: SegmentReceiver, tmp_path: Path
) -> None:
    server = RedisServer(tmp_path, appendonly=True)
    server.start()
    try:
        flow = write_flow(tmp_path)
        env = {"SEGMENT_HOST": segment_receiver.url, "REDIS_URL": server.url}
        segment_receiver.delay(0.5, count=1)  # the first entries still pending at the stop
        with flows_running(flow, env=env) as (process, url, _), httpx.Client(timeout=5) as client:
            assert post(client, url, {"batch": [event(n) for n in range(10)]}).status_code == 200
            server.stop()
            for n in range(10, 13):
                response = post(client, url, event(n))
                assert response.status_code == 503, response.text
                assert response.headers["retry-after"]
                assert "unreachable" in response.json()["error"]
            server.start()
            answered = list(range(10))
            for n in range(13, 20):
                assert post(client, url, event(n)).status_code == 200
                answered.append(n)
            delivered(segment_receiver, expected(answered), 30)
            assert not expected([10, 11, 12]) & segment_receiver.message_ids()
            text = client.get(url + "/metrics").text
            assert "flows_buffer_unreachable_total 3" in text, text
            process.send_signal(signal.SIGTERM)
            assert process.wait(15) == 0
    finally:
        server.stop()


def test_the_buffer_at_max_length_answers_503_with_retry_after(
    server: RedisServer, segment_receiver: SegmentReceiver, tmp_path: Path
) -> None:
    flow = write_flow(tmp_path, maxLength=5)
    env = {"SEGMENT_HOST": segment_receiver.url, "REDIS_URL": server.url}
    segment_receiver.fail(503)  # nothing is acknowledged, so nothing is trimmed
    with flows_running(flow, env=env) as (_process, url, _), httpx.Client(timeout=5) as client:
        assert post(client, url, {"batch": [event(n) for n in range(4)]}).status_code == 200
        refused = post(client, url, {"batch": [event(n) for n in range(4, 6)]})
        assert refused.status_code == 503, refused.text
        assert refused.headers["retry-after"]
        assert "maxLength" in refused.json()["error"]
        assert post(client, url, event(4)).status_code == 200  # one more still fits
        with server.client() as redis_client:
            assert redis_client.xlen("flows:buffer:default") == 5
        assert "flows_buffer_full_total 1" in client.get(url + "/metrics").text


def test_entries_beyond_the_destination_queue_go_in_parts_none_dropped(
    server: RedisServer, segment_receiver: SegmentReceiver, tmp_path: Path
) -> None:
    flow = write_flow(tmp_path, {"maxQueueSize": 7})
    env = {"SEGMENT_HOST": segment_receiver.url, "REDIS_URL": server.url}
    with flows_running(flow, env=env) as (process, url, _), httpx.Client(timeout=5) as client:
        response = post(client, url, {"batch": [event(n) for n in range(40)]})
        assert response.status_code == 200, response.text
        delivered(segment_receiver, expected(list(range(40))), 30)
        text = client.get(url + "/metrics").text
        messages = 'flows_destination_messages_total{destination="segment",outcome='
        assert messages + '"dropped_queue_full"} 0.0' in text, text
        assert messages + '"delivered"} 40.0' in text, text
        assert "flows_buffer_acked_total 40" in text, text
        process.send_signal(signal.SIGTERM)
        assert process.wait(15) == 0


def test_workers_each_read_the_buffer_and_deliver_everything(
    server: RedisServer, segment_receiver: SegmentReceiver, tmp_path: Path
) -> None:
    flow = write_flow(tmp_path)
    env = {"SEGMENT_HOST": segment_receiver.url, "REDIS_URL": server.url}
    with flows_running(flow, "--workers", "2", env=env) as (process, url, banner):
        assert "(2 workers)" in banner
        for n in range(20):
            with httpx.Client(timeout=5) as client:  # a new connection each: both workers
                assert post(client, url, [event(n * 2), event(n * 2 + 1)]).status_code == 200
        delivered(segment_receiver, expected(list(range(40))), 30)
        with server.client() as client:
            consumers = client.xinfo_consumers("flows:buffer:default", "segment")
        assert len(consumers) == 2, consumers

        def summed() -> str | None:  # any worker answers for both, at most a second behind
            text = httpx.get(url + "/metrics", timeout=5).text
            wanted = ("flows_buffer_appended_total 40.0", "flows_buffer_acked_total 40.0")
            return text if all(line in text for line in wanted) else None

        text = wait_until(summed, 10, "the buffer counters summed over both workers")
        assert "flows_buffer_length " in text, "the stream's own gauges, read from Redis"
        process.send_signal(signal.SIGTERM)
        assert process.wait(15) == 0


def test_a_live_reader_slow_to_deliver_keeps_its_entries_from_the_other_replica(
    server: RedisServer, segment_receiver: SegmentReceiver, tmp_path: Path
) -> None:
    flow = write_flow(tmp_path)  # claimIdle 1 s; Segment's retries below take longer
    env = {"SEGMENT_HOST": segment_receiver.url, "REDIS_URL": server.url}
    segment_receiver.fail(503, count=4)
    with (
        flows_running(flow, env=env) as (first, url_a, _),
        flows_running(flow, env=env) as (second, url_b, _),
        httpx.Client(timeout=5) as client,
    ):
        started = time.monotonic()
        assert post(client, url_a, {"batch": [event(n) for n in range(10)]}).status_code == 200
        delivered(segment_receiver, expected(list(range(10))), 30)
        assert time.monotonic() - started > 2, "the retries were to outlast claimIdle"
        assert segment_receiver.stats["messages"] == 10, "claimed and sent twice"
        for url in (url_a, url_b):
            assert "flows_buffer_claimed_total 0" in client.get(url + "/metrics").text
        for process in (first, second):
            process.send_signal(signal.SIGTERM)
            assert process.wait(15) == 0


def test_two_destinations_each_read_the_buffer_the_stream_trims_after_both(
    server: RedisServer, segment_receiver: SegmentReceiver, tmp_path: Path
) -> None:
    from tests.http_receiver import Receiver

    flow_path = write_flow(tmp_path)
    flow = json.loads(flow_path.read_text())
    flow["flows"]["default"]["destinations"]["api"] = {
        "package": "api",  # a batch waits 60 s to fill: only the reader's flush sends it sooner
        "config": {"settings": {"url": "$env.API_URL", "batch": {"size": 1000, "wait": 60_000}}},
    }
    flow_path.write_text(json.dumps(flow))
    with Receiver() as api:
        env = {"SEGMENT_HOST": segment_receiver.url, "REDIS_URL": server.url, "API_URL": api.url}
        with flows_running(flow_path, env=env) as (process, url, _):
            with httpx.Client(timeout=5) as client:
                response = post(client, url, {"batch": [event(n) for n in range(30)]})
                assert response.status_code == 200, response.text
            started = time.monotonic()
            delivered(segment_receiver, expected(list(range(30))), 30)
            wait_until(
                lambda: sum(len(json.loads(r.body)) for r in api.requests) >= 30 or None,
                10,
                "30 events at the api endpoint",
            )
            assert time.monotonic() - started < 10
            wait_until(lambda: True if pending(server) == 0 else None, 10, "nothing pending")
            with server.client() as redis_client:
                groups = {g["name"] for g in redis_client.xinfo_groups("flows:buffer:default")}
                length = redis_client.xlen("flows:buffer:default")
            assert groups == {"segment", "api"}
            assert length <= 1, "acknowledged by both: trimmed"
            process.send_signal(signal.SIGTERM)
            assert process.wait(15) == 0
        ids = sorted(item["id"] for r in api.requests for item in json.loads(r.body))
    assert ids == sorted(f"ev-{n}" for n in range(30))
