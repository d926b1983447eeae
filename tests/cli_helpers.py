"""Running the real ``flows`` command in a subprocess."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "flows" / "examples"
"""The examples (shipped as package data); ``examples/`` at the root is a symlink to them."""
DEMO_FLOW = EXAMPLES / "shop.flow.json"
FLOWS = [sys.executable, "-m", "flows.cli"]


def run_flows(
    *args: str, env: dict[str, str] | None = None, cwd: Path = ROOT, **kwargs: Any
) -> subprocess.CompletedProcess[str]:
    """Run ``flows ARGS`` to completion (in ``cwd``, the repository's root by default)."""
    return subprocess.run(
        [*FLOWS, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
        cwd=cwd,
        check=False,
        **kwargs,
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def flows_running(
    flow: Path, *args: str, env: dict[str, str] | None = None
) -> Iterator[tuple[subprocess.Popen[str], str, str]]:
    """``flows run FLOW ARGS`` on a free loopback port, once it printed its banner.

    Yields (process, base URL, banner line); the process is killed if the block
    leaves it running.
    """
    port = free_port()
    process = subprocess.Popen(
        [*FLOWS, "run", str(flow), "--host", "127.0.0.1", "--port", str(port), *args],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        banner = process.stdout.readline()
        yield process, f"http://127.0.0.1:{port}", banner
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
