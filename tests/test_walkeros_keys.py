"""walkerOS v4 keys that change what is sent, each seen working on the real pipeline."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import httpx
import pytest

from flows.cli.main import main
from flows.flowfile.config import FlowError, resolve_flow
from flows.graph import build_flow, preview
from tests.http_helpers import serving_source


def flow(
    destinations: dict[str, Any], collector: dict[str, Any] | None = None, **source: Any
) -> dict[str, Any]:
    return {
        "version": 4,
        "flows": {
            "default": {
                "config": {"platform": "server", "settings": {}, "bundle": {"packages": {}}},
                "sources": {
                    "http": {
                        "package": "@walkeros/server-source-express@3.1.0",
                        "import": "sourceExpress",
                        "primary": True,
                        "config": {"settings": {"host": "127.0.0.1", **source}},
                    }
                },
                "destinations": destinations,
                "collector": collector or {},
            }
        },
    }


def log_to(path: Path, **config: Any) -> dict[str, Any]:
    return {"package": "log", "config": {"settings": {"path": str(path)}, **config}}


def test_disabled_destinations_are_left_out_and_logger_levels_apply(tmp_path: Path) -> None:
    data = flow(
        {
            "on": log_to(tmp_path / "on.jsonl", logger={"level": "warning"}),
            "off": log_to(tmp_path / "off.jsonl", disabled=True),
        }
    )
    built = build_flow(resolve_flow(data, env={}))
    assert [a.id for a in built.collector.destinations] == ["on"]
    assert built.destination("on").destination.logger.level == logging.WARNING


def test_collector_keys_globals_static_and_tagging_reach_the_event(tmp_path: Path) -> None:
    data = flow(
        {"log": log_to(tmp_path / "log.jsonl")},
        collector={
            "run": True,
            "name": "shop",
            "tagging": 7,
            "globalsStatic": {"env": "prod", "region": "eu"},
            "globals": {"region": "us"},
        },
    )
    built = build_flow(resolve_flow(data, env={}))
    event = built.collector.prepare({"name": "page view"})
    assert event["globals"] == {"env": "prod", "region": "us"}, "globals win over static ones"
    assert event["version"] == {"tagging": 7}


def test_express_paths_and_health_check_are_served(tmp_path: Path) -> None:
    data = flow(
        {"log": log_to(tmp_path / "log.jsonl")},
        paths=["/v1/events", {"path": "/track", "methods": ["POST"]}],
        healthCheck=False,
    )
    built = build_flow(resolve_flow(data, env={}))
    with serving_source(built.collector, built.sources["http"]) as url:
        for path in ("/collect", "/v1/events", "/track/"):
            answer = httpx.post(url + path, json={"name": "page view", "id": path})
            assert answer.status_code == 200, (path, answer.text)
        assert httpx.get(url + "/health").status_code == 404, "healthCheck false switches it off"
    logged = [json.loads(line)["id"] for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert logged == ["/collect", "/v1/events", "/track/"]


def test_destination_batch_becomes_the_api_destinations_own_batch() -> None:
    data = flow(
        {
            "api": {
                "package": "@walkeros/server-destination-api",
                "config": {
                    "settings": {"url": "http://127.0.0.1:9/in"},
                    "batch": {"size": 5, "wait": 50},
                },
            }
        }
    )
    built = build_flow(resolve_flow(data, env={}))
    settings = built.destination("api").destination.settings
    assert (settings.batch.size, settings.batch.wait) == (5, 50)  # type: ignore[attr-defined]


def test_store_settings_take_walkeros_store_references_as_well_as_ids() -> None:
    """walkerOS writes ``$store.ID`` where a step wants a store; the settings here take the id."""
    segment = {
        "package": "segment",
        "config": {"settings": {"writeKey": "wk", "dedupStore": "$store.shared"}},
        "cache": {"store": "$store.shared", "rules": [{"key": ["event.id"], "ttl": 60}]},
    }
    data = flow({"segment": segment})
    data["flows"]["default"]["stores"] = {"shared": {"package": "@walkeros/store-memory"}}
    built = build_flow(resolve_flow(data, env={}))
    active = built.destination("segment")
    assert active.destination.settings.dedup_store == "shared"  # type: ignore[attr-defined]
    assert active.destination.shared is not None, "identify/group decided in the store"  # type: ignore[attr-defined]
    assert active.cache is not None
    assert active.cache.store is built.stores["shared"]
    segment["config"]["settings"]["dedupStore"] = "$store.sharde"
    with pytest.raises(
        FlowError, match=r'Unknown store "\$store.sharde".*did you mean "\$store.shared"'
    ):
        build_flow(resolve_flow(data, env={}))


def test_keys_without_effect_here_are_warned_about_by_validate(tmp_path: Path, capsys: Any) -> None:
    data = flow({"log": log_to(tmp_path / "l.jsonl", queueMax=10, batch=5)})
    data["flows"]["default"]["sources"]["http"]["cache"] = {
        "rules": [{"key": ["ingest.path"], "ttl": 5}]
    }
    file = tmp_path / "flow.json"
    file.write_text(json.dumps(data))
    assert main(["validate", str(file)]) == 0
    err = capsys.readouterr().err
    assert "flows.default.destinations.log.config.queueMax: accepted for walkerOS, no effect" in err
    assert "flows.default.destinations.log.config.batch: accepted for walkerOS" in err
    assert "flows.default.sources.http.cache: accepted for walkerOS, no effect" in err


def test_a_typo_in_a_step_config_key_is_an_error_with_a_suggestion(tmp_path: Path) -> None:
    data = flow({"log": {"package": "log", "config": {"mappnig": {}}}})
    with pytest.raises(FlowError) as raised:
        resolve_flow(data, env={})
    assert (
        'flows.default.destinations.log.config.mappnig: unknown key "mappnig"; did you mean "mapping"?'
        in str(raised.value)
    )


def test_flows_push_goes_through_the_primary_sources_chain(tmp_path: Path) -> None:
    data = flow({"log": log_to(tmp_path / "log.jsonl")})
    data["flows"]["default"]["transformers"] = {
        "filter": {"code": {"push": "tests.user_transformers:drop_internal"}}
    }
    data["flows"]["default"]["sources"]["http"]["next"] = "filter"
    built = build_flow(resolve_flow(data, env={}))
    [stopped] = preview(built, {"name": "internal ping", "id": "i1"})
    assert stopped == {
        "destination": "transformers",
        "skipped": "stopped by a transformer of the source chain",
        "event": "internal ping",
        "id": "i1",
    }
    assert preview(built, {"name": "page view"})[0]["event"] == "page view"


def test_context_pair_paths_resolve_in_flows_push(tmp_path: Path) -> None:
    """``context.shopping.0`` reads the value of a ``[value, order]`` pair on the real pipeline
    (the collector turns pairs into tuples; dot paths index them as lists)."""
    from tests.cli_helpers import run_flows

    data = flow(
        {
            "segment": {
                "package": "segment",
                "config": {
                    "settings": {"writeKey": "wk-context-0123456789"},
                    "mapping": {
                        "product": {
                            "view": {
                                "name": "Product Viewed",
                                "data": {
                                    "map": {"step": "context.shopping.0", "n": "context.shopping.1"}
                                },
                            }
                        }
                    },
                },
            }
        }
    )
    file = tmp_path / "flow.json"
    file.write_text(json.dumps(data))
    event = tmp_path / "event.json"
    event.write_text(
        json.dumps(
            {"name": "product view", "user": {"id": "u"}, "context": {"shopping": ["detail", 2]}}
        )
    )
    result = run_flows("push", str(file), "--event", str(event))
    assert result.returncode == 0, result.stderr
    [track] = [json.loads(line) for line in result.stdout.splitlines()]
    assert track["properties"] == {"step": "detail", "n": 2}
