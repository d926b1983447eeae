"""CORS and the origin check of the http source, over real sockets against the local receiver."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from destination_segment.receiver import SegmentReceiver
from flows.flowfile.config import FlowError, resolve_flow
from flows.http.cors import MAX_ECHOED_HEADERS, Cors, trace_header_warning
from flows.http.openapi import openapi_document
from flows.http.settings import CorsSettings, HttpSettings
from tests.cli_helpers import DEMO_FLOW, run_flows
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


def demo_with(settings: dict[str, Any]) -> dict[str, Any]:
    """The demo flow file with these http source settings."""
    data: dict[str, Any] = json.loads(DEMO_FLOW.read_text())
    data.pop("$schema", None)
    data["flows"]["default"]["sources"]["http"]["config"]["settings"] = settings
    return data


def config_errors(settings: dict[str, Any]) -> str:
    """The error lines a flow with these http source settings is refused with."""
    with pytest.raises(FlowError) as caught:
        resolve_flow(demo_with(settings), env={})
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


def test_a_preflight_that_asks_for_no_headers_gets_the_defaults(
    segment_receiver: SegmentReceiver, client: httpx.Client
) -> None:
    """A browser sends no Access-Control-Request-Headers when it only needs safelisted ones."""
    with serving(segment_receiver.url) as served:
        answer = client.options(
            served.collect, headers={"origin": SHOP, "access-control-request-method": "POST"}
        )
    assert answer.status_code == 204
    assert answer.headers["access-control-allow-headers"] == "Content-Type, traceparent, tracestate"
    assert "Access-Control-Request-Headers" in answer.headers["vary"]


def test_a_preflight_is_echoed_up_to_exactly_the_cap(
    segment_receiver: SegmentReceiver, client: httpx.Client
) -> None:
    at_cap = "x-" + "a" * (MAX_ECHOED_HEADERS - 2)
    with serving(segment_receiver.url) as served:
        echoed = preflight(client, served.collect, at_cap)
        over = preflight(client, served.collect, at_cap + "a")
    assert len(at_cap) == MAX_ECHOED_HEADERS
    assert echoed.headers["access-control-allow-headers"] == at_cap
    assert over.headers["access-control-allow-headers"] == "Content-Type, traceparent, tracestate"


def test_header_names_are_lowercase_as_asgi_asks() -> None:
    """ASGI asks for lowercase names in http.response.start; HTTP/2 refuses any other."""
    listed = CorsSettings.model_validate({"origin": [SHOP], "credentials": True, "maxAge": 60})
    cors = Cors(listed, "X-Shop-Token")
    assert cors.headers([(b"origin", SHOP.encode())]) == [
        (b"access-control-allow-origin", SHOP.encode()),
        (b"vary", b"Origin"),
        (b"access-control-allow-credentials", b"true"),
    ]
    assert cors.preflight([(b"access-control-request-headers", b"x-anything")]) == [
        (b"access-control-allow-methods", b"POST, GET, OPTIONS"),
        (b"access-control-allow-headers", b"Content-Type, traceparent, tracestate, X-Shop-Token"),
        (b"access-control-max-age", b"60"),
    ]
    wildcard = Cors(CorsSettings.model_validate({}))
    assert wildcard.headers([(b"origin", SHOP.encode())]) == [
        (b"access-control-allow-origin", b"*")
    ]
    assert wildcard.preflight([(b"access-control-request-headers", b"x-a")]) == [
        (b"access-control-allow-methods", b"POST, GET, OPTIONS"),
        (b"access-control-allow-headers", b"x-a"),
        (b"access-control-max-age", b"600"),
        (b"vary", b"Access-Control-Request-Headers"),
    ]


def test_the_traceparent_warning_only_for_a_list_that_leaves_it_out() -> None:
    def cors(headers: list[str] | None) -> CorsSettings:
        return CorsSettings.model_validate({"headers": headers})

    assert trace_header_warning(True) is None
    assert trace_header_warning(False) is None
    assert trace_header_warning(cors(None)) is None  # the preflight echoes what is asked
    assert trace_header_warning(cors(["Content-Type", "TraceParent"])) is None
    assert trace_header_warning(cors(["Content-Type", "tracestate"])) == (
        "leaves out traceparent, which walkerOS's api destination sends with every fetch, "
        'so browsers will block those fetches; add "traceparent"'
    )


# -- checkOrigin ---------------------------------------------------------------------------

CHECKED = {"cors": {"origin": [SHOP]}, "checkOrigin": True}
STRICT = {**CHECKED, "checkOrigin": "strict"}


def beacon(client: httpx.Client, url: str, event_id: str, **headers: str) -> httpx.Response:
    """What navigator.sendBeacon sends: a text/plain POST, no preflight."""
    body = json.dumps(event(event_id))
    return client.post(url, content=body, headers={"content-type": "text/plain", **headers})


def refused_because(answer: httpx.Response, origin: str) -> None:
    assert answer.status_code == 403
    assert answer.json() == {
        "ok": False,
        "error": f"origin {origin} is not allowed; add it to cors.origin",
    }


def test_check_origin_needs_a_list_of_origins() -> None:
    for cors in (True, False, {"origin": "*"}, {"origin": ["*", SHOP]}):
        errors = config_errors({"cors": cors, "checkOrigin": True})
        assert f"{SETTINGS}.checkOrigin: needs the allowed origins listed in cors.origin" in errors
    assert "checkOrigin" in config_errors({"checkOrigin": "strict"})
    assert "checkOrigin" in config_errors({**CHECKED, "checkOrigin": "yes"})


def test_a_beacon_from_another_site_is_refused_and_never_delivered(
    segment_receiver: SegmentReceiver, client: httpx.Client
) -> None:
    with serving(segment_receiver.url, http=CHECKED) as served:
        refused = beacon(client, served.collect, "evil1", origin="https://evil.example")
        allowed = beacon(client, served.collect, "shop1", origin=SHOP)
        ids = {m["messageId"] for m in segment_receiver.wait_for(1)}
    refused_because(refused, "https://evil.example")
    assert refused.headers["vary"] == "Origin"  # the CORS headers go out with the 403
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == SHOP
    assert ids == {"shop1-track"}


def test_look_alike_origins_are_refused(
    segment_receiver: SegmentReceiver, client: httpx.Client
) -> None:
    with serving(segment_receiver.url, http=CHECKED) as served:
        for origin in LOOK_ALIKES:
            refused_because(beacon(client, served.collect, "la", origin=origin), origin)


def test_the_origin_is_checked_before_the_body_is_read(
    segment_receiver: SegmentReceiver, client: httpx.Client
) -> None:
    with serving(segment_receiver.url, http={**CHECKED, "maxBodySize": 1024}) as served:
        big = client.post(
            served.collect,
            content=b"x" * 4096,
            headers={"origin": "https://evil.example", "content-type": "image/png"},
        )
    refused_because(big, "https://evil.example")  # not 413 or 415: nothing was read


def test_referer_stands_in_for_a_missing_origin(
    segment_receiver: SegmentReceiver, client: httpx.Client
) -> None:
    with serving(segment_receiver.url, http=CHECKED) as served:
        cart = beacon(client, served.collect, "r1", referer=f"{SHOP}/cart?x=1")
        home = beacon(client, served.collect, "r2", referer=f"{SHOP}/")
        bare = beacon(client, served.collect, "r3", referer=SHOP)
        evil = beacon(client, served.collect, "r4", referer="https://shop.example.evil.com/")
        userinfo = beacon(client, served.collect, "r5", referer=f"{SHOP}@evil.example/")
        query = beacon(client, served.collect, "r6", referer=f"https://evil.example?{SHOP}/")
        origin_wins = beacon(
            client, served.collect, "r7", origin="https://evil.example", referer=f"{SHOP}/"
        )
        origin_after = beacon(
            client, served.collect, "r8", referer=f"{SHOP}/", origin="https://evil.example"
        )
        file_page = beacon(client, served.collect, "r9", referer="file:///home/u/page.html")
        no_scheme = beacon(client, served.collect, "r10", referer="://evil.example/page")
    assert [cart.status_code, home.status_code, bare.status_code] == [200, 200, 200]
    refused_because(evil, "https://shop.example.evil.com")
    refused_because(userinfo, f"{SHOP}@evil.example")
    refused_because(query, "https://evil.example?https:")
    refused_because(origin_wins, "https://evil.example")
    refused_because(origin_after, "https://evil.example")  # whichever header comes first
    refused_because(file_page, "file://")  # cut at the first / after ://, as any other
    refused_because(no_scheme, "://evil.example")


def test_requests_with_neither_header_pass_unless_strict(
    segment_receiver: SegmentReceiver, client: httpx.Client
) -> None:
    with serving(segment_receiver.url, http=CHECKED) as served:
        assert beacon(client, served.collect, "s1").status_code == 200
    with serving(segment_receiver.url, http=STRICT) as served:
        strict = beacon(client, served.collect, "s2")
        listed = beacon(client, served.collect, "s3", origin=SHOP)
    assert strict.status_code == 403
    assert strict.json()["error"] == (
        'no Origin or Referer header; checkOrigin "strict" refuses such requests'
    )
    assert listed.status_code == 200


def test_the_pixel_is_checked_too(segment_receiver: SegmentReceiver, client: httpx.Client) -> None:
    query = {"name": "product view", "id": "px-evil", "user[id]": "u1"}
    with serving(segment_receiver.url, http=CHECKED) as served:
        refused = client.get(
            served.collect, params=query, headers={"referer": "https://evil.example/"}
        )
        allowed = client.get(
            served.collect, params={**query, "id": "px-shop"}, headers={"referer": f"{SHOP}/p"}
        )
        ids = {m["messageId"] for m in segment_receiver.wait_for(1)}
        preflight_answer = preflight(client, served.collect, "content-type")
    assert refused.status_code == 403
    assert refused.headers["content-type"] == "image/gif"  # an img gets its GIF, as always
    assert allowed.status_code == 200
    assert ids == {"px-shop-track"}
    assert preflight_answer.status_code == 204  # only posts and pixels are checked


def test_openapi_documents_the_403_only_when_origins_are_checked() -> None:
    checked = openapi_document(HttpSettings.model_validate(CHECKED))["paths"]["/collect"]
    plain = openapi_document(HttpSettings.model_validate({}))["paths"]["/collect"]
    for operation in ("post", "get"):
        assert "403" in checked[operation]["responses"]
        assert "403" not in plain[operation]["responses"]
    assert "application/json" in checked["post"]["responses"]["403"]["content"]
    assert "image/gif" in checked["get"]["responses"]["403"]["content"]


def write_flow(tmp_path: Path, settings: dict[str, Any]) -> Path:
    path = tmp_path / "flow.json"
    path.write_text(json.dumps(demo_with(settings)))
    return path


def test_validate_warns_when_cors_headers_leave_out_traceparent(tmp_path: Path) -> None:
    blocking = run_flows(
        "validate", str(write_flow(tmp_path, {"cors": {"headers": ["Content-Type"]}}))
    )
    assert blocking.returncode == 0, blocking.stderr
    assert blocking.stdout.startswith("ok: ")
    assert (
        "flows: warning: flows.default.sources.http.config.settings.cors.headers: "
        "leaves out traceparent"
    ) in blocking.stderr
    fine = {"cors": {"headers": ["Content-Type", "TraceParent"]}}
    quiet = run_flows("validate", str(write_flow(tmp_path, fine)))
    assert quiet.returncode == 0
    assert "warning" not in quiet.stderr
