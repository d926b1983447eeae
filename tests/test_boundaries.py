"""Every limit on both sides: exactly at it is accepted, one past it is refused.

An off-by-one in a limit passes any test that only sends far below or far
above it. So each case here sends the value that just fits and the one
that just does not, over real sockets where it is an HTTP limit, and checks
what reached the receiver as well as the answer.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from destination_segment.calls import MAX_MESSAGE_ID, message_id
from destination_segment.receiver import SegmentReceiver
from flows.http.input import Limits, _first_violation, _within, body_within
from flows.http.source import GIF
from tests.http_helpers import serving
from tests.segment_helpers import segment_flow

JSON = {"content-type": "application/json"}


def _event(event_id: str, **fields: Any) -> dict[str, Any]:
    return {"name": "product view", "id": event_id, "user": {"id": "u-limits"}, **fields}


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as http:
        yield http


# -- messageId: kept up to 100 characters, hashed past them ------------------------------------


def test_a_message_id_of_exactly_100_characters_is_kept_and_101_is_hashed() -> None:
    assert MAX_MESSAGE_ID == 100
    fits = "f" * (100 - len("-track"))
    assert message_id(fits, "track") == f"{fits}-track"
    assert len(message_id(fits, "track")) == 100
    over = "o" * (101 - len("-track"))
    hashed = message_id(over, "track")
    assert hashed == hashlib.sha256(over.encode()).hexdigest() + "-track"
    assert hashed != message_id(over, "identify"), "the call type still tells calls apart"
    assert message_id(over, "track") == hashed, "deterministic: a re-sent event de-duplicates"


def test_the_bound_counts_the_call_type_so_one_event_can_keep_one_id_and_hash_another(
    segment_receiver: SegmentReceiver,
) -> None:
    event_id = "e" * (100 - len("-track"))  # track: 100 characters, identify: 103
    collector, _ = segment_flow(
        segment_receiver.url, {"identify": {"map": {"traits": {"map": {"n": "data.n"}}}}}
    )
    collector.push(_event(event_id, data={"n": 1}))
    assert collector.shutdown(5)["segment"].undelivered == 0
    by_type = {m["type"]: m["messageId"] for m in segment_receiver.wait_for(2)}
    digest = hashlib.sha256(event_id.encode()).hexdigest()
    assert by_type == {"track": f"{event_id}-track", "identify": f"{digest}-identify"}


# -- body size and batch size ------------------------------------------------------------------

BODY_LIMIT = 1024


def _sized(size: int, event_id: str) -> bytes:
    """A valid one-event body of exactly ``size`` bytes (JSON allows trailing whitespace)."""
    raw = orjson.dumps(_event(event_id))
    assert len(raw) <= size
    return raw + b" " * (size - len(raw))


def _chunked(body: bytes) -> Iterator[bytes]:
    """No Content-Length: httpx sends these pieces as a chunked body."""
    third = len(body) // 3
    yield body[:third]
    yield body[third : 2 * third]
    yield body[2 * third :]


def test_body_size_exactly_at_max_body_size_is_accepted_one_byte_more_is_413(
    segment_receiver: SegmentReceiver, client: httpx.Client
) -> None:
    with serving(segment_receiver.url, {"maxBodySize": BODY_LIMIT}) as served:
        exact = client.post(served.collect, content=_sized(BODY_LIMIT, "cl-exact"), headers=JSON)
        assert exact.status_code == 200, exact.text
        over = client.post(served.collect, content=_sized(BODY_LIMIT + 1, "cl-over"), headers=JSON)
        assert over.status_code == 413
        assert over.json()["error"] == "body of 1025 bytes is over maxBodySize 1024"

        streamed = _chunked(_sized(BODY_LIMIT, "chunk-exact"))
        exact_chunked = client.post(served.collect, content=streamed, headers=JSON)
        assert exact_chunked.request.headers.get("transfer-encoding") == "chunked"
        assert "content-length" not in exact_chunked.request.headers
        assert exact_chunked.status_code == 200, exact_chunked.text
        streamed = _chunked(_sized(BODY_LIMIT + 1, "chunk-over"))
        over_chunked = client.post(served.collect, content=streamed, headers=JSON)
        assert over_chunked.status_code == 413
        assert over_chunked.json()["error"] == "body is over maxBodySize 1024"
        assert served.source.stats.received == 2, "a refused body is never parsed"
    assert segment_receiver.message_ids() == {"cl-exact-track", "chunk-exact-track"}


def test_exactly_max_batch_size_events_are_accepted_one_more_is_413(
    segment_receiver: SegmentReceiver, client: httpx.Client
) -> None:
    with serving(segment_receiver.url, {"maxBatchSize": 5}) as served:
        fits = client.post(served.collect, json={"batch": [_event(f"b{i}") for i in range(5)]})
        assert fits.status_code == 200, fits.text
        assert fits.json() == {"ok": True, "accepted": 5}
        over = client.post(served.collect, json=[_event(f"o{i}") for i in range(6)])
        assert over.status_code == 413
        assert over.json()["error"] == "batch of 6 events is over maxBatchSize 5"
        assert served.source.stats.received == 5, "no event of a refused batch is pushed"
    assert segment_receiver.message_ids() == {f"b{i}-track" for i in range(5)}


# -- per-event limits: depth, string length, keys, items -----------------------------------------

EVENT_LIMITS = {"maxDepth": 5, "maxStringLength": 64, "maxKeys": 8}
LIMITS = Limits(max_batch_size=100, max_depth=5, max_string_length=64, max_keys=8)


def _nested(levels: int) -> dict[str, Any]:
    """``levels`` objects inside ``data`` (the event itself is depth 0, ``data`` depth 1)."""
    inner: dict[str, Any] = {}
    for _ in range(levels - 1):
        inner = {"k": inner}
    return inner


# index -> (event, None when it fits, else the (path, reason) it is rejected with)
EVENT_CASES: list[tuple[dict[str, Any], tuple[str, str] | None]] = [
    (_event("s-at", data={"text": "x" * 64}), None),
    (
        _event("s-over", data={"text": "x" * 65}),
        ("data.text", "string of 65 characters is over 64"),
    ),
    (_event("k-at", data={"k" * 64: 1}), None),
    (_event("k-over", data={"k" * 65: 1}), ("data", "a key is over the string length limit")),
    # the event is depth 0, data 1: four levels inside it make the deepest container depth 4
    (_event("d-at", data=_nested(4)), None),
    (_event("d-over", data=_nested(5)), ("data.k.k.k.k", "nested deeper than 5 levels")),
    (_event("n-at", data={f"f{i}": i for i in range(8)}), None),
    (
        _event("n-over", data={f"f{i}": i for i in range(9)}),
        ("data", "9 keys is over the limit of 8"),
    ),
    (_event("i-at", data={"list": list(range(8))}), None),
    (
        _event("i-over", data={"list": list(range(9))}),
        ("data.list", "9 items is over the limit of 8"),
    ),
    (_event("l-at", data={"list": [[{}]]}), None),
    (
        _event("l-over", data={"list": [[{"k": {}}]]}),
        ("data.list.0.0.k", "nested deeper than 5 levels"),
    ),
]


@pytest.mark.parametrize(("event", "why"), EVENT_CASES, ids=[e["id"] for e, _ in EVENT_CASES])
def test_both_limit_walks_draw_each_line_in_the_same_place(
    event: dict[str, Any], why: tuple[str, str] | None
) -> None:
    """The fast walk decides, the naming walk explains: each alone must hold the line."""
    assert _within(event, LIMITS) is (why is None)
    violation = _first_violation(event, LIMITS)
    assert (None if violation is None else (violation.path, violation.reason)) == why


def test_each_event_limit_holds_exactly_at_the_limit_and_refuses_one_past_it(
    segment_receiver: SegmentReceiver, client: httpx.Client
) -> None:
    for event, _ in EVENT_CASES:
        # Judged from its bytes alone an event is not proven within: the walk really runs.
        assert not body_within(orjson.dumps(event), LIMITS), event["id"]
    with serving(segment_receiver.url, EVENT_LIMITS) as served:
        response = client.post(served.collect, json={"batch": [e for e, _ in EVENT_CASES]})
    assert response.status_code == 400
    body = response.json()
    rejected = {
        r["index"]: [(e["path"], e["reason"]) for e in r["errors"]] for r in body["rejected"]
    }
    expected = {i: [why] for i, (_, why) in enumerate(EVENT_CASES) if why is not None}
    assert rejected == expected
    fitting = {f"{e['id']}-track" for e, why in EVENT_CASES if why is None}
    assert body["accepted"] == len(fitting)
    assert segment_receiver.message_ids() == fitting


# -- the pixel: parameter count, nesting and query length ----------------------------------------

PIXEL_LIMITS = {"maxDepth": 5, "maxStringLength": 64, "maxKeys": 8}


def _pixel(event_id: str, *extra: str) -> str:
    return "&".join(["name=product%20view", f"id={event_id}", "user[id]=u-pixel", *extra])


def _pixel_of_length(event_id: str, length: int) -> str:
    """A pixel query of exactly ``length`` characters, no value over 64 of them."""
    query = _pixel(event_id, *(f"data[p{i}]=" for i in range(4)))
    room = length - len(query)
    sizes = [room // 4 + (1 if i < room % 4 else 0) for i in range(4)]
    assert all(0 <= size <= 64 for size in sizes)
    parts = [f"data[p{i}]=" + "p" * size for i, size in enumerate(sizes)]
    padded = _pixel(event_id, *parts)
    assert len(padded) == length
    return padded


def test_pixel_parameter_count_nesting_and_length_on_both_sides_of_each_limit(
    segment_receiver: SegmentReceiver, client: httpx.Client
) -> None:
    # No object gets more than 8 keys either way: only the parameter count can refuse the 9.
    count_at = _pixel("q-count-at", *(f"data[f{i}]={i}" for i in range(5)))
    count_over = _pixel("q-count-over", *(f"data[f{i}]={i}" for i in range(6)))
    depth_at = _pixel("q-depth-at", "data[a][b][c][d]=1")  # five keys: data, a, b, c, d
    depth_over = _pixel("q-depth-over", "data[a][b][c][d][e]=1")
    length_at = _pixel_of_length("q-len-at", 64 * 4)  # maxStringLength x 4
    length_over = _pixel_of_length("q-len-over", 64 * 4 + 1)
    assert (count_at.count("&") + 1, count_over.count("&") + 1) == (8, 9)
    expected = {
        count_at: 200,
        count_over: 400,
        depth_at: 200,
        depth_over: 400,
        length_at: 200,
        length_over: 414,
    }
    with serving(segment_receiver.url, PIXEL_LIMITS) as served:
        statuses = {query: client.get(f"{served.collect}?{query}") for query in expected}
        assert {query: r.status_code for query, r in statuses.items()} == expected
        assert all(r.content == GIF for r in statuses.values())
    # the server has shut down and flushed: what the receiver holds is all that was sent
    by_id = {m["messageId"]: m for m in segment_receiver.messages()}
    assert set(by_id) == {"q-count-at-track", "q-depth-at-track", "q-len-at-track"}
    assert by_id["q-count-at-track"]["properties"] == {}
    assert served.source.stats.received == 3, "a refused query is never pushed"
