"""Connection limits of the http source, over real sockets against the real server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.cli_helpers import DEMO_FLOW, run_flows

# -- settings -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "errors"),
    [
        (
            {
                "maxHeaderSize": 100,
                "requestTimeout": "soon",
                "keepAliveTimeout": 0,
                "maxConnections": -1,
            },
            [
                "maxHeaderSize: Input should be greater than or equal to 1024 (got 100)",
                "requestTimeout: Input should be a valid integer, unable to parse string as an"
                ' integer (got "soon")',
                "keepAliveTimeout: Input should be greater than or equal to 1 (got 0)",
                "maxConnections: Input should be greater than or equal to 1 (got -1)",
            ],
        ),
        (
            {"headersTimeout": 40_000},
            ["headersTimeout: must not be longer than requestTimeout (30000 ms) (got 40000)"],
        ),
        (
            {"headersTimeout": 0, "requestTimeout": 3_600_001},
            [
                "requestTimeout: Input should be less than or equal to 3600000 (got 3600001)",
                "headersTimeout: Input should be greater than or equal to 1 (got 0)",
            ],
        ),
    ],
)
def test_bad_limit_settings_are_named_with_the_reason(
    tmp_path: Path, settings: dict[str, Any], errors: list[str]
) -> None:
    data = json.loads(DEMO_FLOW.read_text())
    data["flows"]["default"]["sources"]["http"]["config"]["settings"].update(settings)
    path = tmp_path / "bad.flow.json"
    path.write_text(json.dumps(data))
    result = run_flows("validate", str(path))
    assert result.returncode == 1
    prefix = "flows: error: flows.default.sources.http.config.settings."
    assert result.stderr.splitlines() == [prefix + error for error in errors]
