"""The local Segment receiver, driven by the real segment-analytics-python SDK over HTTP."""

from __future__ import annotations

import gzip
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from destination_segment.receiver import (
    MAX_BATCH_BYTES,
    MAX_MESSAGE_BYTES,
    SegmentReceiver,
)
from destination_segment.sdk import Client

ROOT = Path(__file__).resolve().parent.parent
SECRET_KEY = "wk-receiver-secret-4c1d2e"

MakeClient = Callable[..., Client]


@pytest.fixture
def make_client(segment_receiver: SegmentReceiver) -> Iterator[MakeClient]:
    """Real SDK clients aimed at the receiver, flushing fast; joined after the test."""
    clients: list[Client] = []

    def make(**options: Any) -> Client:
        settings: dict[str, Any] = {
            "write_key": "k",
            "host": segment_receiver.url,
            "upload_interval": 0.05,
            **options,
        }
        client = Client(**settings)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.join()


def post(
    url: str,
    body: bytes | dict[str, Any],
    key: str | None = "k",
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """A raw POST, as a client other than the SDK would send it."""
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(
        url,
        content=content,
        headers={"Content-Type": "application/json", **(headers or {})},
        auth=(key, "") if key is not None else None,
        timeout=10,
    )


def track(message_id: str, **fields: Any) -> dict[str, Any]:
    return {"type": "track", "event": "Tested", "userId": "u1", "messageId": message_id, **fields}


def padded(message_id: str, size: int) -> dict[str, Any]:
    """A track message whose compact JSON encoding is exactly ``size`` bytes."""
    message = track(message_id, properties={"pad": ""})
    message["properties"]["pad"] = "a" * (size - len(orjson.dumps(message)))
    assert len(orjson.dumps(message)) == size
    return message


# -- the SDK end to end ------------------------------------------------------------


def test_sdk_calls_arrive_with_their_fields(
    segment_receiver: SegmentReceiver, make_client: MakeClient
) -> None:
    client = make_client()
    client.track(user_id="u1", event="Order Completed", properties={"total": 9.5})
    client.identify(user_id="u1", traits={"plan": "pro"})
    client.page(user_id="u1", name="Home")
    client.group(user_id="u1", group_id="g1")
    client.screen(user_id="u1", name="Main")
    client.alias(previous_id="anon-1", user_id="u1")
    client.flush()

    received = segment_receiver.wait_for(6)
    assert sorted(m["type"] for m in received) == sorted(
        ["track", "identify", "page", "group", "screen", "alias"]
    )
    tracked = segment_receiver.wait_for(1, type="track")
    assert [m["event"] for m in tracked] == ["Order Completed"]
    assert tracked[0]["properties"] == {"total": 9.5}
    assert tracked[0]["receivedAt"].endswith("Z")
    assert tracked[0]["sentAt"], "the batch's sentAt is copied onto each message"
    assert "writeKey" not in tracked[0]
    assert segment_receiver.messages(type="identify")[0]["traits"] == {"plan": "pro"}
    assert segment_receiver.message_ids() == {m["messageId"] for m in received}
    assert segment_receiver.stats["messages"] == 6
    assert segment_receiver.stats["distinct_message_ids"] == 6


def test_messages_returns_a_copy(segment_receiver: SegmentReceiver) -> None:
    assert post(segment_receiver.url + "/v1/batch", {"batch": [track("m1")]}).status_code == 200
    segment_receiver.messages()[0]["event"] = "changed"
    assert segment_receiver.messages()[0]["event"] == "Tested"


def test_gzip_bodies_from_the_sdk(
    segment_receiver: SegmentReceiver, make_client: MakeClient
) -> None:
    client = make_client(gzip=True)
    for index in range(20):
        client.track(user_id="u1", event=f"e{index}")
    client.flush()
    assert len(segment_receiver.wait_for(20)) == 20
    assert segment_receiver.stats["by_status"] == {200: segment_receiver.stats["requests"]}


def test_a_resent_message_id_counts_once(
    segment_receiver: SegmentReceiver, make_client: MakeClient
) -> None:
    client = make_client()
    for _ in range(3):
        client.track(user_id="u1", event="Same", message_id="fixed-id")
    client.flush()
    segment_receiver.wait_for(3)
    assert segment_receiver.message_ids() == {"fixed-id"}
    assert segment_receiver.stats["messages"] == 3
    assert segment_receiver.stats["distinct_message_ids"] == 1


def test_nan_from_the_sdk_is_invalid_json(
    segment_receiver: SegmentReceiver, make_client: MakeClient
) -> None:
    """json.dumps writes NaN, which is not JSON: Segment answers 400 and the SDK drops it."""
    errors: list[Exception] = []
    client = make_client(on_error=lambda error, batch: errors.append(error))
    client.track(user_id="u1", event="Broken", properties={"ratio": float("nan")})
    client.flush()
    assert [getattr(error, "status", None) for error in errors] == [400]
    assert getattr(errors[0], "code", None) == "invalid_request"
    assert segment_receiver.messages() == []


# -- authentication ----------------------------------------------------------------


def test_write_key_is_checked_when_configured() -> None:
    with SegmentReceiver(write_key=SECRET_KEY) as receiver:
        url = receiver.url + "/v1/batch"
        body = {"batch": [track("m1")]}
        wrong = post(url, body, key="not-the-key")
        assert wrong.status_code == 401
        assert wrong.json()["code"] == "unauthorized"
        assert "not-the-key" not in wrong.text
        assert SECRET_KEY not in wrong.text
        missing = post(url, body, key=None)
        assert missing.status_code == 401
        assert missing.json()["code"] == "unauthorized"
        assert post(url, body, key=SECRET_KEY).status_code == 200
        assert receiver.message_ids() == {"m1"}
        assert receiver.stats["by_status"] == {401: 2, 200: 1}
        assert SECRET_KEY not in repr(receiver)


def test_without_a_configured_key_any_non_empty_key_passes(
    segment_receiver: SegmentReceiver,
) -> None:
    url = segment_receiver.url + "/v1/batch"
    assert post(url, {"batch": [track("a")]}, key="anything").status_code == 200
    assert post(url, {"batch": [track("b")]}, key="").status_code == 401
    assert post(url, {"batch": [track("c")]}, key=None).status_code == 401
    bearer = post(url, {"batch": [track("d")]}, key=None, headers={"Authorization": "Bearer x"})
    assert bearer.status_code == 401
    assert segment_receiver.message_ids() == {"a"}


def test_wrong_key_from_the_sdk_is_a_401(make_client: MakeClient) -> None:
    with SegmentReceiver(write_key=SECRET_KEY) as receiver:
        errors: list[Exception] = []
        client = make_client(host=receiver.url, on_error=lambda error, batch: errors.append(error))
        client.track(user_id="u1", event="Nope")
        client.flush()
        assert [getattr(error, "status", None) for error in errors] == [401]
        assert receiver.messages() == []


# -- the single-call endpoints and validation --------------------------------------


def test_single_call_endpoints_take_their_type_from_the_path(
    segment_receiver: SegmentReceiver,
) -> None:
    url = segment_receiver.url
    message = {"userId": "u1", "traits": {"a": 1}, "messageId": "i1", "writeKey": "k"}
    assert post(url + "/v1/identify", message).json() == {"success": True}
    assert post(url + "/v1/track", {"userId": "u1", "event": "E", "messageId": "t1"}).is_success
    identified, tracked = segment_receiver.wait_for(2)
    assert identified["type"] == "identify"
    assert "writeKey" not in identified, "a key in the body is a credential, not data"
    assert tracked["type"] == "track"
    assert post(url + "/v1/unknown", message).status_code == 404
    assert httpx.get(url + "/v1/batch").status_code == 405


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "JSON object"),
        (b'{"batch": {}}', '"batch" array'),
        (b'{"batch": [1]}', "batch[0]"),
    ],
)
def test_invalid_bodies_are_400(
    segment_receiver: SegmentReceiver, body: bytes, fragment: str
) -> None:
    response = post(segment_receiver.url + "/v1/batch", body)
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_request"
    assert fragment in response.json()["message"]
    assert segment_receiver.messages() == []


def test_message_size_limit_is_32_kb(segment_receiver: SegmentReceiver) -> None:
    url = segment_receiver.url
    assert post(url + "/v1/batch", {"batch": [padded("fits", MAX_MESSAGE_BYTES)]}).is_success
    too_big = post(url + "/v1/batch", {"batch": [padded("big", MAX_MESSAGE_BYTES + 1)]})
    assert too_big.status_code == 400
    assert "32768" in too_big.json()["message"]
    single = post(url + "/v1/track", padded("single", MAX_MESSAGE_BYTES + 1))
    assert single.status_code == 400
    assert segment_receiver.message_ids() == {"fits"}


def test_batch_size_limit_is_500_kb(segment_receiver: SegmentReceiver) -> None:
    url = segment_receiver.url + "/v1/batch"
    body = orjson.dumps({"batch": [padded(f"m{index}", 30000) for index in range(17)]})
    exact = body + b" " * (MAX_BATCH_BYTES - len(body))  # trailing whitespace is valid JSON
    assert post(url, exact).status_code == 200
    over = post(url, exact + b" ")
    assert over.status_code == 400
    assert "512000" in over.json()["message"]
    assert segment_receiver.stats["messages"] == 17


def test_gzip_limits(segment_receiver: SegmentReceiver) -> None:
    url = segment_receiver.url + "/v1/batch"
    gz = {"Content-Encoding": "gzip"}
    small = gzip.compress(orjson.dumps({"batch": [track("z1")]}))
    assert post(url, small, headers=gz).status_code == 200
    body = orjson.dumps({"batch": [padded(f"m{index}", 30000) for index in range(18)]})
    assert post(url, gzip.compress(body), headers=gz).status_code == 400, "500 KB is after gzip"
    bomb = gzip.compress(b" " * (6 * 1024 * 1024))
    assert len(bomb) < 10_000
    assert post(url, bomb, headers=gz).status_code == 413
    assert post(url, b"\x1f\x8bnot gzip", headers=gz).status_code == 400
    assert post(url, small, headers={"Content-Encoding": "br"}).status_code == 415
    assert segment_receiver.message_ids() == {"z1"}


# -- faults --------------------------------------------------------------------------


def test_server_errors_are_retried_and_delivered_once(
    segment_receiver: SegmentReceiver, make_client: MakeClient
) -> None:
    segment_receiver.fail(500, count=2)
    client = make_client()
    client.track(user_id="u1", event="Retried", message_id="r1")
    client.flush()
    segment_receiver.wait_for(1)
    assert segment_receiver.message_ids() == {"r1"}
    assert segment_receiver.stats == {
        "requests": 3,
        "by_status": {500: 2, 200: 1},
        "messages": 1,
        "distinct_message_ids": 1,
    }


def test_rate_limit_with_retry_after_is_honoured(
    segment_receiver: SegmentReceiver, make_client: MakeClient
) -> None:
    segment_receiver.fail(429, count=1, retry_after=1)
    client = make_client()
    client.track(user_id="u1", event="Limited", message_id="l1")
    started = time.monotonic()
    client.flush()
    elapsed = time.monotonic() - started
    assert elapsed >= 0.9, "the SDK waits out Retry-After before the next attempt"
    assert segment_receiver.message_ids() == {"l1"}
    assert segment_receiver.stats["by_status"] == {429: 1, 200: 1}


def test_fail_without_count_lasts_until_reset(segment_receiver: SegmentReceiver) -> None:
    url = segment_receiver.url + "/v1/batch"
    segment_receiver.fail(503)
    assert [post(url, {"batch": [track(f"x{i}")]}).status_code for i in range(3)] == [503] * 3
    segment_receiver.reset_faults()
    assert post(url, {"batch": [track("ok")]}).status_code == 200
    assert segment_receiver.message_ids() == {"ok"}, "failed requests record nothing"
    with pytest.raises(ValueError, match="300 to 599"):
        segment_receiver.fail(200)


def test_stop_returns_promptly_while_a_request_hangs(segment_receiver: SegmentReceiver) -> None:
    segment_receiver.delay(30)
    outcome: list[object] = []

    def send() -> None:
        try:
            outcome.append(post(segment_receiver.url + "/v1/batch", {"batch": [track("h")]}))
        except httpx.HTTPError as error:
            outcome.append(error)

    sender = threading.Thread(target=send)
    sender.start()
    segment_receiver.wait_for_requests(1)
    started = time.monotonic()
    segment_receiver.stop()
    assert time.monotonic() - started < 2.0
    sender.join(5)
    assert not sender.is_alive(), "the held connection is cut, not left hanging"
    assert outcome, "the client saw the connection end"
    assert not isinstance(outcome[0], httpx.Response), "a stopped receiver answers nothing"
    assert segment_receiver.messages() == []


def test_delay_with_a_count_holds_only_that_many(segment_receiver: SegmentReceiver) -> None:
    segment_receiver.delay(0.2, count=1)
    url = segment_receiver.url + "/v1/batch"
    started = time.monotonic()
    assert post(url, {"batch": [track("d1")]}).status_code == 200
    assert time.monotonic() - started >= 0.2
    assert segment_receiver.faults["delay"] is None
    assert post(url, {"batch": [track("d2")]}).status_code == 200


def test_wait_for_times_out_naming_what_arrived(segment_receiver: SegmentReceiver) -> None:
    post(segment_receiver.url + "/v1/batch", {"batch": [track("only")]})
    with pytest.raises(TimeoutError, match=r"for 2 message.*but 1 arrived"):
        segment_receiver.wait_for(2, timeout=0.05)
    with pytest.raises(TimeoutError, match=r"for 1 page message.*but 0 arrived"):
        segment_receiver.wait_for(1, timeout=0.05, type="page")


# -- the HTTP read-back and control surface -----------------------------------------


def test_read_back_over_http(segment_receiver: SegmentReceiver) -> None:
    url = segment_receiver.url
    batch = [track("t1"), {"type": "identify", "userId": "u1", "messageId": "i1"}]
    assert post(url + "/v1/batch", {"batch": batch}).status_code == 200
    everything = httpx.get(url + "/messages").json()
    assert everything["count"] == 2
    assert [m["messageId"] for m in everything["messages"]] == ["t1", "i1"]
    only_tracks = httpx.get(url + "/messages", params={"type": "track"}).json()
    assert [m["messageId"] for m in only_tracks["messages"]] == ["t1"]
    assert httpx.get(url + "/health").status_code == 200
    stats = httpx.get(url + "/stats").json()
    assert stats["by_status"] == {"200": 1}
    assert httpx.delete(url + "/messages").json() == {"success": True}
    assert httpx.get(url + "/messages").json() == {"count": 0, "messages": []}
    assert segment_receiver.stats["requests"] == 0
    missing = httpx.get(url + "/nothing")
    assert missing.status_code == 404
    assert missing.json()["code"] == "not_found"


def test_faults_over_http(segment_receiver: SegmentReceiver) -> None:
    url = segment_receiver.url
    armed = httpx.post(url + "/_control", json={"status": 429, "count": 1, "retryAfter": 1.2})
    assert armed.status_code == 200
    assert armed.json()["faults"]["fail"] == {
        "status": 429,
        "remaining": 1,
        "retryAfter": 1.2,
        "rate": None,
    }
    limited = post(url + "/v1/batch", {"batch": [track("a")]})
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "2", "whole seconds, rounded up"
    assert limited.json()["code"] == "too_many_requests"
    assert post(url + "/v1/batch", {"batch": [track("b")]}).status_code == 200

    assert httpx.post(url + "/_control", json={"status": 500}).status_code == 200
    assert post(url + "/v1/batch", {"batch": [track("c")]}).status_code == 500
    assert httpx.get(url + "/_control").json()["faults"]["fail"]["remaining"] is None
    assert httpx.delete(url + "/_control").json() == {"success": True}
    assert post(url + "/v1/batch", {"batch": [track("d")]}).status_code == 200
    assert segment_receiver.message_ids() == {"b", "d"}

    for bad in ({"status": "500"}, {"retry_after": 1, "status": 500}, {"count": 1}, [1]):
        rejected = httpx.post(url + "/_control", json=bad)
        assert rejected.status_code == 400
        assert rejected.json()["code"] == "invalid_request"
    assert segment_receiver.faults == {"fail": None, "delay": None}


# -- recording and concurrency ------------------------------------------------------


def test_record_path_appends_json_lines(tmp_path: Path, make_client: MakeClient) -> None:
    record = tmp_path / "received.jsonl"
    for run in range(2):
        with SegmentReceiver(record_path=record) as receiver:
            client = make_client(host=receiver.url)
            for index in range(3):
                client.track(user_id="u1", event="Recorded", message_id=f"run{run}-{index}")
            client.flush()
            receiver.wait_for(3)
    lines = record.read_text(encoding="utf-8").splitlines()
    recorded = [json.loads(line) for line in lines]
    assert [m["messageId"] for m in recorded] == [f"run{r}-{i}" for r in range(2) for i in range(3)]
    assert all(m["receivedAt"] and m["type"] == "track" for m in recorded)


def test_concurrent_senders_are_all_recorded(segment_receiver: SegmentReceiver) -> None:
    url = segment_receiver.url + "/v1/batch"

    def send(worker: int) -> None:
        with httpx.Client(auth=("k", ""), timeout=10) as http:
            for request in range(20):
                batch = [track(f"{worker}-{request}-{n}") for n in range(5)]
                assert http.post(url, json={"batch": batch}).status_code == 200

    threads = [threading.Thread(target=send, args=(worker,)) for worker in range(8)]
    for thread in threads:
        thread.start()
    segment_receiver.wait_for(8 * 20 * 5)
    for thread in threads:
        thread.join(10)
    assert segment_receiver.stats == {
        "requests": 160,
        "by_status": {200: 160},
        "messages": 800,
        "distinct_message_ids": 800,
    }


def test_max_messages_keeps_the_newest() -> None:
    with SegmentReceiver(max_messages=2) as receiver:
        batch = [track(f"m{index}") for index in range(5)]
        assert post(receiver.url + "/v1/batch", {"batch": batch}).status_code == 200
        assert [m["messageId"] for m in receiver.messages()] == ["m3", "m4"]
        assert receiver.stats["messages"] == 5
        assert len(receiver.message_ids()) == 5


# -- the command line -----------------------------------------------------------------


def _first_line(process: subprocess.Popen[str], timeout: float = 15.0) -> str:
    """The first stdout line, or a failure if the process prints nothing in time."""
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], timeout)
    assert ready, "the receiver printed nothing"
    return process.stdout.readline()


@pytest.mark.parametrize(
    ("stop_signal", "port_from_env"),
    [(signal.SIGTERM, False), (signal.SIGINT, True)],
    ids=["sigterm-port-flag", "sigint-port-env"],
)
def test_cli_prints_where_it_listens_and_exits_cleanly(
    stop_signal: signal.Signals, port_from_env: bool
) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "destination_segment.receiver", "--write-key", SECRET_KEY]
    if port_from_env:
        env["SEGMENT_SINK_PORT"] = "0"
    else:
        env.pop("SEGMENT_SINK_PORT", None)
        command += ["--port", "0"]
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = _first_line(process)
        assert "listening on http://127.0.0.1:" in line
        assert "/messages" in line
        url = line.split("listening on ", 1)[1].split()[0]
        assert post(url + "/v1/batch", {"batch": [track("cli")]}, key=SECRET_KEY).is_success
        assert post(url + "/v1/batch", {"batch": [track("x")]}, key="wrong").status_code == 401
        assert httpx.get(url + "/messages").json()["count"] == 1
        process.send_signal(stop_signal)
        stdout, stderr = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, stderr
    assert SECRET_KEY not in line + stdout + stderr


def test_a_failure_rate_fails_about_that_share_of_requests(
    segment_receiver: SegmentReceiver,
) -> None:
    segment_receiver.fail(500, rate=0.25)
    statuses = [
        post(segment_receiver.url + "/v1/batch", {"batch": [track(f"r{i}")]}).status_code
        for i in range(200)
    ]
    failed = statuses.count(500)
    assert 20 <= failed <= 80, failed
    assert statuses.count(200) == 200 - failed
    assert len(segment_receiver.messages()) == 200 - failed
    with pytest.raises(ValueError, match="rate"):
        segment_receiver.fail(500, rate=1.5)
