"""The JSON Schema of flow files, so editors can complete and check them.

Built from the same pydantic models that validate a flow, with each known
package's settings model attached by ``package`` name.
"""

from __future__ import annotations

from typing import Any

from collector.collector import CollectorConfig
from collector.destination import DestinationConfig
from collector.registry import ALIASES, DESTINATION_GROUP, SOURCE_GROUP, available, load_package
from flows.config import FlowFile


def flow_file_schema() -> dict[str, Any]:
    """A JSON Schema (draft 2020-12) for flow files, per-package settings included."""
    schema = FlowFile.model_json_schema(by_alias=True)
    defs = schema.setdefault("$defs", {})
    defs["DestinationConfig"] = _inline(DestinationConfig.model_json_schema(by_alias=True), defs)
    defs["CollectorConfig"] = _inline(CollectorConfig.model_json_schema(by_alias=True), defs)
    flow = defs["FlowSpec"]["properties"]
    flow["collector"] = {"$ref": "#/$defs/CollectorConfig"}
    flow["destinations"]["additionalProperties"] = _package_schema(DESTINATION_GROUP, defs, True)
    flow["sources"]["additionalProperties"] = _package_schema(SOURCE_GROUP, defs, False)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "walkeros-flows flow file"
    return schema


def _inline(model_schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    defs.update(model_schema.pop("$defs", {}))
    return model_schema


def _package_schema(group: str, defs: dict[str, Any], destination: bool) -> dict[str, Any]:
    names = available(group)
    aliases = [alias for alias, name in ALIASES.items() if name in names]
    branches = []
    for name in names:
        settings_model = load_package(name, group).Settings
        key = f"{settings_model.__name__}"
        defs[key] = _inline(settings_model.model_json_schema(by_alias=True), defs)
        packages = [name] + [a for a, n in ALIASES.items() if n == name]
        branches.append(
            {
                "if": {"properties": {"package": {"enum": packages}}},
                "then": {
                    "properties": {
                        "config": {"properties": {"settings": {"$ref": f"#/$defs/{key}"}}}
                    }
                },
            }
        )
    config: dict[str, Any] = (
        {"$ref": "#/$defs/DestinationConfig"}
        if destination
        else {
            "type": "object",
            "properties": {"settings": {"type": "object"}},
            "additionalProperties": False,
        }
    )
    return {
        "type": "object",
        "properties": {
            "package": {
                "type": "string",
                "description": "Entry-point name, walkerOS alias or module:attr",
                "examples": names + aliases,
            },
            "config": config,
        },
        "required": ["package"],
        "additionalProperties": False,
        "allOf": branches,
    }
