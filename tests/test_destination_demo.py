"""The demo destination against walkerOS's examples, and on a real ``flows run``.

The log lines are caught from the destination's real logger (no stand-in
for it), and once from the stderr of a running ``flows run``, where a user
sees them.
"""

from __future__ import annotations

import json
import logging
import signal
import urllib.request
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from collector.destination import PushContext
from collector.destinations.demo import DemoDestination, DemoSettings
from collector.paths import UNDEFINED
from tests.cli_helpers import flows_running
from tests.shared_fixtures import load_fixture

FIXTURE = load_fixture("walkeros-destination-demo-examples.json")
CASES = {case["name"]: case for case in FIXTURE["cases"]}


def logged_lines(caplog: pytest.LogCaptureFixture, destination: DemoDestination) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == destination.logger.name]


def run_case(case: dict[str, Any], caplog: pytest.LogCaptureFixture) -> list[str]:
    """init, then push the case's event if it has one; the lines the destination logged."""
    destination = DemoDestination(DemoSettings.model_validate(case["settings"]))
    caplog.set_level(logging.INFO, logger=destination.logger.name)
    destination.init()
    if "in" in case:
        context = PushContext(None, UNDEFINED, {}, destination.logger)
        assert destination.push(case["in"]["event"], context) is None
    return logged_lines(caplog, destination)


def expected_lines(case: dict[str, Any]) -> list[str]:
    """What walkerOS logged: ``log_lines`` (init and push), else ``out``'s one log call."""
    if "log_lines" in case:
        return list(case["log_lines"])
    [[kind, line]] = case["out"]
    assert kind == "log"
    return [line]


def test_the_fixture_has_the_seven_cases() -> None:
    assert len(CASES) == 7


@pytest.mark.parametrize("name", list(CASES))
def test_each_case_logs_walkeros_lines(name: str, caplog: pytest.LogCaptureFixture) -> None:
    case = CASES[name]
    lines = run_case(case, caplog)
    name_prefix = f"[{case['settings'].get('name', 'demo')}] "
    assert lines[0] == f"{name_prefix}initialized"
    expected = expected_lines(case)
    if "log_lines" not in case and case.get("call") != "init":
        lines = lines[1:]  # these cases record only the push's line
    assert _without_id(lines) == _without_id(expected)


def _without_id(lines: list[str]) -> list[Any]:
    """Lines with a logged whole event compared as JSON without its (random upstream) id."""
    compared: list[Any] = []
    for line in lines:
        prefix, _, body = line.partition("] ")
        if body.startswith("{"):
            parsed = json.loads(body)
            parsed.pop("id", None)
            compared.append((prefix, parsed))
        else:
            compared.append(line)
    return compared


def test_the_lines_are_byte_for_byte_walkeros(caplog: pytest.LogCaptureFixture) -> None:
    """Whole lines, not only their JSON: the indent, the order, ``5.22``, ``0``."""
    for name in ("orderComplete", "pageView", "fullEventNamed", "valuesFilter"):
        case = CASES[name]
        lines = run_case(case, caplog)
        assert lines[-1] == expected_lines(case)[-1], name
        caplog.clear()


def test_a_null_value_is_logged_and_a_missing_one_is_not(caplog: pytest.LogCaptureFixture) -> None:
    case = {
        "settings": {"name": "n", "values": ["user.id", "user.none", "nested.0.entity"]},
        "in": {"event": {"name": "x y", "user": {"id": None}, "nested": [{"entity": "e"}]}},
    }
    assert run_case(case, caplog)[-1] == '[n] {\n  "user.id": null,\n  "nested.0.entity": "e"\n}'


def test_settings_are_checked() -> None:
    for bad in ({"nmae": "x"}, {"values": "name"}, {"name": 5}):
        with pytest.raises(ValidationError):
            DemoSettings.model_validate(bad)


def test_the_entry_point_names_the_class() -> None:
    [found] = [ep for ep in entry_points(group="flows.destinations") if ep.name == "demo"]
    assert found.load() is DemoDestination


def test_flows_run_shows_the_lines_by_default(tmp_path: Path) -> None:
    flow = {
        "version": 4,
        "flows": {
            "default": {
                "sources": {"http": {"package": "http", "config": {"settings": {"path": "/c"}}}},
                "destinations": {
                    "demo": {
                        "package": "demo",
                        "config": {"settings": {"name": "shop", "values": ["name", "data.title"]}},
                    }
                },
            }
        },
    }
    flow_file = tmp_path / "demo.flow.json"
    flow_file.write_text(json.dumps(flow))
    event = {"name": "page view", "data": {"title": "Home"}, "user": {"id": "u1"}}
    with flows_running(flow_file) as (process, url, _banner):
        request = urllib.request.Request(
            url + "/c",
            data=json.dumps(event).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            assert answer.status == 200
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
    assert "INFO flows.destination.demo: [shop] initialized" in stderr
    line = '[shop] {\n  "name": "page view",\n  "data.title": "Home"\n}'
    assert f"INFO flows.destination.demo: {line}" in stderr
