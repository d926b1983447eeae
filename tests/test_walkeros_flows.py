"""The 15 real walkerOS v4 flow files (shared/fixtures/walkeros-flows) on this runtime.

Each server flow loads with only the destination packages that do not exist
here swapped for ``log``: ``flows validate`` passes, ``flows push`` shows an
order event, ``flows test`` runs its step examples. Each web flow is refused
with its platform named. ``cli-flow-complete`` flow ``server`` holds
JavaScript (``$code:``) and gets an error naming every place.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from collector.registry import DESTINATION_GROUP, PackageNotFoundError, load_package
from flows.cli.main import main
from tests.cli_helpers import EXAMPLES
from tests.shared_fixtures import SHARED_FIXTURES

FLOWS_DIR = SHARED_FIXTURES / "walkeros-flows"

SERVER_FLOWS = {
    "cli-flow-selfhost-test.json": "default",
    "cli-server-collect.json": "default",
    "cli-telemetry.json": "default",
    "demos-server.json": "server",
    "test-nft-server-gcp.json": "default",
    "test-nft-server-simple.json": "default",
    "test-push-server-basic.json": "default",
    "website-gcp-bigquery.json": "server",
}
"""The eight server flows without JavaScript, and the flow to run."""

WEB_FLOWS = {
    "cli-flow.json": "default",
    "cli-flow-simple.json": "default",
    "cli-flow-order-complete.json": "default",
    "cli-web-serve.json": "default",
    "demos-web.json": "web",
    "test-push-web-basic.json": "default",
    "cli-flow-complete.json": "web",
}

ENVIRONMENT = {"WALKEROS_APP_URL": "http://127.0.0.1:9"}
"""cli-telemetry needs it (no default); nothing is sent during these checks."""


def test_the_fixture_folder_holds_exactly_these_files() -> None:
    names = {path.name for path in FLOWS_DIR.glob("*.json")} - {"flow-v4.schema.json"}
    assert names == {*SERVER_FLOWS, *WEB_FLOWS}


def with_local_destinations(data: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The flow file with destination packages that do not exist here swapped for ``log``."""
    swapped = []
    for flow in data["flows"].values():
        for destination_id, destination in (flow.get("destinations") or {}).items():
            try:
                load_package(destination.get("package", ""), DESTINATION_GROUP)
            except PackageNotFoundError:
                swapped.append(destination["package"])
                destination["package"] = "log"
                destination.get("config", {}).pop("settings", None)
                destination["config"] = {
                    **destination.get("config", {}),
                    "settings": {"path": f"{destination_id}.jsonl"},
                }
    return data, swapped


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize(("name", "flow"), sorted(SERVER_FLOWS.items()))
def test_server_flow_validates_pushes_and_tests(
    name: str,
    flow: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for key, value in ENVIRONMENT.items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(tmp_path)
    data, swapped = with_local_destinations(json.loads((FLOWS_DIR / name).read_text()))
    assert all(not package.startswith("@walkeros/destination-demo") for package in swapped)
    file = tmp_path / name
    file.write_text(json.dumps(data))

    code, out, err = run(capsys, "validate", str(file), "--flow", flow)
    assert code == 0, err
    assert out.startswith(f"ok: {file}: flow {flow!r}")

    code, out, err = run(
        capsys,
        "push",
        str(file),
        "--flow",
        flow,
        "--event",
        str(EXAMPLES / "events" / "order-complete.json"),
    )
    assert code == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    destinations = data["flows"][flow].get("destinations") or {}
    named = {line.get("destination") for line in lines}
    assert named == set(destinations), "one line (at least) per destination, naming it"

    code, out, err = run(capsys, "test", str(file), "--flow", flow)
    assert code == 0, out + err
    assert "failed" not in out or " 0 failed" in out


@pytest.mark.parametrize(("name", "flow"), sorted(WEB_FLOWS.items()))
def test_web_flow_is_refused_naming_the_platform(
    name: str, flow: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _out, err = run(capsys, "validate", str(FLOWS_DIR / name), "--flow", flow)
    assert code == 1
    assert f"flows.{flow}.config.platform:" in err
    assert '"web" flow' in err
    assert "this runtime runs server flows" in err


def test_javascript_in_the_complete_server_flow_is_named_place_by_place(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, _out, err = run(
        capsys, "validate", str(FLOWS_DIR / "cli-flow-complete.json"), "--flow", "server"
    )
    assert code == 1
    for place in (
        "flows.server.transformers.filter.code.push",
        "flows.server.transformers.fingerprint.config.settings.fields.3.fn",
        "flows.server.sources.http.config.ingest.map.context.map.anonymizedIp.fn",
        "flows.server.collector.globals.startedAt",
    ):
        assert place in err, place
    assert "module:function" in err
