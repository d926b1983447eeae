"""CORS and the origin check of the http source, over real sockets against the local receiver."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from destination_segment.receiver import SegmentReceiver
from flows.config import FlowError, resolve_flow
from flows.cors import Cors
from flows.http_settings import CorsSettings
from tests.cli_helpers import DEMO_FLOW
from tests.http_helpers import serving

SHOP = "https://shop.example"
LOOK_ALIKES = [
    "https://shop.example.evil.com",
    "https://shop.exampl",
    "https://shop.example:8443",
    "http://shop.example",
    "https://evil-shop.example",
    "https://SHOP.EXAMPLE",
    "null",
]
SETTINGS = "flows.default.sources.http.config.settings"
CREDENTIALED = {"cors": {"origin": [SHOP], "credentials": True}}


def event(event_id: str) -> dict[str, Any]:
    return {"name": "product view", "id": event_id, "user": {"id": "u1"}}


def config_errors(settings: dict[str, Any]) -> str:
    """The error lines a flow with these http source settings is refused with."""
    data = json.loads(DEMO_FLOW.read_text())
    flow = copy.deepcopy(data)
    flow["flows"]["default"]["sources"]["http"]["config"]["settings"] = settings
    with pytest.raises(FlowError) as caught:
        resolve_flow(flow, env={})
    return "\n".join(caught.value.errors)


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as http:
        yield http


# -- configuration -------------------------------------------------------------------------


def test_credentials_with_any_origin_is_a_config_error() -> None:
    for cors in ({"credentials": True}, {"origin": "*", "credentials": True}):
        errors = config_errors({"cors": cors})
        assert f'{SETTINGS}.cors.credentials: cannot be true with origin "*"' in errors
        assert "list the origins" in errors


def test_credentials_with_null_origin_is_a_config_error() -> None:
    errors = config_errors({"cors": {"origin": [SHOP, "null"], "credentials": True}})
    assert f'{SETTINGS}.cors.credentials: cannot be true with origin "null"' in errors


def test_origins_must_be_written_as_browsers_send_them() -> None:
    errors = config_errors({"cors": {"origin": [SHOP, "https://shop.example/"]}})
    assert f"{SETTINGS}.cors.origin.1: not an origin: write scheme://host[:port]" in errors
    errors = config_errors({"cors": {"origin": "https://shop.example:443"}})
    assert f"{SETTINGS}.cors.origin: leave out the default port :443" in errors


# -- answers -------------------------------------------------------------------------------


def test_a_listed_origin_gets_itself_and_credentials(
    segment_receiver: SegmentReceiver, client: httpx.Client
) -> None:
    with serving(segment_receiver.url, http=CREDENTIALED) as served:
        answer = client.post(served.collect, json=event("c1"), headers={"origin": SHOP})
    assert answer.status_code == 200
    assert answer.headers["access-control-allow-origin"] == SHOP
    assert answer.headers["access-control-allow-credentials"] == "true"
    assert answer.headers["vary"] == "Origin"


def test_look_alike_origins_get_neither_origin_nor_credentials(
    segment_receiver: SegmentReceiver, client: httpx.Client
) -> None:
    with serving(segment_receiver.url, http=CREDENTIALED) as served:
        for origin in LOOK_ALIKES:
            answer = client.post(served.collect, json=event("c2"), headers={"origin": origin})
            assert answer.status_code == 200, origin  # CORS refuses nothing
            assert "access-control-allow-origin" not in answer.headers, origin
            assert "access-control-allow-credentials" not in answer.headers, origin
            assert answer.headers["vary"] == "Origin", origin
        bare = client.post(served.collect, json=event("c3"))
        assert bare.headers["vary"] == "Origin"  # a cache must not serve it to the shop
        assert "access-control-allow-origin" not in bare.headers


def test_configured_origins_are_lowercased_as_browsers_send_them(
    segment_receiver: SegmentReceiver, client: httpx.Client
) -> None:
    http = {"cors": {"origin": ["HTTPS://Shop.Example"]}}
    with serving(segment_receiver.url, http=http) as served:
        answer = client.post(served.collect, json=event("l1"), headers={"origin": SHOP})
    assert answer.headers["access-control-allow-origin"] == SHOP


def test_null_never_gets_credentials_even_past_the_settings_check() -> None:
    settings = CorsSettings.model_construct(origin=[SHOP, "null"], credentials=True)
    answer = dict(Cors(settings).headers([(b"origin", b"null")]))
    assert answer[b"access-control-allow-origin"] == b"null"
    assert b"access-control-allow-credentials" not in answer


def test_null_is_reflected_only_without_credentials(
    segment_receiver: SegmentReceiver, client: httpx.Client
) -> None:
    http = {"cors": {"origin": [SHOP, "null"]}}
    with serving(segment_receiver.url, http=http) as served:
        answer = client.post(served.collect, json=event("n1"), headers={"origin": "null"})
    assert answer.headers["access-control-allow-origin"] == "null"
    assert "access-control-allow-credentials" not in answer.headers


def test_the_wildcard_without_credentials_sends_a_star(
    segment_receiver: SegmentReceiver, client: httpx.Client
) -> None:
    with serving(segment_receiver.url) as served:
        answer = client.post(served.collect, json=event("w1"), headers={"origin": SHOP})
    assert answer.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in answer.headers
    assert "vary" not in answer.headers  # the same answer for every origin


def preflight(client: httpx.Client, url: str, requested: str) -> httpx.Response:
    return client.options(
        url,
        headers={
            "origin": SHOP,
            "access-control-request-method": "POST",
            "access-control-request-headers": requested,
        },
    )


def test_a_credentialed_preflight_does_not_echo_what_it_was_asked(
    segment_receiver: SegmentReceiver, client: httpx.Client
) -> None:
    http = {**CREDENTIALED, "auth": {"header": "X-Shop-Token", "token": "t" * 16}}
    with serving(segment_receiver.url, http=http) as served:
        answer = preflight(client, served.collect, "content-type,x-anything")
    assert answer.status_code == 204
    allowed = answer.headers["access-control-allow-headers"]
    assert allowed == "Content-Type, traceparent, tracestate, X-Shop-Token"
    assert answer.headers["access-control-allow-credentials"] == "true"


def test_a_preflight_without_credentials_echoes_within_a_cap(
    segment_receiver: SegmentReceiver, client: httpx.Client
) -> None:
    with serving(segment_receiver.url) as served:
        asked = preflight(client, served.collect, "content-type,traceparent")
        huge = preflight(client, served.collect, ",".join(f"x-h{i}" for i in range(400)))
    assert asked.headers["access-control-allow-headers"] == "content-type,traceparent"
    assert "Access-Control-Request-Headers" in asked.headers["vary"]
    assert huge.status_code == 204
    assert huge.headers["access-control-allow-headers"] == "Content-Type, traceparent, tracestate"


def test_a_configured_header_list_is_what_every_preflight_gets(
    segment_receiver: SegmentReceiver, client: httpx.Client
) -> None:
    http = {"cors": {"origin": [SHOP], "headers": ["Content-Type", "traceparent"]}}
    with serving(segment_receiver.url, http=http) as served:
        answer = preflight(client, served.collect, "x-anything")
    assert answer.headers["access-control-allow-headers"] == "Content-Type, traceparent"
