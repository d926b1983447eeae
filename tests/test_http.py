"""The http source over real sockets: uvicorn, the collector, the SDK, the local receiver."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from destination_segment.receiver import SegmentReceiver
from flows.http.source import GIF
from tests.http_helpers import Served, serving

PRODUCT_VIEW = {"name": "product view", "data": {"id": "ers"}, "user": {"id": "u1"}}


def event(event_id: str, **fields: Any) -> dict[str, Any]:
    return {**PRODUCT_VIEW, "id": event_id, **fields}


@pytest.fixture
def served(segment_receiver: SegmentReceiver) -> Iterator[Served]:
    with serving(segment_receiver.url) as running:
        yield running


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as http:
        yield http


def test_single_event_is_accepted_and_delivered(
    served: Served, client: httpx.Client, segment_receiver: SegmentReceiver
) -> None:
    response = client.post(served.collect, json=event("one"))
    assert response.status_code == 200
    assert response.json() == {"ok": True, "accepted": 1}
    assert response.headers["x-content-type-options"] == "nosniff"
    [message] = segment_receiver.wait_for(1)
    assert message["messageId"] == "one-track"
    assert message["userId"] == "u1"


def test_list_and_batch_shapes(
    served: Served, client: httpx.Client, segment_receiver: SegmentReceiver
) -> None:
    listed = client.post(served.collect, json=[event("l1"), event("l2")])
    batched = client.post(served.collect, json={"batch": [event("b1"), event("b2"), event("b3")]})
    assert listed.json()["accepted"] == 2
    assert batched.json()["accepted"] == 3
    ids = {m["messageId"] for m in segment_receiver.wait_for(5)}
    assert ids == {f"{i}-track" for i in ("l1", "l2", "b1", "b2", "b3")}


def test_mixed_batch_keeps_the_valid_events_and_names_the_bad_ones(
    served: Served, client: httpx.Client, segment_receiver: SegmentReceiver
) -> None:
    batch = [event("ok1"), {"name": "nospace"}, event("ok2", data={"price": "x" * 3}), 7]
    response = client.post(served.collect, json={"batch": batch})
    assert response.status_code == 400
    body = response.json()
    assert body["accepted"] == 2
    rejected = {r["index"]: r["errors"] for r in body["rejected"]}
    assert set(rejected) == {1, 3}
    assert rejected[1][0]["path"] == "name"
    assert "entity action" in rejected[1][0]["reason"]
    ids = {m["messageId"] for m in segment_receiver.wait_for(2)}
    assert ids == {"ok1-track", "ok2-track"}


def test_invalid_json_and_empty_body(served: Served, client: httpx.Client) -> None:
    broken = client.post(served.collect, content=b'{"name": "page view",', headers=_json())
    assert broken.status_code == 400
    assert broken.json()["error"].startswith("invalid JSON")
    empty = client.post(served.collect, content=b"", headers=_json())
    assert empty.status_code == 400
    nan = client.post(served.collect, content=b'{"name":"a b","data":{"x":NaN}}', headers=_json())
    assert nan.status_code == 400


def test_oversized_bodies_and_batches_get_413(segment_receiver: SegmentReceiver) -> None:
    http = {"maxBodySize": 2048, "maxBatchSize": 3}
    with serving(segment_receiver.url, http) as served, httpx.Client(timeout=10) as client:
        big = client.post(served.collect, json=event("big", data={"text": "x" * 4000}))
        assert big.status_code == 413
        assert "maxBodySize 2048" in big.json()["error"]

        def chunks() -> Iterator[bytes]:  # no Content-Length: the limit holds while reading
            yield b'{"name": "product view", "data": {"text": "'
            yield b"x" * 4096
            yield b'"}}'

        streamed = client.post(served.collect, content=chunks(), headers=_json())
        assert streamed.status_code == 413
        too_many = client.post(served.collect, json=[event(f"m{i}") for i in range(4)])
        assert too_many.status_code == 413
        assert "maxBatchSize 3" in too_many.json()["error"]
        assert client.post(served.collect, json=[event("fits")]).status_code == 200


def test_text_plain_from_send_beacon_is_json_other_types_are_415(
    served: Served, client: httpx.Client, segment_receiver: SegmentReceiver
) -> None:
    beacon = client.post(
        served.collect,
        content=json.dumps(event("beacon")),
        headers={"content-type": "text/plain;charset=UTF-8"},
    )
    assert beacon.status_code == 200
    form = client.post(served.collect, data={"name": "product view"})
    assert form.status_code == 415
    assert "application/json or text/plain" in form.json()["error"]
    assert segment_receiver.wait_for(1)[0]["messageId"] == "beacon-track"


def test_pixel_get_answers_a_gif_and_delivers_the_event(
    served: Served, client: httpx.Client, segment_receiver: SegmentReceiver
) -> None:
    query = "name=product%20view&id=px1&data[id]=ers&user[id]=u9&timestamp=1700000000000"
    response = client.get(f"{served.collect}?{query}")
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/gif"
    assert response.content == GIF
    [message] = segment_receiver.wait_for(1)
    assert (message["messageId"], message["userId"]) == ("px1-track", "u9")
    assert message["timestamp"].startswith("2023-11-14T22:13:20")
    whole = event("px2", user={"id": "u-json", "session": "s-json"}, timestamp=1700000000500)
    as_json = client.get(served.collect, params={"e": json.dumps(whole)})
    assert as_json.status_code == 200
    assert as_json.content == GIF
    arrived = segment_receiver.wait_for(2)[1]
    assert (arrived["messageId"], arrived["type"], arrived["event"]) == (
        "px2-track",
        "track",
        "product view",
    )
    assert (arrived["userId"], arrived["anonymousId"]) == ("u-json", "s-json")
    assert arrived["timestamp"].startswith("2023-11-14T22:13:20.500")
    bad = client.get(f"{served.collect}?name=nospace")
    assert bad.status_code == 400
    assert bad.content == GIF


def test_cors_preflight_and_simple_requests(served: Served, client: httpx.Client) -> None:
    preflight = client.options(
        served.collect,
        headers={
            "origin": "https://shop.example",
            "access-control-request-method": "POST",
            "access-control-request-headers": "content-type",
        },
    )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "*"
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert preflight.headers["access-control-allow-headers"] == "content-type"
    posted = client.post(
        served.collect, json=event("c1"), headers={"origin": "https://shop.example"}
    )
    assert posted.headers["access-control-allow-origin"] == "*"


def test_cors_origin_list_and_off(segment_receiver: SegmentReceiver) -> None:
    http = {"cors": {"origin": ["https://shop.example"], "credentials": True}}
    with serving(segment_receiver.url, http) as served, httpx.Client(timeout=10) as client:
        allowed = client.post(
            served.collect, json=event("o1"), headers={"origin": "https://shop.example"}
        )
        assert allowed.headers["access-control-allow-origin"] == "https://shop.example"
        assert allowed.headers["access-control-allow-credentials"] == "true"
        other = client.post(
            served.collect, json=event("o2"), headers={"origin": "https://evil.example"}
        )
        assert "access-control-allow-origin" not in other.headers
    with serving(segment_receiver.url, {"cors": False}) as served, httpx.Client() as client:
        plain = client.post(served.collect, json=event("o3"), headers={"origin": "https://a.b"})
        assert plain.status_code == 200
        assert "access-control-allow-origin" not in plain.headers


def test_walkeros_express_settings_are_accepted(segment_receiver: SegmentReceiver) -> None:
    """The settings of @walkeros/server-source-express work unchanged."""
    http = {
        "path": "/events",
        "status": False,
        "cors": {
            "origin": "https://shop.example",
            "methods": ["POST", "OPTIONS"],
            "headers": ["Content-Type", "X-Custom"],
            "maxAge": 60,
        },
    }
    with serving(segment_receiver.url, http) as served, httpx.Client(timeout=10) as client:
        preflight = client.options(served.collect, headers={"origin": "https://shop.example"})
        assert preflight.headers["access-control-allow-methods"] == "POST, OPTIONS"
        assert preflight.headers["access-control-allow-headers"] == "Content-Type, X-Custom"
        assert preflight.headers["access-control-max-age"] == "60"
        assert client.post(served.url + "/events", json=event("w1")).status_code == 200
        assert client.get(served.url + "/health").status_code == 404
        assert client.get(served.url + "/ready").status_code == 404


def test_health_ready_404_405(served: Served, client: httpx.Client) -> None:
    assert client.get(served.url + "/health").json() == {"status": "ok"}
    ready = client.get(served.url + "/ready")
    assert ready.status_code == 200
    missing = client.get(served.url + "/nope")
    assert missing.status_code == 404
    assert "POST to /collect" in missing.json()["error"]
    wrong = client.delete(served.collect)
    assert wrong.status_code == 405
    assert wrong.headers["allow"] == "POST, GET, OPTIONS"
    not_here = client.post(served.url + "/health")
    assert not_here.status_code == 405
    assert not_here.headers["allow"] == "GET, HEAD"
    assert client.post(served.url + "/nope").status_code == 404, "no such path, whatever the method"


def test_metrics_count_what_happened(
    served: Served, client: httpx.Client, segment_receiver: SegmentReceiver
) -> None:
    client.post(served.collect, json=[event("k1"), {"name": "bad"}, {"name": "page view"}])
    segment_receiver.wait_for(1)
    text = client.get(served.url + "/metrics").text
    assert "flows_events_received_total 3.0" in text
    assert "flows_events_accepted_total 2.0" in text
    assert "flows_events_rejected_total 1.0" in text
    assert 'flows_http_requests_total{status="400"} 1.0' in text
    assert (
        'flows_destination_events_total{destination="segment",outcome="sent",reason=""} 1.0' in text
    )
    assert (
        'flows_destination_events_total{destination="segment",outcome="skipped",'
        'reason="no identity"} 1.0' in text
    )
    assert 'flows_destination_messages_total{destination="segment",outcome="enqueued"} 1.0' in text
    assert 'flows_destination_queue{destination="segment",measure="depth"}' in text


def test_limits_reject_only_the_offending_event(segment_receiver: SegmentReceiver) -> None:
    http = {"maxDepth": 6, "maxStringLength": 100, "maxKeys": 10}
    deep: dict[str, Any] = {"leaf": 1}
    for _ in range(8):
        deep = {"d": deep}
    batch = [
        event("fine"),
        event("deep", data=deep),
        event("long", data={"text": "x" * 101}),
        event("wide", data={f"k{i}": i for i in range(11)}),
    ]
    with serving(segment_receiver.url, http) as served, httpx.Client(timeout=10) as client:
        response = client.post(served.collect, json=batch)
        assert response.status_code == 400
        body = response.json()
        assert body["accepted"] == 1
        reasons = {r["index"]: r["errors"][0] for r in body["rejected"]}
        assert "nested deeper than 6" in reasons[1]["reason"]
        assert reasons[2] == {"path": "data.text", "reason": "string of 101 characters is over 100"}
        assert reasons[3]["path"] == "data"
        assert "keys is over the limit of 10" in reasons[3]["reason"]
        assert segment_receiver.wait_for(1)[0]["messageId"] == "fine-track"


def test_shared_secret_header(segment_receiver: SegmentReceiver) -> None:
    token = "t0ken-for-servers-3c4d5e6f"
    http = {"auth": {"header": "X-Flows-Token", "token": token}}
    with serving(segment_receiver.url, http) as served, httpx.Client(timeout=10) as client:
        missing = client.post(served.collect, json=event("a1"))
        assert missing.status_code == 401
        assert "X-Flows-Token" in missing.json()["error"].title()
        wrong = client.post(served.collect, json=event("a2"), headers={"x-flows-token": "nope"})
        assert wrong.status_code == 401
        assert token not in wrong.text
        pixel = client.get(served.collect, params={"e": json.dumps(event("a4"))})
        assert pixel.status_code == 401
        assert pixel.headers["content-type"] == "image/gif", "one content type: the GIF's"
        right = client.post(served.collect, json=event("a3"), headers={"x-flows-token": token})
        assert right.status_code == 200
        assert client.get(served.url + "/health").status_code == 200
        assert token not in client.get(served.url + "/metrics").text
    assert segment_receiver.message_ids() == {"a3-track"}


def test_ingest_maps_request_context_only_when_configured(
    segment_receiver: SegmentReceiver,
) -> None:
    mapping = {
        "product": {"view": {"data": {"map": {"ip": "user.ip", "language": "custom.language"}}}}
    }
    http = {"ingest": {"user.ip": "ip", "custom.language": "language"}}
    headers = {"accept-language": "de-DE,de;q=0.9"}
    with serving(segment_receiver.url, http, mapping=mapping) as served, httpx.Client() as client:
        client.post(served.collect, json=event("i1"), headers=headers)
        client.post(served.collect, json=event("i2", user={"id": "u1", "ip": "10.1.2.3"}))
    with serving(segment_receiver.url, mapping=mapping) as served, httpx.Client() as client:
        client.post(served.collect, json=event("i3"), headers=headers)
    by_id = {m["messageId"]: m["properties"] for m in segment_receiver.wait_for(3)}
    assert by_id["i1-track"] == {"ip": "127.0.0.1", "language": "de-DE"}
    assert by_id["i2-track"]["ip"] == "10.1.2.3", "what the client sent wins"
    assert by_id["i3-track"] == {}, "nothing personal is added by default"


def test_overload_answers_503_then_recovers(segment_receiver: SegmentReceiver) -> None:
    segment = {"maxQueueSize": 10, "flushAt": 1, "flushInterval": 1}
    http = {"queueHighWater": 0.5, "retryAfter": 2}
    segment_receiver.delay(30)  # Segment hangs: the queue fills up
    with serving(segment_receiver.url, http, segment) as served, httpx.Client() as client:
        statuses = []
        for index in range(20):
            response = client.post(served.collect, json=event(f"q{index}"))
            statuses.append(response.status_code)
            if response.status_code == 503:
                assert response.headers["retry-after"] == "2"
                break
        assert statuses[-1] == 503, statuses
        accepted = statuses.count(200)
        assert served.segment.destination.stats()["dropped_queue_full"] == 0
        segment_receiver.reset_faults()
        segment_receiver.wait_for(accepted, timeout=40)  # the hung upload times out, retries
        assert client.post(served.collect, json=event("after")).status_code == 200
        text = client.get(served.url + "/metrics").text
        assert "flows_http_overloaded_total 1.0" in text


def _json() -> dict[str, str]:
    return {"content-type": "application/json"}
