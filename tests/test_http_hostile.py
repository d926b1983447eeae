"""Hostile and broken input at /collect: random JSON and random bytes, never a 500."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from destination_segment.receiver import SegmentReceiver
from tests.http_helpers import Served, serving

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=6) | st.dictionaries(st.text(max_size=12), children, max_size=6)
    ),
    max_leaves=30,
)
EVENT_LIKE = st.fixed_dictionaries(
    {"name": st.text(max_size=20)},
    optional={
        "data": JSON_VALUES,
        "user": JSON_VALUES,
        "consent": JSON_VALUES,
        "timestamp": JSON_VALUES,
        "nested": JSON_VALUES,
        "context": JSON_VALUES,
    },
)
HYPOTHESIS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture(scope="module")
def hostile_server() -> Iterator[tuple[Served, SegmentReceiver]]:
    with SegmentReceiver() as receiver, serving(receiver.url, {"maxBatchSize": 20}) as served:
        yield served, receiver


SENT_VALID: list[str] = []
"""Ids of the valid events the module's server answered as accepted, in this run."""


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as http:
        yield http


def _valid(event_id: str) -> dict[str, Any]:
    return {"name": "product view", "id": event_id, "user": {"id": "hyp"}}


@HYPOTHESIS
@given(value=JSON_VALUES | EVENT_LIKE)
def test_random_json_is_never_a_500(
    hostile_server: tuple[Served, SegmentReceiver], client: httpx.Client, value: Any
) -> None:
    served, _ = hostile_server
    response = client.post(served.collect, content=json.dumps(value), headers=_json())
    assert response.status_code in (200, 400, 413), response.text
    body = response.json()
    assert isinstance(body["accepted"] if response.status_code != 413 else 0, int)


@HYPOTHESIS
@given(noise=st.lists(JSON_VALUES | EVENT_LIKE, min_size=1, max_size=5), data=st.data())
def test_valid_events_beside_random_ones_go_through(
    hostile_server: tuple[Served, SegmentReceiver],
    client: httpx.Client,
    noise: list[Any],
    data: st.DataObject,
) -> None:
    served, _ = hostile_server
    event_id = f"v{data.draw(st.uuids()).hex}"
    position = data.draw(st.integers(min_value=0, max_value=len(noise)))
    batch = [*noise[:position], _valid(event_id), *noise[position:]]
    response = client.post(served.collect, json={"batch": batch})
    assert response.status_code in (200, 400), response.text
    body = response.json()
    assert body["accepted"] >= 1
    rejected = {r["index"] for r in body.get("rejected", [])}
    assert position not in rejected
    assert all(r["errors"] for r in body.get("rejected", []))
    SENT_VALID.append(event_id)


@HYPOTHESIS
@given(body=st.binary(max_size=300))
def test_random_bytes_get_a_clear_4xx(
    hostile_server: tuple[Served, SegmentReceiver], client: httpx.Client, body: bytes
) -> None:
    served, _ = hostile_server
    for content_type in ("application/json", "text/plain"):
        response = client.post(served.collect, content=body, headers={"content-type": content_type})
        assert response.status_code in (200, 400, 413), response.text
        if response.status_code == 400:
            assert response.json()["error"]


@HYPOTHESIS
@given(query=st.text(max_size=200))
def test_random_pixel_queries_are_never_a_500(
    hostile_server: tuple[Served, SegmentReceiver], client: httpx.Client, query: str
) -> None:
    served, _ = hostile_server
    response = client.get(served.collect, params={"q": query, query[:20]: "x"})
    assert response.status_code in (200, 400, 414)
    assert response.headers["content-type"] == "image/gif"


def test_every_valid_event_of_the_run_was_delivered(
    hostile_server: tuple[Served, SegmentReceiver], client: httpx.Client
) -> None:
    """After the property tests (same module server), or alone: each valid id arrived.

    It sends valid events beside broken ones itself, so it checks something
    when run alone, and compares the valid events' ids, not a count that
    the random (sometimes valid) events also add to.
    """
    served, receiver = hostile_server
    own = [f"final-{index}" for index in range(5)]
    noise: list[Any] = [{"name": "nospace"}, 7, {"name": "a b", "data": "not an object"}]
    batch = [noise[0], *(_valid(i) for i in own[:3]), noise[1], *(_valid(i) for i in own[3:])]
    response = client.post(served.collect, json={"batch": [*batch, noise[2]]})
    assert response.json()["accepted"] == len(own), response.text
    SENT_VALID.extend(own)
    stats = served.segment.destination.stats()
    assert stats["dropped_queue_full"] == 0
    assert stats["failed"] == 0
    arrived = receiver.wait_for(stats["enqueued"], timeout=20)
    assert len(arrived) == stats["enqueued"], "nothing sent twice, nothing extra"
    missing = {f"{i}-track" for i in SENT_VALID} - {m["messageId"] for m in arrived}
    assert not missing


def _json() -> dict[str, str]:
    return {"content-type": "application/json"}
