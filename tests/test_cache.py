"""Step caches: keys, ttl, namespaces, stores; what a hit does for each step; compile errors."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson
import pytest
from pydantic import BaseModel

from collector.cache import CacheConfigError, EventCache, compile_cache
from collector.cache_steps import DUPLICATE, CacheStop, cached_push, check_duplicate
from collector.collector import ActiveDestination
from collector.dead_letter import DeadLetterFile
from collector.destination import Destination, PushContext, Skipped
from collector.destinations.function import FunctionDestination, FunctionSettings
from collector.destinations.log import LogDestination, LogSettings
from collector.mapping import compile_mapping
from collector.store import Store
from collector.stores.memory import MemoryStore
from collector.transformer import Event, FunctionTransformer, TransformerContext
from tests.shared_fixtures import load_fixture


class Clock:
    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


def context(ingest: dict[str, Any] | None = None) -> TransformerContext:
    return TransformerContext(ingest=ingest or {}, logger=logging.getLogger("test"))


class Enricher:
    """A transformer's function that counts its calls and adds a field."""

    def __init__(self, result: Any = "copy") -> None:
        self.calls = 0
        self.result = result

    def __call__(self, event: Event, context: TransformerContext) -> Any:
        self.calls += 1
        if self.result == "copy":
            return {**event, "data": {**event.get("data", {}), "enriched": self.calls}}
        return self.result


def enrich_push(function: Enricher) -> Any:
    return FunctionTransformer(function, step_id="enrich").push


RULE = {"key": ["event.name", "event.data.id"], "ttl": 60}


# --- keys, rules, stores -------------------------------------------------------------------------


def test_the_key_joins_key_paths_from_event_and_ingest() -> None:
    store = MemoryStore()
    cache = compile_cache(
        {"store": "s", "rules": [{"key": ["event.name", "ingest.path", "event.n"], "ttl": 5}]},
        stores={"s": store},
    )
    probe = cache.probe({"name": "page view", "n": 1.0}, {"path": "/collect"})
    assert probe is not None
    assert (probe.key, probe.hit, probe.rule.ttl) == ("page view:/collect:1", False, 5.0)
    probe.remember({"stored": True})
    assert store.get("page view:/collect:1") == {"stored": True}
    assert cache.lookup({"name": "page view", "n": 1}, {"path": "/collect"}) == {"stored": True}


def test_namespace_prefixes_the_key_and_separates_steps_on_one_store() -> None:
    store = MemoryStore()
    first = compile_cache({"store": "s", "namespace": "a", "rules": [RULE]}, stores={"s": store})
    second = compile_cache({"store": "s", "namespace": "b", "rules": [RULE]}, stores={"s": store})
    same = compile_cache({"store": "s", "namespace": "a", "rules": [RULE]}, stores={"s": store})
    event = {"name": "order complete", "data": {"id": "o1"}}
    first.remember(event, None, {"from": "a"})
    assert store.get("a:order complete:o1") == {"from": "a"}
    assert second.lookup(event, None) is None
    assert same.lookup(event, None) == {"from": "a"}  # same store, key, namespace: one entry


def test_without_a_store_each_step_has_its_own_memory_store() -> None:
    first, second = compile_cache({"rules": [RULE]}), compile_cache({"rules": [RULE]})
    event = {"name": "e", "data": {"id": 1}}
    first.remember(event, None, {"x": 1})
    assert first.lookup(event, None) == {"x": 1}
    assert second.lookup(event, None) is None
    assert isinstance(first.store, MemoryStore)
    assert first.store_id is None


def test_the_first_matching_rule_decides_and_no_match_is_uncached() -> None:
    cache = compile_cache(
        {
            "rules": [
                {
                    "match": {"key": "event.name", "operator": "prefix", "value": "order"},
                    "key": ["event.data.id"],
                    "ttl": 10,
                },
                {
                    "match": {"key": "ingest.method", "operator": "eq", "value": "GET"},
                    "key": ["event.name"],
                    "ttl": 20,
                },
            ]
        }
    )
    order = cache.probe({"name": "order complete", "data": {"id": "o1"}}, {"method": "GET"})
    page = cache.probe({"name": "page view"}, {"method": "GET"})
    assert order is not None
    assert page is not None
    assert (order.key, order.rule.index, page.key, page.rule.index) == ("o1", 0, "page view", 1)
    assert cache.probe({"name": "page view"}, {"method": "POST"}) is None


def test_an_event_whose_key_paths_are_all_empty_is_not_cached() -> None:
    cache = compile_cache({"rules": [{"key": ["event.user.id", "event.user.session"], "ttl": 5}]})
    assert cache.probe({"name": "x", "user": {}}, None) is None
    cache.remember({"name": "x"}, None, {"v": 1})
    assert isinstance(cache.store, MemoryStore)
    assert len(cache.store) == 0
    partial = cache.probe({"user": {"session": "s1"}}, None)
    assert partial is not None
    assert partial.key == ":s1"


def test_an_entry_lives_for_the_rules_ttl() -> None:
    clock = Clock()
    cache = compile_cache(
        {"store": "s", "rules": [{**RULE, "ttl": 30}]}, stores={"s": MemoryStore(clock=clock)}
    )
    event = {"name": "e", "data": {"id": 1}}
    cache.remember(event, None, {"v": 1})
    clock.now += 29.9
    assert cache.lookup(event, None) == {"v": 1}
    clock.now += 0.2
    assert cache.lookup(event, None) is None
    assert cache.counters() == {"hits": 1, "misses": 1, "errors": 0}


class BrokenStore(Store[Any]):
    """A store whose backend is down: every call raises."""

    type = "broken"

    def get(self, key: str) -> Any | None:
        raise ConnectionError(f"refused for {key}")

    def set(self, key: str, value: Any, ttl: float | None = None) -> None:
        raise ConnectionError(f"refused for {key}")

    def delete(self, key: str) -> None:
        raise ConnectionError(f"refused for {key}")


def test_a_failing_store_runs_the_step_uncached_and_logs_no_event_data(
    caplog: pytest.LogCaptureFixture,
) -> None:
    cache = compile_cache({"store": "down", "rules": [RULE]}, stores={"down": BrokenStore(None)})
    enricher = Enricher()
    push = cached_push(enrich_push(enricher), cache)
    event = {"name": "secret-name", "data": {"id": "user@example.com"}}
    with caplog.at_level(logging.WARNING, logger="flows.cache"):
        first, second = push(event, context()), push(event, context())
    assert enricher.calls == 2
    assert isinstance(first, dict)
    assert first["data"]["enriched"] == 1
    assert isinstance(second, dict)
    assert cache.counters()["errors"] == 4
    assert "cache store down: get failed (ConnectionError)" in caplog.text
    assert "user@example.com" not in caplog.text
    assert "secret-name" not in caplog.text


# --- transformers --------------------------------------------------------------------------------


def test_a_transformer_hit_returns_the_stored_result_without_calling_push() -> None:
    enricher = Enricher()
    push = cached_push(enrich_push(enricher), compile_cache({"rules": [RULE]}))
    event = {"name": "product view", "data": {"id": "p1"}}
    first = push(event, context())
    second = push(dict(event), context())
    other = push({"name": "product view", "data": {"id": "p2"}}, context())
    assert enricher.calls == 2
    assert first == {"name": "product view", "data": {"id": "p1", "enriched": 1}}
    assert second == first
    assert isinstance(other, dict)
    assert other["data"] == {"id": "p2", "enriched": 2}
    assert event == {"name": "product view", "data": {"id": "p1"}}  # never changed in place


def test_stop_ends_the_chain_with_the_cached_event() -> None:
    enricher = Enricher()
    push = cached_push(enrich_push(enricher), compile_cache({"stop": True, "rules": [RULE]}))
    event = {"name": "page view", "data": {"id": "1"}}
    first = push(event, context())
    stopped = push(event, context())
    assert isinstance(first, dict)
    assert stopped == CacheStop(first)
    assert enricher.calls == 1


def test_an_unchanged_event_is_cached_as_it_came_and_a_stop_or_error_not_at_all() -> None:
    unchanged = Enricher(result=None)
    push = cached_push(enrich_push(unchanged), compile_cache({"rules": [RULE]}))
    event = {"name": "e", "data": {"id": 1}}
    assert push(event, context()) is None
    assert push({"name": "e", "data": {"id": 1}}, context()) == event
    assert unchanged.calls == 1

    dropping = Enricher(result=False)
    push = cached_push(enrich_push(dropping), compile_cache({"rules": [RULE]}))
    assert push(event, context()) is False
    assert push(event, context()) is False
    assert dropping.calls == 2

    calls = 0

    def failing(event: Event, context: TransformerContext) -> Event:
        nonlocal calls
        calls += 1
        raise ValueError("enrichment API down")

    push = cached_push(FunctionTransformer(failing).push, compile_cache({"rules": [RULE]}))
    for _ in range(2):
        with pytest.raises(ValueError, match="API down"):
            push(event, context())
    assert calls == 2


def test_the_key_is_the_one_the_event_came_in_with() -> None:
    """A transformer that writes to the ingest (validate does) does not move its cache entry."""

    def annotate(event: Event, context: TransformerContext) -> Event:
        context.ingest["path"] = "/changed"
        return {**event, "seen": True}

    cache = compile_cache({"rules": [{"key": ["ingest.path"], "ttl": 5}]})
    push = cached_push(FunctionTransformer(annotate).push, cache)
    push({"name": "e"}, context({"path": "/collect"}))
    assert cache.lookup({"name": "x"}, {"path": "/collect"}) == {"name": "e", "seen": True}
    assert cache.lookup({"name": "x"}, {"path": "/changed"}) is None


def test_update_changes_what_goes_on_never_what_is_stored() -> None:
    cache = compile_cache(
        {
            "rules": [
                {
                    **RULE,
                    "update": {
                        "context.cache": {"key": "cache.status"},
                        "id": "event.id",
                        "data.source": {"value": "cache"},
                    },
                }
            ]
        }
    )
    enricher = Enricher()
    push = cached_push(enrich_push(enricher), cache)
    miss = push({"id": "first", "name": "e", "data": {"id": 1}}, context())
    hit = push({"id": "second", "name": "e", "data": {"id": 1}}, context())
    assert miss == {
        "id": "first",
        "name": "e",
        "data": {"id": 1, "enriched": 1, "source": "cache"},
        "context": {"cache": "MISS"},
    }
    assert hit == {**miss, "id": "second", "context": {"cache": "HIT"}}
    probe = cache.probe({"name": "e", "data": {"id": 1}}, None)
    assert probe is not None
    assert probe.value == {"id": "first", "name": "e", "data": {"id": 1, "enriched": 1}}


def test_a_stored_value_that_is_not_an_event_is_a_miss_for_a_transformer() -> None:
    store = MemoryStore()
    shared = {"store": "s", "rules": [RULE]}
    destination_side = compile_cache(shared, stores={"s": store})
    transformer_side = compile_cache(shared, stores={"s": store})
    event = {"name": "e", "data": {"id": 1}}
    destination_side.remember(event, None, True)  # a dedup marker under the same key
    enricher = Enricher()
    result = cached_push(enrich_push(enricher), transformer_side)(event, context())
    assert enricher.calls == 1
    assert isinstance(result, dict)
    assert store.get("e:1") == result


# --- destinations --------------------------------------------------------------------------------


def cached_destination(
    destination: Destination[Any], tmp_path: Path, config: dict[str, Any]
) -> ActiveDestination:
    """``destination`` as a flow runs it (``ActiveDestination.deliver``) behind ``cache``."""
    active = ActiveDestination(
        destination,
        compile_mapping({}),
        dead_letter=DeadLetterFile(tmp_path / "events.jsonl", destination.id, key="event"),
    )
    active.cache = compile_cache(config)
    return active


def test_a_destination_hit_skips_the_push_as_a_duplicate(tmp_path: Path) -> None:
    path = tmp_path / "events.ndjson"
    log = LogDestination(LogSettings.model_validate({"path": str(path)}), destination_id="log")
    log.init()
    active = cached_destination(log, tmp_path, {"rules": [{"key": ["event.id"], "ttl": 300}]})
    outcomes = [
        active.deliver({"id": event_id, "name": "order complete"}, {})
        for event_id in ("o1", "o1", "o2", "o1")
    ]
    log.shutdown(1.0)
    assert outcomes == ["sent", DUPLICATE, "sent", DUPLICATE]
    assert DUPLICATE.reason == "duplicate"
    lines = [orjson.loads(line) for line in path.read_bytes().splitlines()]
    assert [line["id"] for line in lines] == ["o1", "o2"]
    assert active.cache is not None
    assert active.cache.counters() == {"hits": 2, "misses": 2, "errors": 0}
    assert active.stats.skipped == {"duplicate": 2}


def test_only_a_push_that_was_handed_on_marks_the_event_seen(tmp_path: Path) -> None:
    outcomes: list[Skipped | None] = [Skipped("no identity"), None]
    calls = 0

    def push(event: Mapping[str, Any], context: PushContext) -> Skipped | None:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise ConnectionError("down")
        return outcomes.pop(0)

    function = FunctionDestination(FunctionSettings(), destination_id="flaky", function=push)
    active = cached_destination(function, tmp_path, {"rules": [{"key": ["event.id"], "ttl": 300}]})
    assert active.deliver({"id": "a", "name": "page view"}, {}) == Skipped("no identity")
    assert active.deliver({"id": "a", "name": "page view"}, {}) == "failed", "dead-lettered"
    assert active.deliver({"id": "a", "name": "page view"}, {}) == "sent"
    assert active.deliver({"id": "a", "name": "page view"}, {}) is DUPLICATE
    assert calls == 3
    [dead] = (tmp_path / "events.jsonl").read_text().splitlines()
    assert orjson.loads(dead)["event"]["id"] == "a"


def test_check_duplicate_serves_the_stop_check_before_the_before_chain() -> None:
    cache = compile_cache({"stop": True, "rules": [{"key": ["event.id"], "ttl": 5}]})
    assert check_duplicate(cache, {"name": "no id"}, None) is None
    probe = check_duplicate(cache, {"id": "a"}, {"ip": "127.0.0.1"})
    assert probe is not None
    assert not isinstance(probe, Skipped)
    probe.remember(True)
    assert check_duplicate(cache, {"id": "a"}, None) is DUPLICATE


# --- compile errors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "path", "reason"),
    [
        ([], "cache", "must be an object"),
        ({"rules": []}, "cache.rules", "at least one rule"),
        ({}, "cache.rules", "at least one rule"),
        ({"rules": [RULE], "full": True}, "cache.full", "unknown key"),
        ({"rules": [RULE], "stpo": True}, "cache.stpo", 'did you mean "stop"'),
        ({"rules": [RULE], "stop": "yes"}, "cache.stop", "must be a boolean"),
        ({"rules": [RULE], "namespace": 3}, "cache.namespace", "must be a string"),
        ({"rules": [RULE], "store": "redis"}, "cache.store", "unknown store 'redis'"),
        ({"rules": [RULE], "store": 1}, "cache.store", "must be a store id"),
        ({"rules": ["x"]}, "cache.rules.0", "must be an object"),
        ({"rules": [{"key": ["a"], "ttl": 0}]}, "cache.rules.0.ttl", "must be > 0"),
        ({"rules": [RULE, {"key": ["a"], "ttl": -1}]}, "cache.rules.1.ttl", "must be > 0"),
        ({"rules": [{"key": ["a"]}]}, "cache.rules.0.ttl", "is required"),
        ({"rules": [{"key": ["a"], "ttl": "60"}]}, "cache.rules.0.ttl", "a number of seconds"),
        ({"rules": [{"key": ["a"], "ttl": True}]}, "cache.rules.0.ttl", "a number of seconds"),
        ({"rules": [{"key": ["a"], "ttl": float("inf")}]}, "cache.rules.0.ttl", "must be > 0"),
        ({"rules": [{"ttl": 5}]}, "cache.rules.0.key", "at least one dot path"),
        ({"rules": [{"key": "event.id", "ttl": 5}]}, "cache.rules.0.key", "a list"),
        ({"rules": [{"key": ["a", ""], "ttl": 5}]}, "cache.rules.0.key.1", "dot path"),
        ({"rules": [{"key": ["$["], "ttl": 5}]}, "cache.rules.0.key.0", "invalid JSONPath"),
        ({"rules": [{**RULE, "keys": ["a"]}]}, "cache.rules.0.keys", 'did you mean "key"'),
        (
            {"rules": [{**RULE, "match": {"key": "a", "operator": "is", "value": "x"}}]},
            "cache.rules.0.match.operator",
            "unknown operator 'is'",
        ),
        (
            {"rules": [{**RULE, "match": {"or": [{"key": "a", "operator": "gt", "value": "x"}]}}]},
            "cache.rules.0.match.or.0.value",
            "is not one",
        ),
        ({"rules": [{**RULE, "update": []}]}, "cache.rules.0.update", "path: value"),
        (
            {"rules": [{**RULE, "update": {"a": {"kye": "b"}}}]},
            "cache.rules.0.update.a",
            "kye",
        ),
        ({"rules": [{**RULE, "update": {"a..b": "x"}}]}, "cache.rules.0.update.a..b", "dot path"),
    ],
)
def test_compile_errors_name_the_path_and_the_reason(config: Any, path: str, reason: str) -> None:
    with pytest.raises(CacheConfigError) as raised:
        compile_cache(config, stores={"shared": MemoryStore()})
    assert raised.value.path.startswith(path)
    assert reason in raised.value.reason
    assert str(raised.value) == f"{raised.value.path}: {raised.value.reason}"


def test_an_unknown_store_lists_the_declared_ones_with_a_suggestion() -> None:
    with pytest.raises(CacheConfigError) as raised:
        compile_cache(
            {"store": "sesions", "rules": [RULE]},
            path="flows.server.transformers.enrich.cache",
            stores={"sessions": MemoryStore(), "assets": MemoryStore()},
        )
    assert str(raised.value) == (
        "flows.server.transformers.enrich.cache.store: unknown store 'sesions';"
        ' did you mean "sessions"? (declared: assets, sessions)'
    )
    with pytest.raises(CacheConfigError, match=r"\(no stores declared\)"):
        compile_cache({"store": "x", "rules": [RULE]})


def server_source_cache() -> EventCache:
    """The cache of walkerOS's complete example flow: GETs by method and path, X-Cache header."""
    flow = load_fixture("walkeros-flows/cli-flow-complete.json")
    config = flow["flows"]["server"]["sources"]["http"]["cache"]
    return compile_cache(config, path="flows.server.sources.http.cache", default_stop=True)


def test_sources_stop_by_default_and_other_steps_do_not() -> None:
    assert server_source_cache().stop is True
    assert compile_cache({"rules": [RULE]}).stop is False
    assert compile_cache({"rules": [RULE], "stop": False}, default_stop=True).stop is False


def test_a_validated_model_of_the_cache_compiles_as_what_was_written() -> None:
    class CacheModel(BaseModel):
        stop: bool = False
        rules: list[dict[str, Any]]

    cache = compile_cache(CacheModel.model_validate({"stop": True, "rules": [RULE]}))
    assert cache.stop is True
    assert cache.rules[0].ttl == 60.0
