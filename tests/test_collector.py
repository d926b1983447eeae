"""The collector over the public API: enrichment, consent gating, rules, failures, log output."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from collector.collector import (
    Collector,
    DestinationSetupError,
    Skipped,
    build_destination,
)
from collector.destination import Destination, PushContext
from collector.event import EventValidationError
from collector.paths import UNDEFINED
from collector.registry import PackageNotFoundError, load_package


class RecorderSettings(BaseModel):
    fail: bool = False


class Recorder(Destination[RecorderSettings]):
    """A destination that keeps what it receives, to assert on it."""

    type = "recorder"
    Settings = RecorderSettings

    def __init__(self, settings: RecorderSettings, *, destination_id: str | None = None) -> None:
        super().__init__(settings, destination_id=destination_id)
        self.received: list[tuple[Mapping[str, Any], PushContext]] = []

    def push(self, event: Mapping[str, Any], context: PushContext) -> Skipped | None:
        if self.settings.fail:
            raise RuntimeError("boom")
        self.received.append((event, context))
        return None


def recorder(config: Mapping[str, Any] | None = None, name: str = "rec") -> Any:
    return build_destination(name, Recorder, config or {})


def test_push_enriches_with_globals_user_consent_custom_count() -> None:
    rec = recorder()
    collector = Collector(
        {
            "globals": {"env": "prod", "lang": "en"},
            "consent": {"functional": True},
            "user": {"device": "d1"},
            "custom": {"k": 1},
        },
        [rec],
    )
    first = collector.push({"name": "page view", "globals": {"lang": "de"}, "user": {"id": "u"}})
    second = collector.push({"name": "page view", "consent": {"functional": False}})
    assert first.event["globals"] == {"env": "prod", "lang": "de"}
    assert first.event["user"] == {"device": "d1", "id": "u"}
    assert first.event["consent"] == {"functional": True}
    assert first.event["custom"] == {"k": 1}
    assert (first.event["count"], second.event["count"]) == (1, 2)
    assert second.event["consent"] == {"functional": False}
    assert first.outcomes == {"rec": "sent"}
    assert len(rec.destination.received) == 2


def test_invalid_event_raises_and_reaches_no_destination() -> None:
    rec = recorder()
    collector = Collector(None, [rec])
    with pytest.raises(EventValidationError):
        collector.push({"name": "noaction"})
    assert rec.destination.received == []


def test_destination_consent_gates_and_counts() -> None:
    gated = recorder({"consent": {"marketing": True}}, "gated")
    open_ = recorder({}, "open")
    collector = Collector({"consent": {"functional": True}}, [gated, open_])
    denied = collector.push({"name": "page view"})
    granted = collector.push({"name": "page view", "consent": {"marketing": True}})
    assert denied.outcomes == {"gated": Skipped("consent"), "open": "sent"}
    assert granted.outcomes == {"gated": "sent", "open": "sent"}
    assert gated.stats.skipped == {"consent": 1}
    assert gated.stats.sent == 1


def test_rule_mapping_reaches_the_destination() -> None:
    rec = recorder(
        {
            "data": {"map": {"page": "globals.pagegroup"}},
            "mapping": {
                "product": {
                    "view": {"name": "Product Viewed", "data": {"map": {"id": "data.id"}}},
                    "*": {"ignore": True},
                }
            },
        }
    )
    collector = Collector({"globals": {"pagegroup": "shop"}}, [rec])
    result = collector.push({"name": "product view", "data": {"id": "p1"}})
    ignored = collector.push({"name": "product hover"})
    unmapped = collector.push({"name": "page view"})
    event, context = rec.destination.received[0]
    assert event["name"] == "Product Viewed"
    assert context.data == {"page": "shop", "id": "p1"}
    assert context.rule is not None
    assert context.rule.key == "product view"
    assert result.event["name"] == "product view", "the shared event is not renamed"
    assert ignored.outcomes == {"rec": Skipped("ignore")}
    assert unmapped.outcomes == {"rec": "sent"}
    assert rec.destination.received[1][1].data == {"page": "shop"}


def test_rule_consent_skips_the_event() -> None:
    rec = recorder({"mapping": {"order": {"complete": {"consent": {"marketing": True}}}}})
    collector = Collector(None, [rec])
    assert collector.push({"name": "order complete"}).outcomes == {"rec": Skipped("consent")}
    ok = collector.push({"name": "order complete", "consent": {"marketing": True}})
    assert ok.outcomes == {"rec": "sent"}


def test_a_failing_destination_does_not_affect_the_others() -> None:
    bad = build_destination("bad", Recorder, {"settings": {"fail": True}})
    good = recorder()
    collector = Collector(None, [bad, good])
    result = collector.push({"name": "page view"})
    assert result.outcomes == {"bad": "failed", "rec": "sent"}
    assert bad.stats.failed == 1
    assert len(good.destination.received) == 1


def test_setup_errors_name_the_config_path() -> None:
    with pytest.raises(DestinationSetupError) as caught:
        build_destination("rec", Recorder, {"settings": {"fail": "maybe"}})
    assert caught.value.path == "destinations.rec.config.settings.fail"
    with pytest.raises(DestinationSetupError) as caught:
        build_destination("rec", Recorder, {"mapping": {"page": {"view": {"nmae": "x"}}}})
    assert caught.value.path.startswith("destinations.rec.config.mapping.page.view")
    with pytest.raises(DestinationSetupError) as caught:
        build_destination("rec", Recorder, {"data": {"map": {"a": {"fn": "no.such.module:f"}}}})
    assert caught.value.path == "destinations.rec.config.data.map.a.fn"
    assert "no.such.module" in caught.value.reason


def test_destinations_are_found_by_entry_point_alias_and_import_path() -> None:
    assert load_package("log").type == "log"
    assert load_package("segment").type == "segment"
    assert load_package("@walkeros/server-destination-segment").type == "segment"
    assert load_package("tests.test_collector:Recorder") is Recorder
    with pytest.raises(PackageNotFoundError, match="unknown destination package 'nope'"):
        load_package("nope")


def test_log_destination_writes_selected_fields_as_json_lines(tmp_path: Path) -> None:
    out = tmp_path / "events.jsonl"
    log = build_destination(
        "log",
        "log",
        {
            "settings": {"path": str(out), "fields": ["name", "user.id", "data.missing"]},
            "data": {"map": {"title": "data.title"}},
        },
    )
    collector = Collector(None, [log])
    collector.start()
    collector.push({"name": "page view", "user": {"id": "u1"}, "data": {"title": "Home"}})
    collector.shutdown(1)
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert lines == [{"name": "page view", "user.id": "u1", "data_mapped": {"title": "Home"}}]


def test_push_context_reports_missing_data_as_undefined() -> None:
    rec = recorder()
    Collector(None, [rec]).push({"name": "page view"})
    assert rec.destination.received[0][1].data is UNDEFINED
