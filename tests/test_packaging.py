"""What an install carries: ``make run`` installs only what running needs, and the
distribution's metadata (licence, authors, classifiers, keywords) is complete."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from tests.cli_helpers import ROOT


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
