"""Commands other distributions add to ``flows`` (``flows.commands``), ``segment-sink`` among
them, and the host knowing nothing of Segment."""

from __future__ import annotations

import ast
import json
import select
import signal
import socket
import subprocess
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path

import httpx
import pytest

from flows.cli.commands import GROUP, AddCommand, CommandError
from flows.cli.main import main
from tests.cli_helpers import FLOWS, ROOT, run_flows


def add_hello(add: AddCommand) -> None:
    """A ``flows.commands`` callable, as a distribution would register it."""
    hello = add("hello", greet, "Say hello")
    hello.add_argument("--to", required=True)


def greet(args: object) -> int:
    to = getattr(args, "to", "")
    if to == "nobody":
        raise CommandError(["nobody is there", "try someone"])
    print(f"hello {to}")
    return 0


def add_replay_again(add: AddCommand) -> None:
    add("replay", greet, "Taken")


def point(name: str, value: str) -> EntryPoint:
    return EntryPoint(name=name, value=value, group=GROUP)


INSTALLED = [
    point("hello", "tests.test_cli_commands:add_hello"),
    point("broken", "tests.no_such_module:add_command"),
    point("replay", "tests.test_cli_commands:add_replay_again"),
]


def test_an_installed_command_runs_and_its_errors_read_like_ours(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["hello", "--to", "you"], installed=INSTALLED) == 0
    out, err = capsys.readouterr()
    assert out == "hello you\n"
    assert err == (
        "flows: warning: command 'broken' (tests.no_such_module:add_command) not added: "
        "ModuleNotFoundError: No module named 'tests.no_such_module'\n"
        "flows: warning: command 'replay' (tests.test_cli_commands:add_replay_again) not added: "
        "CommandTakenError: flows has a 'replay' command already\n"
    )
    assert main(["hello", "--to", "nobody"], installed=INSTALLED[:1]) == 1
    assert capsys.readouterr().err == "flows: error: nobody is there\nflows: error: try someone\n"


def test_segment_sink_is_registered_by_destination_segment() -> None:
    (sink,) = [found for found in entry_points(group=GROUP) if found.name == "segment-sink"]
    assert sink.value == "destination_segment.sink_command:add_command"
    assert sink.dist is not None
    assert sink.dist.name == "walkeros-flows"


def test_segment_sink_serves_until_sigterm(tmp_path: Path) -> None:
    record = tmp_path / "received.jsonl"
    process = subprocess.Popen(
        [*FLOWS, "segment-sink", "--port", "0", "--record", str(record), "--write-key", "wk"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], 30)
        assert ready, "segment-sink printed nothing"
        line = process.stdout.readline()
        assert "accepts only the configured write key" in line
        url = line.split("listening on ", 1)[1].split()[0]
        message = {"type": "track", "event": "x", "userId": "u", "messageId": "m-1"}
        answer = httpx.post(url + "/v1/batch", json={"batch": [message]}, auth=("wk", ""))
        assert answer.status_code == 200
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, stderr
    assert [json.loads(line)["messageId"] for line in record.read_text().splitlines()] == ["m-1"]


def test_segment_sink_errors_get_the_common_prefix(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        busy = run_flows("segment-sink", "--port", str(port))
    assert busy.returncode == 1
    assert busy.stderr.startswith(f"flows: error: cannot listen on 127.0.0.1:{port}: ")
    unwritable = tmp_path / "missing" / "received.jsonl"
    no_file = run_flows("segment-sink", "--port", "0", "--record", str(unwritable))
    assert no_file.returncode == 1
    assert no_file.stderr == (
        f"flows: error: --record: cannot open {unwritable}: No such file or directory\n"
    )
    bad_env = run_flows("segment-sink", env={"SEGMENT_SINK_PORT": "nine"})
    assert bad_env.returncode == 1
    assert bad_env.stderr == ("flows: error: SEGMENT_SINK_PORT must be a port number, not 'nine'\n")
    assert run_flows("schema", env={"SEGMENT_SINK_PORT": "nine"}).returncode == 0


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports, at any depth of its code."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def test_flows_knows_nothing_of_segment() -> None:
    """Only the demo (``make run``, reworked elsewhere) may start the Segment receiver."""
    for path in sorted((ROOT / "flows").rglob("*.py")):
        if path.relative_to(ROOT).as_posix() == "flows/cli/demo.py":
            continue
        text = path.read_text(encoding="utf-8")
        segment = {
            m
            for m in imported_modules(path)
            if m.split(".")[0] in ("destination_segment", "segment")
        }
        assert not segment, f"{path.relative_to(ROOT)} imports {sorted(segment)}"
        assert "SegmentDestination" not in text, path.relative_to(ROOT)
