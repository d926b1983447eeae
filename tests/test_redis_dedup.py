"""Shared identify de-dup (``dedupStore``) on a real redis-server: replicas and workers identify
a user once, again only when the traits change; one round trip per request; a store that is
down makes calls fire (counted), and it recovers without a restart."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from destination_segment.receiver import SegmentReceiver
from tests.cli_helpers import flows_running, run_flows
from tests.redis_helpers import RedisServer, redis_server, write_redis_flow
from tests.worker_helpers import children, serving_pid, wait_until

IDENTIFY = {"map": {"userId": "user.id", "traits": {"map": {"plan": "data.plan"}}}}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RedisServer]:
    with redis_server(tmp_path) as running:
        yield running


def write_flow(tmp_path: Path, **segment: Any) -> Path:
    settings = {
        "writeKey": "wk-redis",
        "host": "$env.SEGMENT_HOST",
        "flushInterval": 50,
        "identify": IDENTIFY,
        "dedupStore": "shared",
        **segment,
    }
    return write_redis_flow(tmp_path, settings)


def login(n: int, plan: str = "pro", user: str = "u-jane") -> dict[str, Any]:
    return {
        "name": "user login",
        "id": f"login-{plan}-{n}",
        "user": {"id": user},
        "data": {"plan": plan},
    }


def post(url: str, body: Any) -> None:
    with httpx.Client(timeout=10) as client:  # a new connection each time
        response = client.post(url + "/collect", json=body)
    assert response.status_code == 200, response.text


def identifies(receiver: SegmentReceiver, user: str = "u-jane") -> list[dict[str, Any]]:
    return [m for m in receiver.messages("identify") if m.get("userId") == user]


def stop(process: Any) -> None:
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=15) == 0


def test_an_unknown_dedup_store_is_a_config_error_naming_the_setting(tmp_path: Path) -> None:
    flow = write_flow(tmp_path, dedupStore="sharde")
    env = {"REDIS_URL": "redis://127.0.0.1:1/0", "SEGMENT_HOST": "http://127.0.0.1:1"}
    result = run_flows("validate", str(flow), env=env)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "destinations.segment.config.settings.dedupStore" in output, output
    assert "'sharde'" in output, output
    assert "defined stores: shared" in output, output


def test_two_replicas_sharing_the_store_identify_once_then_once_per_change(
    server: RedisServer, segment_receiver: SegmentReceiver, tmp_path: Path
) -> None:
    flow = write_flow(tmp_path)
    env = {"SEGMENT_HOST": segment_receiver.url, "REDIS_URL": server.url}
    with (
        flows_running(flow, env=env) as (first, url_a, _),
        flows_running(flow, env=env) as (
            second,
            url_b,
            _,
        ),
    ):
        for n in range(40):
            post(url_a if n % 2 == 0 else url_b, login(n))
        post(url_b, login(0, plan="team"))
        stop(first)
        stop(second)
    tracks = [m for m in segment_receiver.messages("track") if m.get("userId") == "u-jane"]
    assert len(tracks) == 41, "every login is tracked"
    found = identifies(segment_receiver)
    assert [m["traits"] for m in found] == [{"plan": "pro"}, {"plan": "team"}]


def test_one_store_round_trip_per_request_whatever_its_events(
    server: RedisServer, segment_receiver: SegmentReceiver, tmp_path: Path
) -> None:
    flow = write_flow(tmp_path)
    env = {"SEGMENT_HOST": segment_receiver.url, "REDIS_URL": server.url}
    with flows_running(flow, env=env) as (process, url, _):
        post(url, login(0, user="u-warm"))  # connects and loads the script
        server.reset_stats()
        for request in range(3):
            batch = [login(request * 10 + n, user=f"u-{n % 3}") for n in range(6)]
            post(url, {"batch": batch})
        commands = server.commands()
        stop(process)
    assert commands.get("evalsha") == 3, commands
    # Six events each, the same three users: each is identified once, in the first request.
    assert sorted(m["userId"] for m in segment_receiver.messages("identify")) == [
        "u-0",
        "u-1",
        "u-2",
        "u-warm",
    ]
    assert len(segment_receiver.messages("track")) == 19


def test_workers_share_the_store(
    server: RedisServer, segment_receiver: SegmentReceiver, tmp_path: Path
) -> None:
    flow = write_flow(tmp_path)
    env = {"SEGMENT_HOST": segment_receiver.url, "REDIS_URL": server.url}
    with flows_running(flow, "--workers", "2", env=env) as (process, url, banner):
        assert "(2 workers)" in banner
        workers = wait_until(
            lambda: found if len(found := children(process.pid)) == 2 else None, 10, "2 workers"
        )
        served: set[int | None] = set()
        for n in range(41):
            with httpx.Client(timeout=10) as client:
                response = client.post(url + "/collect", json=login(n))
                assert response.status_code == 200, response.text
                served.add(serving_pid(response, workers))
        stop(process)
    assert workers <= served, "the kernel gave every connection to one worker"
    assert len(identifies(segment_receiver)) == 1


def metric(url: str, name: str) -> float:
    text = httpx.get(url + "/metrics").text
    for line in text.splitlines():
        if line.startswith(name):
            return float(line.split()[-1])
    raise AssertionError(f"{name} not in /metrics")


def test_a_store_that_is_down_fires_counts_and_recovers_without_a_restart(
    server: RedisServer, segment_receiver: SegmentReceiver, tmp_path: Path
) -> None:
    flow = write_flow(tmp_path)
    env = {"SEGMENT_HOST": segment_receiver.url, "REDIS_URL": server.url}
    errors = 'flows_destination_messages_total{destination="segment",outcome="dedup_store_errors"}'
    with flows_running(flow, env=env) as (process, url, _):
        post(url, login(0))
        post(url, login(1))
        assert metric(url, errors) == 0
        server.stop()
        for n in range(2, 5):
            post(url, login(n))  # Redis refuses connections: fire rather than suppress
        assert metric(url, errors) == 3
        server.start()  # empty: no persistence
        post(url, login(5))  # first sight in the new store: fires
        post(url, login(6))
        assert metric(url, errors) == 3
        stop(process)
        log = process.stderr.read()
    assert len(identifies(segment_receiver)) == 1 + 3 + 1
    assert len(log.split("could not answer")) == 2, "warned more than once within 30 s:\n" + log
    assert "ConnectionError" in log
