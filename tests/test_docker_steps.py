"""The Dockerfile's own steps, executed here: no Docker engine runs on these machines.

The build stage's COPY and RUN lines, the ENTRYPOINT and the HEALTHCHECK are
read from the Dockerfile itself and run with its paths moved into a temporary
folder, in a fresh virtual environment, so this test cannot drift from the file.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from destination_segment.receiver import SegmentReceiver
from tests.cli_helpers import ROOT, free_port

DOCKERFILE = ROOT / "Dockerfile"
SECRET = "sk-docker-secret-0a1b2c"


def _instructions() -> list[tuple[str, str]]:
    """(instruction, argument) pairs, with continuation lines joined."""
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    pairs = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            pairs.append((word.upper(), rest.strip()))
    return pairs


def _stages() -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    pairs = _instructions()
    starts = [i for i, (word, _) in enumerate(pairs) if word == "FROM"]
    assert len(starts) == 2, "a multi-stage build: build, then runtime"
    return pairs[starts[0] : starts[1]], pairs[starts[1] :]


def test_image_is_slim_non_root_and_exec_form() -> None:
    _, runtime = _stages()
    words = dict(runtime)
    image_args = [
        arg for word, arg in _instructions() if word == "ARG" and arg.startswith("PYTHON_IMAGE=")
    ]
    assert words["FROM"] == "${PYTHON_IMAGE}"
    assert image_args == ["PYTHON_IMAGE=python:3.11-slim"]
    assert words["USER"] not in ("root", "0")
    assert json.loads(words["ENTRYPOINT"])[0] == "flows", "exec form, so SIGTERM reaches flows"
    assert "HEALTHCHECK" in words
    assert "/ready" in words["HEALTHCHECK"]
    assert not any(word == "ARG" and "KEY" in arg.upper() for word, arg in _instructions())
    assert not any(word == "ENV" and "WRITE_KEY" in arg for word, arg in _instructions())


@pytest.mark.timeout(300)
def test_dockerfile_steps_install_bundle_and_run(tmp_path: Path) -> None:
    build, runtime = _stages()
    moved = {
        "/opt/flows": str(tmp_path / "opt" / "flows"),
        "/opt/flow.bundle.json": str(tmp_path / "opt" / "flow.bundle.json"),
        "/src": str(tmp_path / "src"),
        "/app/flow.bundle.json": str(tmp_path / "opt" / "flow.bundle.json"),
    }

    def move(text: str) -> str:
        for old in sorted(moved, key=len, reverse=True):
            text = text.replace(old, moved[old])
        return text

    args = {"FLOW_FILE": "examples/shop.flow.json"}
    (tmp_path / "src").mkdir()
    (tmp_path / "opt").mkdir()
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    workdir = tmp_path / "src"
    for word, arg in build:
        if word == "ARG" and "=" in arg:
            name, _, default = arg.partition("=")
            args.setdefault(name, default)
        elif word == "WORKDIR":
            workdir = Path(move(arg))
        elif word == "COPY":
            *sources, target = shlex.split(arg.replace("${FLOW_FILE}", args["FLOW_FILE"]))
            destination = Path(move(target)) if target.startswith("/") else workdir / target
            for source in sources:
                origin = ROOT / source
                if origin.is_dir():
                    shutil.copytree(
                        origin, destination, ignore=shutil.ignore_patterns("__pycache__")
                    )
                else:
                    shutil.copy(origin, destination)
        elif word == "RUN":
            command = move(arg).replace("python -m venv", f"{sys.executable} -m venv")
            result = subprocess.run(
                command,
                shell=True,
                cwd=workdir,
                env=env,
                capture_output=True,
                text=True,
                timeout=240,
            )
            assert result.returncode == 0, f"RUN {arg}\n{result.stdout}\n{result.stderr}"
    bundle = Path(moved["/opt/flow.bundle.json"])
    assert bundle.is_file()
    runtime_words = dict(runtime)
    entrypoint = [move(part) for part in json.loads(runtime_words["ENTRYPOINT"])]
    entrypoint[0] = str(Path(moved["/opt/flows"]) / "bin" / entrypoint[0])
    entrypoint += ["--host", "127.0.0.1"]  # the image listens on all interfaces; tests on loopback
    port = free_port()
    with SegmentReceiver() as receiver:
        run_env = {
            **env,
            "PORT": str(port),
            "SEGMENT_HOST": receiver.url,
            "SEGMENT_WRITE_KEY": SECRET,
        }
        process = subprocess.Popen(
            entrypoint, env=run_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        try:
            assert process.stdout is not None
            assert str(port) in process.stdout.readline()
            health = json.loads(runtime_words["HEALTHCHECK"].split("CMD", 1)[1].strip())
            probe = subprocess.run(health, env=run_env, timeout=30, check=False)
            assert probe.returncode == 0, "the HEALTHCHECK command reports ready"
            response = httpx.post(
                f"http://127.0.0.1:{port}/collect",
                json={"name": "product view", "id": "docker-1", "user": {"id": "u"}},
            )
            assert response.status_code == 200
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=30) == 0
            _, stderr = process.communicate(timeout=5)
        finally:
            if process.poll() is None:
                process.kill()
        assert receiver.wait_for(1)[0]["messageId"] == "docker-1-track"
    assert SECRET not in bundle.read_text()
    assert SECRET not in stderr
