"""The Dockerfile's own steps, executed here: no Docker engine runs on these machines.

The build stage's COPY and RUN lines, the ENTRYPOINT and the HEALTHCHECK are
read from the Dockerfile itself and run with its paths moved into a temporary
folder, in a fresh virtual environment, so this test cannot drift from the file.
The entrypoint runs under the real ``tini`` (Debian's package, as in the image).
The Compose files are parsed and their wiring checked: one build, health-gated
``depends_on``, named dead-letter volumes.
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
import yaml

from destination_segment.receiver import SegmentReceiver
from tests.cli_helpers import ROOT, free_port

DOCKERFILE = ROOT / "Dockerfile"
CONSTRAINTS = ROOT / "constraints.txt"
COMPOSE_FILES = ("docker-compose.yml", "docker-compose.scale.yml")
SECRET = "sk-docker-secret-0a1b2c"
TINI_INSTALL = "apt-get install -y tini"


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
    entrypoint = json.loads(words["ENTRYPOINT"])
    assert entrypoint[:3] == ["tini", "--", "flows"], "exec form under tini as PID 1"
    installs = [arg for word, arg in runtime if word == "RUN" and "apt-get install" in arg]
    assert len(installs) == 1
    assert "tini" in installs[0].split()
    assert "rm -rf /var/lib/apt/lists/*" in installs[0]
    assert "HEALTHCHECK" in words
    assert "/ready" in words["HEALTHCHECK"]
    assert not any(word == "ARG" and "KEY" in arg.upper() for word, arg in _instructions())
    assert not any(word == "ENV" and "WRITE_KEY" in arg for word, arg in _instructions())


def _pins() -> dict[str, str]:
    """constraints.txt as {normalised name: version}; every line must be a == pin."""
    pins = {}
    for line in CONSTRAINTS.read_text().splitlines():
        if line and not line.startswith("#"):
            name, sep, version = line.partition("==")
            assert sep, f"constraints.txt: {line!r} is not pinned with =="
            assert version, f"constraints.txt: {line!r} has no version"
            pins[_normalise(name)] = version
    return pins


def _normalise(name: str) -> str:
    return name.strip().lower().replace("_", "-").replace(".", "-")


def _freeze(venv: Path) -> dict[str, str]:
    """What is installed in ``venv`` besides the project, as {normalised name: version}."""
    listed = subprocess.run(
        [str(venv / "bin" / "pip"), "list", "--format=json", "--exclude", "walkeros-flows"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    bootstrap = {"pip", "setuptools", "wheel"}
    return {
        _normalise(item["name"]): item["version"]
        for item in json.loads(listed)
        if _normalise(item["name"]) not in bootstrap
    }


def test_the_dependency_layer_needs_only_pyproject_and_constraints() -> None:
    build, _ = _stages()
    copies = [arg for word, arg in build if word == "COPY"]
    runs = [arg for word, arg in build if word == "RUN"]
    dependency_run = next(i for i, (word, arg) in enumerate(build) if "-c constraints.txt" in arg)
    before = [arg for word, arg in build[:dependency_run] if word == "COPY"]
    assert before == ["pyproject.toml constraints.txt ./"], "no source before the dependencies"
    assert copies.index("collector ./collector") > copies.index(before[0])
    project_install = [arg for arg in runs if "install --no-deps ." in arg]
    assert len(project_install) == 1, "the project itself is installed without dependencies"
    assert "pip check" in project_install[0]
    assert "constraints.txt" in (ROOT / "Makefile").read_text()


def test_constraints_pin_every_runtime_dependency_in_pyproject() -> None:
    import tomllib

    header = CONSTRAINTS.read_text().splitlines()[0:4]
    assert any("make constraints" in line for line in header), "says how to regenerate"
    pins = _pins()
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    for requirement in declared:
        name = requirement.split(";")[0]
        for stop in "<>=!~[ ":
            name = name.split(stop)[0]
        assert _normalise(name) in pins, f"constraints.txt has no pin for {name}: make constraints"
    assert "walkeros-flows" not in pins


@pytest.mark.parametrize("name", COMPOSE_FILES)
def test_compose_builds_once_and_waits_for_healthy_services(name: str) -> None:
    compose = yaml.safe_load((ROOT / name).read_text())
    services = compose["services"]
    built = [service for service, spec in services.items() if "build" in spec]
    assert len(built) == 1, f"{name}: one service builds the image"
    tag = services[built[0]]["image"]
    ours = [s for s, spec in services.items() if spec.get("image") == tag]
    assert len(ours) >= 2, f"{name}: the other services run the built tag"
    for service, spec in services.items():
        for dependency, condition in (spec.get("depends_on") or {}).items():
            assert condition == {"condition": "service_healthy"}, f"{name}: {service}"
            assert "healthcheck" in services[dependency], f"{name}: {dependency} has a healthcheck"
    collectors = [
        s for s, spec in services.items() if spec.get("image") == tag and "depends_on" in spec
    ]
    assert collectors, f"{name}: the collector waits for what it sends to"
    volumes = compose["volumes"]
    dead_letter_volumes = set()
    for service in collectors:
        mounts = services[service]["volumes"]
        dead = [m.split(":")[0] for m in mounts if m.endswith(":/var/lib/flows/dead-letter")]
        assert len(dead) == 1, f"{name}: {service} keeps dead letters in a named volume"
        assert dead[0] in volumes
        dead_letter_volumes.add(dead[0])
    assert len(dead_letter_volumes) == len(collectors), "one dead-letter volume per replica"
    if "redis" in services:
        assert services["redis"]["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]


def _through_symlink(relative: str) -> bool:
    """Whether a build-context path has a symlink in it (a COPY must not rely on one)."""
    path = ROOT
    for part in Path(relative).parts:
        path = path / part
        if path.is_symlink():
            return True
    return False


def test_every_flow_file_the_builds_copy_is_a_real_path() -> None:
    default = [
        arg for word, arg in _instructions() if word == "ARG" and arg.startswith("FLOW_FILE=")
    ]
    assert default == ["FLOW_FILE=flows/examples/shop.flow.json"]
    named = [default[0].partition("=")[2]]
    for name in COMPOSE_FILES:
        services = yaml.safe_load((ROOT / name).read_text())["services"]
        named += [
            spec["build"]["args"]["FLOW_FILE"] for spec in services.values() if "build" in spec
        ]
    assert len(named) == 1 + len(COMPOSE_FILES)
    for flow_file in named:
        assert (ROOT / flow_file).is_file(), flow_file
        assert not _through_symlink(flow_file), f"{flow_file}: goes through a symlink"


@pytest.mark.parametrize("name", COMPOSE_FILES)
def test_the_receivers_healthcheck_reaches_its_health_route(name: str) -> None:
    sink = yaml.safe_load((ROOT / name).read_text())["services"]["segment-sink"]
    assert sink["entrypoint"][:2] == ["tini", "--"]
    test = sink["healthcheck"]["test"]
    assert test[0] == "CMD"
    port = sink["entrypoint"][sink["entrypoint"].index("--port") + 1]
    with SegmentReceiver() as receiver:
        local_port = receiver.url.rsplit(":", 1)[1].rstrip("/")
        command = [part.replace(f":{port}/", f":{local_port}/") for part in test[1:]]
        command[0] = sys.executable
        assert subprocess.run(command, timeout=30, check=False).returncode == 0
    assert subprocess.run(command, timeout=30, check=False).returncode != 0, "fails when down"


@pytest.mark.timeout(300)
def test_dockerfile_steps_install_bundle_and_run(tmp_path: Path) -> None:
    tini = shutil.which("tini")
    if tini is None:
        pytest.fail(f"tini is not installed; the image runs flows under it: {TINI_INSTALL}")
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

    args: dict[str, str] = {}  # the Dockerfile's own ARG defaults
    (tmp_path / "src").mkdir()
    (tmp_path / "opt").mkdir()
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    workdir = tmp_path / "src"
    venv = Path(moved["/opt/flows"])
    after_dependencies: dict[str, str] | None = None
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
                assert not _through_symlink(source), f"COPY {source}: goes through a symlink"
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
            if "-c constraints.txt" in arg:
                assert sorted(p.name for p in workdir.iterdir()) == [
                    "constraints.txt",
                    "pyproject.toml",
                    "requirements.txt",
                ], "the dependency layer sees only pyproject.toml and constraints.txt"
                after_dependencies = _freeze(venv)
    assert after_dependencies == _pins(), "the dependency layer installs exactly the pins"
    assert _freeze(venv) == after_dependencies, "the project's install adds no dependency"
    bundle = Path(moved["/opt/flow.bundle.json"])
    assert bundle.is_file()
    runtime_words = dict(runtime)
    entrypoint = [move(part) for part in json.loads(runtime_words["ENTRYPOINT"])]
    assert entrypoint[:2] == ["tini", "--"]
    entrypoint[0] = tini
    entrypoint[2] = str(venv / "bin" / entrypoint[2])
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
