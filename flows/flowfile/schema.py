"""The JSON Schema of flow files, so editors can complete and check them.

Built from the same pydantic models that validate a flow, with each known
package's settings model attached by ``package`` name.
"""

from __future__ import annotations

from typing import Any

from collector.collector import CollectorConfig
from collector.registry import GROUPS, aliases_of, available, load_package
from flows.flowfile.config import FlowFile
from flows.flowfile.steps import CONFIG_MODELS


def flow_file_schema() -> dict[str, Any]:
    """A JSON Schema (draft 2020-12) for flow files, per-package settings included."""
    schema = FlowFile.model_json_schema(by_alias=True)
    defs = schema.setdefault("$defs", {})
    defs["CollectorConfig"] = _inline(CollectorConfig.model_json_schema(by_alias=True), defs)
    flow = defs["FlowSpec"]["properties"]
    flow["collector"] = {"$ref": "#/$defs/CollectorConfig"}
    for kind, group in GROUPS.items():
        step = flow[kind]["additionalProperties"]
        flow[kind]["additionalProperties"] = {"allOf": [step, *_package_branches(group, defs)]}
    for kind, model in CONFIG_MODELS.items():
        defs[model.__name__] = _inline(model.model_json_schema(by_alias=True), defs)
        flow[kind]["additionalProperties"]["allOf"].append(
            {"properties": {"config": {"$ref": f"#/$defs/{model.__name__}"}}}
        )
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "walkeros-flows flow file"
    return schema


def _inline(model_schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    defs.update(model_schema.pop("$defs", {}))
    return model_schema


def _package_branches(group: str, defs: dict[str, Any]) -> list[dict[str, Any]]:
    """One if/then per installed package of the group: its settings model by ``package``."""
    known = aliases_of(group)
    branches = []
    for name in available(group):
        settings_model = load_package(name, group).Settings
        key = f"{settings_model.__name__}"
        defs[key] = _inline(settings_model.model_json_schema(by_alias=True), defs)
        packages = [name] + [a for a, n in known.items() if n == name]
        branches.append(
            {
                "if": {"properties": {"package": {"enum": packages}}, "required": ["package"]},
                "then": {
                    "properties": {
                        "config": {"properties": {"settings": {"$ref": f"#/$defs/{key}"}}}
                    }
                },
            }
        )
    return branches
