"""What an install carries: ``make run`` installs only what running needs, the
distribution's metadata (licence, authors, classifiers, keywords) is complete, and the
wheel holds the examples and the starter, so ``flows demo`` runs from an install."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.cli_helpers import EXAMPLES, ROOT, free_port
from tests.demo_helpers import JOURNEY_TYPES, run_demo


def _make(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "-C", str(ROOT), *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "MAKEFLAGS": ""},
    )


def test_make_test_installs_the_dev_extras_and_make_run_does_not(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    test_plan = _make("-n", f"VENV={venv}", "test").stdout
    assert "pip install --quiet -e '.[dev]'" in test_plan
    run_plan = _make("-n", f"VENV={venv}", "run").stdout
    assert "pip install --quiet -e .\n" in run_plan
    assert "[dev]" not in run_plan


def test_the_runtime_install_runs_flows_without_test_tools(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    made = _make(f"VENV={venv}", f"{venv}/.installed-runtime")
    assert made.returncode == 0, made.stderr[-2000:]
    python = str(venv / "bin" / "python")
    probe = """
import importlib.util, json
from importlib.metadata import metadata
meta = metadata("walkeros-flows")
print(json.dumps({
    "missing": [m for m in ("pytest", "ruff", "mypy", "hypothesis") if importlib.util.find_spec(m)],
    "present": [m for m in ("flows.cli.main", "uvicorn", "segment.analytics", "prometheus_client")
                if importlib.util.find_spec(m)],
    "license": meta.get("License-Expression"),
    "license_files": meta.get_all("License-File"),
    "author": meta.get("Author") or meta.get("Author-email"),
    "classifiers": meta.get_all("Classifier"),
    "keywords": meta.get("Keywords"),
}))
"""
    found = json.loads(
        subprocess.run(
            [python, "-c", probe], capture_output=True, text=True, check=True, timeout=60
        ).stdout
    )
    assert found["missing"] == [], "test tools are not installed by make run"
    assert len(found["present"]) == 4
    assert found["license"] == "MIT"
    assert found["license_files"] == ["LICENSE"]
    assert found["author"] == "walkeros-flows contributors"
    assert "Programming Language :: Python :: 3.11" in found["classifiers"]
    assert "Typing :: Typed" in found["classifiers"]
    assert "walkeros" in found["keywords"]
    version = subprocess.run(
        [str(venv / "bin" / "flows"), "--version"], capture_output=True, text=True, timeout=60
    )
    assert version.stdout.startswith("flows "), version.stderr
    assert "Copyright (c) 2026 walkeros-flows contributors" in (ROOT / "LICENSE").read_text()


PACKAGED = [
    *(f"flows/examples/{p.relative_to(EXAMPLES).as_posix()}" for p in EXAMPLES.rglob("*.json")),
    "flows/starter/flow.json",
    "flows/starter/events/page-view.json",
]


NOT_SOURCE = (
    ".git",
    ".venv",
    "build",
    "dist",
    "out",
    "mutants",
    "*.egg-info",
    "__pycache__",
    ".*_cache",
    ".hypothesis",
    ".coverage*",
)
"""What a build must not see from the worktree: caches, old builds, the venv."""


def _pip(*args: str) -> subprocess.CompletedProcess[str]:
    """The venv's own pip (``python -m build`` is not installed), quietly."""
    return subprocess.run(
        [sys.executable, "-m", "pip", "-q", *args],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
        env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    )


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``folder`` with its size and mtime: to see that nothing was written."""
    return {
        str(path.relative_to(folder)): (path.stat().st_size, path.stat().st_mtime_ns)
        for path in folder.rglob("*")
        if path.is_file()
    }


@pytest.mark.timeout(300)
def test_the_wheel_carries_the_examples_and_its_demo_runs_from_an_install(tmp_path: Path) -> None:
    # A copy of the source: setuptools builds in the tree and would reuse a stale build/lib.
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, symlinks=True, ignore=shutil.ignore_patterns(*NOT_SOURCE))
    wheels = tmp_path / "wheels"
    built = _pip("wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(source))
    assert built.returncode == 0, built.stderr[-2000:]
    [wheel] = wheels.glob("walkeros_flows-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "flows/examples/events/journey.json" in PACKAGED
    assert [name for name in PACKAGED if name not in names] == []
    assert not any(name.startswith(("examples/", "flows/out/")) for name in names)

    target = tmp_path / "site"
    installed = _pip("install", "--no-deps", "--target", str(target), str(wheel))
    assert installed.returncode == 0, installed.stderr[-2000:]
    work = tmp_path / "work"
    work.mkdir()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SEGMENT_")},
        "PYTHONPATH": os.pathsep.join([str(target), os.environ.get("PYTHONPATH", "")]),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    where = subprocess.run(
        [sys.executable, "-c", "import flows; print(flows.__file__)"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.strip()
    assert Path(where).is_relative_to(target), f"flows imported from {where}, not the install"
    before = _snapshot(target)
    port, sink = free_port(), free_port()
    out = run_demo(
        {**env, "PORT": str(port), "SEGMENT_SINK_PORT": str(sink)},
        port,
        f"http://127.0.0.1:{sink}",
        command=[sys.executable, "-m", "flows.cli", "demo"],
        cwd=work,
        stop=signal.SIGINT,
    )
    assert f"demo flow: {target / 'flows' / 'examples' / 'shop.flow.json'}\n" in out
    record = work / "out" / "segment-received.jsonl"
    assert record.is_file(), "the record is written in the current directory"
    assert sorted(json.loads(line)["type"] for line in record.read_text().splitlines()) == (
        JOURNEY_TYPES
    )
    assert _snapshot(target) == before, "nothing was written into the installed package"
