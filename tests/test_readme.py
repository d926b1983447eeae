"""The README keeps being true: its commands run, its tables match the code.

``make run`` and the ``curl`` lines of "Five minutes from clone to events" are run
by ``tests/test_demo.py``; this file runs the rest: every concrete ``flows``
command it shows, every command and flag of the reference (against ``--help``),
the environment variables (against the source), the metric names (against a
live server's ``/metrics``), the example events (against ``flows push``), and
every local link of the README and ``docs/``.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import httpx
import pytest

from tests.cli_helpers import DEMO_FLOW, EXAMPLES, ROOT, flows_running, run_flows

README = ROOT / "README.md"
TEXT = README.read_text(encoding="utf-8")
DOCS = sorted((ROOT / "docs").glob("*.md"))
CALL_TYPES = ("page", "screen", "identify", "group", "track", "alias")


def section(title: str) -> str:
    """The README's text from the heading ``title`` to the next heading of any level."""
    start = TEXT.index(f"\n{title}\n")
    following = re.search(r"\n#{1,6} ", TEXT[start + len(title) + 2 :])
    end = start + len(title) + 2 + following.start() if following else len(TEXT)
    return TEXT[start:end]


def table_rows(text: str) -> list[list[str]]:
    """The cells of each body row of the Markdown tables in ``text`` (``\\|`` kept)."""
    rows = []
    for line in text.splitlines():
        if not line.startswith("|") or set(line) <= {"|", "-", " "}:
            continue
        cells = re.split(r"(?<!\\)\|", line.strip().strip("|"))
        rows.append([cell.strip() for cell in cells])
    return rows[1:] if rows else rows


def test_the_readme_is_a_short_start_and_a_reference() -> None:
    lines = TEXT.count("\n")
    assert lines < 300, f"README.md has {lines} lines: move detail to docs/"
    for heading in ("## Five minutes from clone to events", "## Reference", "## Architecture"):
        assert f"\n{heading}\n" in TEXT
    assert TEXT.index("make run") < 1000, "the two commands come first"


@pytest.mark.parametrize("page", [README, *DOCS], ids=lambda page: page.name)
def test_every_local_link_resolves(page: Path) -> None:
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text(encoding="utf-8")):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue
        if not (page.parent / target.split("#")[0]).exists():
            broken.append(target)
    assert broken == [], f"{page.relative_to(ROOT)} links to missing files"


def test_every_example_event_is_listed_with_the_calls_flows_push_prints() -> None:
    listed = {}
    for cells in table_rows(section("### The example events")):
        [file_name] = re.findall(r"\[`([^`]+\.json)`\]", cells[0])
        listed[file_name] = re.findall(rf"`((?:{'|'.join(CALL_TYPES)})(?: [^`]*)?)`", cells[2])
    events = EXAMPLES / "events"
    assert sorted(listed) == sorted(path.name for path in events.glob("*.json")), (
        "every file in examples/events is in the README's table, and only those"
    )
    for file_name, calls in listed.items():
        result = run_flows("push", str(DEMO_FLOW), "--event", str(events / file_name))
        assert result.returncode == 0, result.stderr
        shown = [json.loads(line) for line in result.stdout.splitlines()]
        made = [
            f"{line['type']} {line.get('event') or line.get('name') or ''}".strip()
            for line in shown
            if line["destination"] == "segment" and "type" in line
        ]
        assert made == calls, file_name


def reference_commands() -> list[str]:
    """Each ``flows ...`` span of the reference's command table."""
    spans = []
    for cells in table_rows(section("### Commands")):
        spans += [span for span in re.findall(r"`([^`]+)`", cells[0]) if span.startswith("flows ")]
    return spans


def test_the_command_table_lists_every_command_with_flags_its_help_knows() -> None:
    spans = reference_commands()
    listed = {span.split()[1] for span in spans}
    top = run_flows("--help")
    assert top.returncode == 0
    offered = set(re.findall(r"^ {4}([a-z][a-z-]+)", top.stdout, flags=re.MULTILINE))
    assert {"validate", "push", "run", "replay"} <= offered
    assert offered <= listed, f"commands missing from the README: {offered - listed}"
    for span in spans:
        command = span.split()[1]
        shown = run_flows(command, "--help")
        assert shown.returncode == 0, shown.stderr
        for flag in re.findall(r"(?<![\w-])(--?[a-z][a-z-]*)", span):
            assert re.search(rf"(?<![\w-]){flag}\b", shown.stdout), f"flows {command} {flag}"


def test_the_environment_variables_named_are_read_by_the_code() -> None:
    paragraph = TEXT[TEXT.index("Environment: ") :].split("\n\n")[0]
    names = set(re.findall(r"`([A-Z][A-Z_]+)(?:=\w+)?`", paragraph))
    assert len(names) >= 9
    source = "\n".join(
        path.read_text(encoding="utf-8")
        for package in ("collector", "destination_segment", "flows")
        for path in (ROOT / package).rglob("*.py")
    )
    assert {name for name in names if f'"{name}"' not in source} == set()


def test_the_metric_names_are_served_by_a_live_server() -> None:
    paragraph = section("### Metrics and logs")
    named = set()
    for pattern in re.findall(r"`((?:flows|process)_[a-z_{},*]+)", paragraph):
        if pattern.endswith("*"):
            continue
        pattern = re.sub(r"\{[a-z,]+\}$", "", pattern)  # labels; braces inside are alternatives
        alternatives = re.search(r"\{([a-z,]+)\}", pattern)
        if alternatives is None:
            named.add(pattern)
            continue
        for choice in alternatives[1].split(","):
            named.add(pattern.replace(alternatives[0], choice))
    assert len(named) >= 12
    with flows_running(DEMO_FLOW) as (_process, url, banner):
        assert "serving" in banner
        scraped = httpx.get(f"{url}/metrics", timeout=10).text
    families = {
        line.split()[2] for line in scraped.splitlines() if line.startswith(("# TYPE", "# HELP"))
    }
    missing = {
        name
        for name in named
        if name not in families and name.removesuffix("_total") not in families
    }
    assert missing == set()


def concrete_commands() -> list[str]:
    """The ``.venv/bin/flows ...`` commands shown in full (no placeholders), in order."""
    found = re.findall(r"^\s*\.venv/bin/(flows [^\n#]+)", TEXT, flags=re.MULTILINE)
    found += re.findall(r"`\.venv/bin/(flows [^`]+)`", TEXT)
    return [command.strip() for command in found]


def test_every_concrete_command_runs(tmp_path: Path) -> None:
    commands = concrete_commands()
    assert any(command.startswith("flows push") for command in commands)
    assert any(command.startswith("flows init") for command in commands)
    (tmp_path / "examples").symlink_to(EXAMPLES)
    for command in commands:
        argv = shlex.split(command)[1:]
        result = run_flows(*argv, cwd=tmp_path)
        assert result.returncode == 0, f"{command}: {result.stderr}"
        assert result.stdout.strip(), command
