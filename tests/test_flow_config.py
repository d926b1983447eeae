"""Flow files: shape, references, per-package settings, JSON paths in every error."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from flows.flowfile.bundle import make_bundle
from flows.flowfile.config import FlowError, read_flow_file, resolve_flow
from flows.flowfile.schema import flow_file_schema
from flows.graph import build_flow, preview

EXAMPLES = Path(__file__).resolve().parents[1] / "flows" / "examples"
DEMO = EXAMPLES / "shop.flow.json"


def demo() -> dict[str, Any]:
    return copy.deepcopy(read_flow_file(DEMO))


def errors_of(data: dict[str, Any], env: dict[str, str] | None = None, **kwargs: Any) -> list[str]:
    with pytest.raises(FlowError) as caught:
        resolve_flow(data, env=env if env is not None else {}, **kwargs)
    return caught.value.errors


def segment_settings(data: dict[str, Any]) -> dict[str, Any]:
    return data["flows"]["default"]["destinations"]["segment"]["config"]["settings"]  # type: ignore[no-any-return]


def test_the_demo_flow_resolves_with_defaults() -> None:
    resolved = resolve_flow(demo(), env={})
    settings = resolved.spec["destinations"]["segment"]["config"]["settings"]
    assert settings["host"] == "http://127.0.0.1:9010"
    assert settings["writeKey"] == "demo-write-key"
    flow = build_flow(resolved)
    assert [a.id for a in flow.collector.destinations] == ["segment", "log"]
    assert list(flow.sources) == ["http"]


def test_env_overrides_defaults() -> None:
    resolved = resolve_flow(demo(), env={"SEGMENT_HOST": "https://events.eu1.segmentapis.com"})
    assert resolved.spec["destinations"]["segment"]["config"]["settings"]["host"] == (
        "https://events.eu1.segmentapis.com"
    )


def test_wrong_setting_type_names_the_full_json_path() -> None:
    data = demo()
    segment_settings(data)["flushAt"] = "often"
    lines = errors_of(data)
    assert any(
        line.startswith("flows.default.destinations.segment.config.settings.flushAt:")
        for line in lines
    ), lines


def test_unknown_key_suggests_the_close_name() -> None:
    data = demo()
    segment_settings(data)["flushAtt"] = 10
    lines = errors_of(data)
    assert any("flushAtt" in line and 'did you mean "flushAt"' in line for line in lines), lines


def test_unknown_package_lists_what_exists() -> None:
    data = demo()
    data["flows"]["default"]["destinations"]["segment"]["package"] = "segmnt"
    (line,) = errors_of(data)
    assert line.startswith("flows.default.destinations.segment.package:")
    # after the path: the name that was not found, and the installed ones to choose from
    reason = line.removeprefix("flows.default.destinations.segment.package:")
    assert "'segmnt'" in reason
    assert "use one of: api, demo, log, segment, or an import path module:attr" in reason


def test_walkeros_package_names_are_aliases() -> None:
    data = demo()
    flow = data["flows"]["default"]
    flow["destinations"]["segment"]["package"] = "@walkeros/server-destination-segment"
    flow["sources"]["http"]["package"] = "@walkeros/server-source-express"
    assert build_flow(resolve_flow(data, env={})).collector.destinations[0].id == "segment"


def test_missing_env_without_default_names_variable_and_place() -> None:
    data = demo()
    segment_settings(data)["writeKey"] = "$env.SEGMENT_WRITE_KEY"
    (line,) = errors_of(data)
    assert "SEGMENT_WRITE_KEY" in line
    assert "flows.default.destinations.segment.config.settings.writeKey" in line


def test_mapping_errors_name_the_rule_path() -> None:
    data = demo()
    mapping = data["flows"]["default"]["destinations"]["segment"]["config"]["mapping"]
    mapping["product"]["view"]["data"] = {"mpa": {}}
    lines = errors_of(data)
    assert any(
        "flows.default.destinations.segment.config.mapping.product.view.data" in line
        for line in lines
    ), lines


def test_several_flows_need_a_choice() -> None:
    data = demo()
    data["flows"]["staging"] = copy.deepcopy(data["flows"]["default"])
    assert resolve_flow(data, env={}).name == "default"
    del data["flows"]["default"]
    data["flows"]["prod"] = copy.deepcopy(data["flows"]["staging"])
    (line,) = errors_of(data)
    assert "--flow" in line
    assert resolve_flow(data, "prod", env={}).name == "prod"


def test_unsupported_version_and_bad_json(tmp_path: Path) -> None:
    data = demo()
    data["version"] = 2
    (line,) = errors_of(data)
    assert line.startswith("version:")
    broken = tmp_path / "broken.json"
    broken.write_text('{"version": 4,\n "flows": }')
    with pytest.raises(FlowError, match=r"broken.json: invalid JSON at line 2 column"):
        read_flow_file(broken)
    nan = tmp_path / "nan.json"
    nan.write_text('{"version": 4, "flows": {}, "variables": {"x": NaN}}')
    with pytest.raises(FlowError, match="NaN"):
        read_flow_file(nan)


def test_bundle_keeps_env_references_and_never_secret_values() -> None:
    secret = "sk-live-do-not-leak-1234"
    data = demo()
    bundle = make_bundle(data, "shop.flow.json", env={"SEGMENT_WRITE_KEY": secret})
    text = json.dumps(bundle)
    assert secret not in text
    settings = bundle["flows"]["default"]["destinations"]["segment"]["config"]["settings"]
    assert settings["writeKey"] == "__WALKEROS_ENV:SEGMENT_WRITE_KEY:demo-write-key"
    assert bundle["bundle"]["packages"]["walkeros-flows"]
    assert "variables" not in bundle["flows"]["default"]
    resolved = resolve_flow(bundle, env={"SEGMENT_WRITE_KEY": secret})
    assert resolved.spec["destinations"]["segment"]["config"]["settings"]["writeKey"] == secret


def test_bundle_builds_without_the_secret_set_at_build_time() -> None:
    data = demo()
    segment_settings(data)["writeKey"] = "$env.SEGMENT_WRITE_KEY"
    bundle = make_bundle(data, "shop.flow.json", env={})
    settings = bundle["flows"]["default"]["destinations"]["segment"]["config"]["settings"]
    assert settings["writeKey"] == "__WALKEROS_ENV:SEGMENT_WRITE_KEY"


def test_schema_describes_segment_settings_and_is_committed() -> None:
    schema = flow_file_schema()
    assert "writeKey" in schema["$defs"]["SegmentSettings"]["properties"]
    committed = json.loads((EXAMPLES / "flow.schema.json").read_text())
    assert committed == json.loads(json.dumps(schema)), (
        "flows/examples/flow.schema.json is stale: run `flows schema -o flows/examples/flow.schema.json`"
    )


EVENTS = EXAMPLES / "events"


def test_preview_of_the_example_journey_matches_the_shop_mapping() -> None:
    flow = build_flow(resolve_flow(demo(), env={}))
    journey = json.loads((EVENTS / "journey.json").read_text())
    every = [line for raw in journey for line in preview(flow, raw)]
    lines = [line for line in every if line.get("destination") != "log"]
    assert [line["event"] for line in every if line.get("destination") == "log"] == [
        raw["name"] for raw in journey
    ]
    summary = [(m.get("type"), m.get("event") or m.get("name"), m["messageId"]) for m in lines]
    assert summary == [
        ("page", "Documentation", "1700000000000-page-view-page"),
        ("track", "Product Viewed", "1700000001000-product-view-track"),
        ("identify", None, "1700000002000-user-login-identify"),
        ("track", "Order Completed", "1700000003000-order-complete-track"),
    ]
    order = lines[-1]
    assert order["userId"] == "us3r"
    assert order["properties"]["products"] == [
        {"product_id": "ers", "name": "Everyday Ruck Snack", "price": 420, "quantity": 1},
        {"product_id": "cc", "name": "Cool Cap", "price": 42, "quantity": 2},
    ]
    assert order["context"]["consent"]["categoryPreferences"] == {
        "Analytics": True,
        "Advertising": True,
    }
    assert order["integrations"] == {"All": True}
    identify = lines[2]
    assert identify["traits"] == {
        "email": "jane@example.com",
        "name": "Jane Doe",
        "plan": "premium",
    }
