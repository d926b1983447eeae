"""Transformer chains as walkerOS runs them, through the real http source and Segment.

A source's ``next`` chain runs on every event before any destination; a
destination's ``before`` chain runs for it alone; a string is followed through
each transformer's own ``next``; ``False`` stops the event on that path; a
strict refusal is answered as rejected; a transformer that raises has the
event written to its dead-letter file, so an accepted event is never lost.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from collector.chain import ChainConfigError, chain_ids
from destination_segment.receiver import SegmentReceiver
from flows.flowfile.config import FlowError, resolve_flow
from flows.graph import build_flow
from tests.http_helpers import serving_source
from tests.segment_helpers import WRITE_KEY
from tests.shared_fixtures import load_fixture


def code(name: str, next_: Any = None) -> dict[str, Any]:
    step: dict[str, Any] = {"code": {"type": name, "push": f"tests.user_transformers:{name}"}}
    if next_ is not None:
        step["next"] = next_
    return step


def flow_file(
    receiver_url: str,
    transformers: dict[str, Any],
    source_next: Any = None,
    segment_before: Any = None,
    log_path: Path | None = None,
) -> dict[str, Any]:
    source: dict[str, Any] = {"package": "http", "config": {"settings": {"host": "127.0.0.1"}}}
    if source_next is not None:
        source["next"] = source_next
    segment: dict[str, Any] = {
        "package": "segment",
        "config": {
            "settings": {
                "writeKey": WRITE_KEY,
                "host": receiver_url,
                "flushInterval": 20,
                "userId": "user.id",
            }
        },
    }
    if segment_before is not None:
        segment["before"] = segment_before
    destinations: dict[str, Any] = {"segment": segment}
    if log_path is not None:
        destinations["log"] = {"package": "log", "config": {"settings": {"path": str(log_path)}}}
    return {
        "version": 4,
        "flows": {
            "default": {
                "config": {"platform": "server"},
                "sources": {"http": source},
                "transformers": transformers,
                "destinations": destinations,
            }
        },
    }


def events(*names: str) -> list[dict[str, Any]]:
    return [{"name": name, "id": f"e{i}", "user": {"id": "u1"}} for i, name in enumerate(names)]


def test_string_chains_follow_next_links_and_lists_end_the_walk() -> None:
    links = {"a": "b", "b": ["c", "d"], "c": "a", "d": None}
    assert chain_ids("a", links, "next") == ["a", "b", "c", "d"]
    assert chain_ids(["d", "c"], links, "next") == ["d", "c"], "a list is used as it is"
    assert chain_ids("c", {"c": "a", "a": "c"}, "next") == ["c", "a"], "a repeat ends the walk"
    with pytest.raises(ChainConfigError, match=r'next: no transformer named "bb"|did you mean'):
        chain_ids("bb", links, "next")


def test_the_fixture_semantics_name_what_is_implemented() -> None:
    semantics = load_fixture("walkeros-transformer-validate-examples.json")["semantics"]
    assert "walked through each transformer own config.next" in semantics["source_next"]
    assert "runs after the collector" in semantics["destination_before"]


def test_source_chain_runs_in_order_and_drops_reach_no_destination(tmp_path: Path) -> None:
    log = tmp_path / "log.jsonl"
    with SegmentReceiver() as receiver:
        data = flow_file(
            receiver.url,
            {
                "filter": code("drop_internal", "first"),
                "first": code("tag", "second"),
                "second": code("tag"),
            },
            source_next="filter",
            log_path=log,
        )
        flow = build_flow(resolve_flow(data, env={}))
        with serving_source(flow.collector, flow.sources["http"]) as url:
            answer = httpx.post(
                url + "/collect",
                json={"batch": events("page view", "internal ping", "order complete")},
            )
            assert answer.status_code == 200, answer.text
            assert answer.json() == {"ok": True, "accepted": 3}
            tracks = receiver.wait_for(2, type="track")
            metrics = httpx.get(url + "/metrics").text
        assert [t["event"] for t in tracks] == ["page view", "order complete"]
        logged = [json.loads(line) for line in log.read_text().splitlines()]
        assert [line["name"] for line in logged] == ["page view", "order complete"]
        assert {line["globals"]["steps"] for line in logged} == {"first,second"}
        assert flow.transformers["filter"].stats.dropped == 1
        assert flow.transformers["second"].stats.changed == 2
        assert (
            'flows_transformer_events_total{outcome="dropped",transformer="filter"} 1.0' in metrics
        )
        assert (
            'flows_transformer_events_total{outcome="changed",transformer="second"} 2.0' in metrics
        )


def test_a_destination_before_chain_is_for_that_destination_alone(tmp_path: Path) -> None:
    log = tmp_path / "log.jsonl"
    with SegmentReceiver() as receiver:
        data = flow_file(
            receiver.url, {"filter": code("drop_internal")}, segment_before="filter", log_path=log
        )
        flow = build_flow(resolve_flow(data, env={}))
        with serving_source(flow.collector, flow.sources["http"]) as url:
            answer = httpx.post(
                url + "/collect", json={"batch": events("debug noise", "page view")}
            )
            assert answer.json() == {"ok": True, "accepted": 2}
            tracks = receiver.wait_for(1, type="track")
            segment = flow.destination("segment")
        assert [t["event"] for t in tracks] == ["page view"]
        assert segment.stats.skipped == {"transformer": 1}
        assert [json.loads(line)["name"] for line in log.read_text().splitlines()] == [
            "debug noise",
            "page view",
        ], "the log destination has no before chain: it gets both"


def test_transformers_see_the_request_as_ingest() -> None:
    with SegmentReceiver() as receiver:
        data = flow_file(
            receiver.url,
            {"look": code("record_ingest", "copy"), "copy": code("ingest_to_custom")},
            source_next="look",
        )
        data["flows"]["default"]["destinations"]["segment"]["config"]["mapping"] = {
            "*": {"*": {"data": {"map": {"seen": "custom"}}}}
        }
        flow = build_flow(resolve_flow(data, env={}))
        with serving_source(flow.collector, flow.sources["http"]) as url:
            httpx.post(
                url + "/collect", json=events("page view")[0], headers={"user-agent": "probe/1.0"}
            )
            [track] = receiver.wait_for(1, type="track")
    assert track["properties"]["seen"] == {
        "method": "POST",
        "path": "/collect",
        "userAgent": "probe/1.0",
        "seen_by": "look",
    }


def test_a_strict_refusal_is_answered_per_event_and_the_rest_is_taken() -> None:
    with SegmentReceiver() as receiver:
        data = flow_file(receiver.url, {"plan": code("refuse_tests")}, source_next="plan")
        flow = build_flow(resolve_flow(data, env={}))
        with serving_source(flow.collector, flow.sources["http"]) as url:
            answer = httpx.post(url + "/collect", json={"batch": events("test run", "page view")})
            [track] = receiver.wait_for(1, type="track")
    assert answer.status_code == 400
    body = answer.json()
    assert body["accepted"] == 1
    assert body["rejected"] == [
        {
            "index": 0,
            "errors": [{"path": "transformers.plan", "reason": "test events are not allowed here"}],
        }
    ]
    assert track["event"] == "page view"


def test_a_transformer_that_raises_dead_letters_the_event(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLOWS_DEAD_LETTER_DIR", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    with SegmentReceiver() as receiver:
        data = flow_file(receiver.url, {"bug": code("explode")}, source_next="bug")
        flow = build_flow(resolve_flow(data, env={}))
        with serving_source(flow.collector, flow.sources["http"]) as url:
            answer = httpx.post(url + "/collect", json=events("page view")[0])
        assert answer.status_code == 200, "accepted: the event is kept in the dead-letter file"
        assert receiver.messages() == []
    [written] = list(tmp_path.rglob("transformer.bug.events.jsonl"))
    [record] = [json.loads(line) for line in written.read_text().splitlines()]
    assert record["event"]["name"] == "page view"
    assert "transformer failed: KeyError" in record["reason"]
    assert flow.transformers["bug"].stats.failed == 1


def test_chain_errors_name_the_place() -> None:
    data = flow_file(
        "http://127.0.0.1:9", {"filter": code("drop_internal", "fingerprnt")}, "filter"
    )
    with pytest.raises(FlowError) as raised:
        build_flow(resolve_flow(data, env={}))
    assert str(raised.value).startswith(
        "transformers.filter.next: no transformer named 'fingerprnt'"
    )
    data = flow_file("http://127.0.0.1:9", {"filter": code("drop_internal")}, source_next="filtr")
    with pytest.raises(
        FlowError, match=r'flows.default.sources.http.next: .*did you mean "filter"'
    ):
        build_flow(resolve_flow(data, env={}))


def test_a_destination_cache_skips_duplicates_within_its_ttl() -> None:
    with SegmentReceiver() as receiver:
        data = flow_file(receiver.url, {})
        data["flows"]["default"]["destinations"]["segment"]["cache"] = {
            "rules": [{"key": ["event.id"], "ttl": 60}]
        }
        flow = build_flow(resolve_flow(data, env={}))
        with serving_source(flow.collector, flow.sources["http"]) as url:
            same = events("page view")[0]
            for _ in range(3):
                assert httpx.post(url + "/collect", json=same).status_code == 200
            httpx.post(url + "/collect", json={**same, "id": "other"})
            tracks = receiver.wait_for(2, type="track")
        assert [t["messageId"].split("-")[0] for t in tracks] == ["e0", "other"]
        assert flow.destination("segment").stats.skipped == {"duplicate": 2}


def flows_test_failing(
    data: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> str:
    """``flows test`` on ``data`` written to a file: it must exit 1; its table."""
    from flows.cli.main import main

    file = tmp_path / "flow.json"
    file.write_text(json.dumps(data))
    assert main(["test", str(file)]) == 1
    return capsys.readouterr().out


def test_flows_test_prints_a_diff_and_exits_1_on_a_failing_example(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = flow_file("http://127.0.0.1:9", {"filter": code("drop_internal")}, "filter")
    data["flows"]["default"]["transformers"]["filter"]["examples"] = {
        "drops-internal": {"in": {"name": "internal ping"}, "out": False},
        "keeps-pages": {"in": {"name": "page view"}, "out": {"name": "page viewed"}},
    }
    out = flows_test_failing(data, tmp_path, capsys)
    assert "transformers.filter  drops-internal  pass" in out
    assert "transformers.filter  keeps-pages     fail" in out
    assert '- "name": "page viewed"' in out
    assert '+ "name": "page view"' in out
    assert out.rstrip().endswith("1 passed, 1 failed, 0 skipped")


def test_a_destination_example_out_of_nothing_holds_only_when_nothing_is_sent(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """walkerOS writes ``out: []`` (Segment's examples) or ``out: false`` for "sends nothing"."""
    data = flow_file("http://127.0.0.1:9", {})
    segment = data["flows"]["default"]["destinations"]["segment"]
    segment["config"]["mapping"] = {"debug": {"*": {"ignore": True}}}
    segment["config"]["consent"] = {"analytics": True}
    user = {"id": "u1"}
    granted = {"analytics": True}
    segment["examples"] = {
        "ignored": {"in": {"name": "debug noise", "user": user, "consent": granted}, "out": []},
        "no-consent": {"in": {"name": "page view", "user": user}, "out": False},
        "sent": {"in": {"name": "page view", "user": user, "consent": granted}, "out": []},
    }
    out = flows_test_failing(data, tmp_path, capsys)
    assert "destinations.segment  ignored     pass" in out
    assert "destinations.segment  no-consent  pass" in out
    assert "destinations.segment  sent        fail" in out
    assert '+  "type": "track"' in out, "the diff shows the call that was not expected"


@pytest.mark.parametrize(
    "flow", sorted(Path(__file__).parents[1].glob("flows/examples/*.flow.json"))
)
def test_every_example_flow_passes_its_step_examples(
    flow: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from flows.cli.main import main

    assert main(["test", str(flow)]) == 0, capsys.readouterr().out
    out = capsys.readouterr().out
    assert " 0 failed" in out
    assert "passed" in out
