"""walkerOS route objects in ``next``/``before``: gates, first match (``one``), fan-out (``many``).

Matches look at ``{"ingest": ...}``, the request, as in walkerOS's
``packages/core/src/route.ts``; routed chains run over the real http source.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from collector.errors import ConfigError
from collector.route import RouteConfigError, compile_route
from flows.flowfile.config import FlowError, resolve_flow
from flows.graph import build_flow
from tests.http_helpers import serving_source

POST = {"key": "ingest.method", "operator": "eq", "value": "POST"}
BETA = {"key": "ingest.path", "operator": "prefix", "value": "/beta"}


def select(spec: Any, **ingest: Any) -> list[str]:
    return compile_route(spec, "next").select({"ingest": ingest})


def test_gates_first_matches_fan_outs_and_sequences() -> None:
    assert select({"match": BETA, "next": "a"}, path="/beta/x") == ["a"]
    assert select({"match": BETA, "next": "a"}, path="/collect") == []
    one = [{"match": BETA, "next": "a"}, {"match": POST, "next": "b"}, {"next": "c"}]
    assert select(one, path="/beta", method="POST") == ["a"], "the first match wins"
    assert select(one, path="/collect", method="POST") == ["b"]
    assert select(one, path="/collect", method="GET") == ["c"]
    many = {"many": [{"match": BETA, "next": "a"}, {"match": POST, "next": "b"}, "c"]}
    assert select(many, path="/beta", method="POST") == ["a", "b", "c"]
    assert compile_route(many, "next").fans_out
    assert select(["x", {"match": POST, "next": "y"}], method="GET") == ["x"], "a sequence"
    assert select({"match": POST}, method="POST") == [], "a bare gate ends the chain"
    assert select({"match": {"or": [BETA, POST]}, "one": ["z"]}, method="POST") == ["z"]


def test_route_errors_name_the_place() -> None:
    with pytest.raises(RouteConfigError, match=r"^next\.0\.nxt: unknown route key"):
        compile_route([{"match": POST, "nxt": "a"}], "next")
    with pytest.raises(RouteConfigError, match=r"^next: a route has one of next, one, many"):
        compile_route({"next": "a", "many": ["b"]}, "next")
    with pytest.raises(ConfigError, match=r"^next\.match"):
        compile_route(
            {"match": {"key": "ingest.path", "operator": "like", "value": "x"}, "next": "a"}, "next"
        )


def tagger() -> dict[str, Any]:
    return {"code": {"push": "tests.user_transformers:tag"}}


def flow_file(log: Path, source_next: Any, before: Any = None) -> dict[str, Any]:
    log_step: dict[str, Any] = {"package": "log", "config": {"settings": {"path": str(log)}}}
    if before is not None:
        log_step["before"] = before
    return {
        "version": 4,
        "flows": {
            "default": {
                "sources": {
                    "http": {
                        "package": "http",
                        "next": source_next,
                        "config": {"settings": {"host": "127.0.0.1", "paths": ["/beta"]}},
                    }
                },
                "transformers": {"a": {**tagger(), "next": "b"}, "b": tagger(), "c": tagger()},
                "destinations": {"log": log_step},
            }
        },
    }


def steps_logged(log: Path) -> list[str]:
    return [json.loads(line)["globals"].get("steps", "") for line in log.read_text().splitlines()]


def test_a_source_route_picks_the_chain_by_request(tmp_path: Path) -> None:
    log = tmp_path / "log.jsonl"
    data = flow_file(log, [{"match": BETA, "next": "a"}, {"next": "c"}])
    flow = build_flow(resolve_flow(data, env={}))
    with serving_source(flow.collector, flow.sources["http"]) as url:
        assert httpx.post(url + "/beta", json={"name": "page view"}).status_code == 200
        assert httpx.post(url + "/collect", json={"name": "page view"}).status_code == 200
    assert steps_logged(log) == ["a,b", "c"], "/beta follows a's next link to b; others go to c"


def test_many_sends_each_branch_on_its_own(tmp_path: Path) -> None:
    log = tmp_path / "log.jsonl"
    data = flow_file(log, {"many": ["a", {"match": POST, "next": "c"}]})
    flow = build_flow(resolve_flow(data, env={}))
    with serving_source(flow.collector, flow.sources["http"]) as url:
        answer = httpx.post(url + "/collect", json={"name": "page view", "id": "one"})
    assert answer.json() == {"ok": True, "accepted": 1}
    assert sorted(steps_logged(log)) == ["a,b", "c"]
    assert flow.destination("log").stats.sent == 2


def test_a_destination_before_cannot_fan_out(tmp_path: Path) -> None:
    data = flow_file(tmp_path / "log.jsonl", None, before={"many": ["a", "c"]})
    with pytest.raises(
        FlowError, match=r"destinations\.log\.before: a destination's before cannot fan out"
    ):
        build_flow(resolve_flow(data, env={}))


def test_route_targets_must_exist(tmp_path: Path) -> None:
    data = flow_file(tmp_path / "log.jsonl", [{"match": BETA, "next": "bb"}])
    with pytest.raises(FlowError, match=r"sources\.http\.next\.0\.next: no transformer named 'bb'"):
        build_flow(resolve_flow(data, env={}))
