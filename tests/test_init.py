"""``flows init``: the starter project, run as a newcomer would, through the real ``flows``.

Each command is a subprocess with no ``SEGMENT_*`` variable set: the starter
must validate, push and run on a fresh machine with nothing configured.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import httpx

from destination_segment.receiver import SegmentReceiver
from tests.cli_helpers import FLOWS, ROOT, flows_running

STARTER = ("flow.json", "events/page-view.json")


def _flows(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``flows ARGS`` in ``cwd`` with no Segment setting in the environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEGMENT_")}
    return subprocess.run(
        [*FLOWS, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=cwd,
        check=False,
    )


def _contents(folder: Path) -> dict[str, bytes]:
    return {name: (folder / name).read_bytes() for name in STARTER}


def test_init_writes_a_starter_that_validates_and_pushes_a_segment_page(tmp_path: Path) -> None:
    made = _flows("init", "shop", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    project = tmp_path / "shop"
    assert all((project / name).is_file() for name in STARTER), "DIR created, both files in it"
    assert made.stdout.splitlines()[:2] == [
        "wrote shop/flow.json",
        "wrote shop/events/page-view.json",
    ]
    assert "  flows validate shop/flow.json" in made.stdout
    assert "  flows push shop/flow.json --event shop/events/page-view.json" in made.stdout
    assert "  flows segment-sink & flows run shop/flow.json" in made.stdout
    flow = json.loads((project / "flow.json").read_text())
    assert flow["version"] == 4
    settings = flow["flows"]["default"]["destinations"]["segment"]["config"]["settings"]
    assert settings["writeKey"].startswith("$env.SEGMENT_WRITE_KEY")

    valid = _flows("validate", "flow.json", cwd=project)
    assert valid.returncode == 0, valid.stderr
    assert valid.stdout.startswith("ok: flow.json: flow 'default'")
    pushed = _flows("push", "flow.json", "--event", "events/page-view.json", cwd=project)
    assert pushed.returncode == 0, pushed.stderr
    calls = [json.loads(line) for line in pushed.stdout.splitlines()]
    assert [(c["type"], c["name"]) for c in calls] == [("page", "Pricing")]
    assert calls[0]["context"]["consent"] == {"categoryPreferences": {"Analytics": True}}
    tested = _flows("test", "flow.json", cwd=project)
    assert tested.returncode == 0, tested.stdout
    assert "destinations.segment  no-consent  pass" in tested.stdout, "out [] holds: nothing sent"
    assert tested.stdout.rstrip().endswith("2 passed, 0 failed, 0 skipped")


def test_init_refuses_to_overwrite_without_force_and_overwrites_with_it(tmp_path: Path) -> None:
    assert _flows("init", cwd=tmp_path).returncode == 0, "DIR defaults to ."
    (tmp_path / "flow.json").write_text('{"mine": true}\n')
    before = _contents(tmp_path)
    again = _flows("init", cwd=tmp_path)
    assert again.returncode == 1
    assert again.stderr == "flows: error: flow.json exists; use --force to overwrite\n"
    assert again.stdout == ""
    assert _contents(tmp_path) == before, "nothing written when refused"

    (tmp_path / "flow.json").unlink()
    in_the_way = _flows("init", str(tmp_path), cwd=ROOT)
    assert in_the_way.returncode == 1, "the event file alone is in the way: nothing written"
    assert f"{tmp_path}/events/page-view.json exists; use --force" in in_the_way.stderr
    assert not (tmp_path / "flow.json").exists()

    (tmp_path / "flow.json").write_text('{"mine": true}\n')
    forced = _flows("init", "--force", cwd=tmp_path)
    assert forced.returncode == 0, forced.stderr
    starter = ROOT / "flows" / "starter"
    assert _contents(tmp_path) == _contents(starter), "--force writes the starter over both"


def test_the_starter_runs_into_the_local_receiver(tmp_path: Path) -> None:
    assert _flows("init", cwd=tmp_path).returncode == 0
    event = json.loads((tmp_path / "events" / "page-view.json").read_text())
    with (
        SegmentReceiver() as receiver,
        flows_running(tmp_path / "flow.json", env={"SEGMENT_HOST": receiver.url}) as (
            process,
            url,
            banner,
        ),
    ):
        assert "serving flow 'default'" in banner
        answer = httpx.post(f"{url}/collect", json=event, timeout=10)
        assert answer.json() == {"ok": True, "accepted": 1}
        [message] = receiver.wait_for(1, timeout=20)
        assert message["type"] == "page"
        assert message["messageId"] == "1700000000000-page-view-page"
        assert process.poll() is None


def test_help_lists_init_and_demo() -> None:
    shown = _flows("--help", cwd=ROOT)
    assert shown.returncode == 0, shown.stderr
    commands = [line.split()[0] for line in shown.stdout.splitlines() if line.startswith("    ")]
    assert {"init", "demo"} <= set(commands), commands
