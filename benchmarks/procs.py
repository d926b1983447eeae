"""Processes the HTTP and shutdown benchmarks run: the receiver, ``flows run``, the bare baseline.

Each runs in its own process so none shares a GIL with another or with the load
generator. Everything listens on 127.0.0.1 only, on ports the kernel picks.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parent.parent
SHOP_FLOW = ROOT / "flows" / "examples" / "shop.flow.json"
HOST = "127.0.0.1"
WRITE_KEY = "bench-write-key"


def http_json(method: str, url: str, timeout: float = 10.0) -> Any:
    """A small JSON request to one of our own local processes (stats, control)."""
    request = urllib.request.Request(url, method=method)
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())


def http_text(url: str, timeout: float = 10.0) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return str(response.read().decode())


def status_mb(pid: int | str, field: str) -> float:
    """A memory figure of a live process from /proc (``VmRSS``, ``VmHWM``), in MB.

    ``pid`` may be ``"self"``.
    """
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} for process {pid}")


def vm_hwm_mb(pid: int) -> float:
    """Peak resident set size (VmHWM) of a live process, in MB."""
    return status_mb(pid, "VmHWM")


def metric(text: str, name: str) -> float:
    """One sample of a Prometheus text exposition, by its full name with labels."""
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def segment_messages(text: str, outcome: str) -> int:
    """The Segment destination's message count for ``outcome`` (enqueued, dropped_queue_full, ...)."""
    labels = f'{{destination="segment",outcome="{outcome}"}}'
    return int(metric(text, "flows_destination_messages_total" + labels))


class _Process:
    """A child that prints one ready line on stdout, then is stopped with SIGTERM."""

    def __init__(self, argv: list[str], log_path: Path, ready: str, cwd: Path) -> None:
        self.log_path = log_path
        self._log: IO[bytes] = log_path.open("wb")
        self.process = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=self._log,
            cwd=cwd,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.url = self._wait_ready(ready)
        self.exit_seconds: float | None = None
        # Drain stdout so a chatty child never blocks on a full pipe.
        threading.Thread(target=self._drain, daemon=True).start()

    @property
    def pid(self) -> int:
        return self.process.pid

    def _wait_ready(self, marker: str) -> str:
        assert self.process.stdout is not None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                break
            if marker in line:
                for word in line.split():
                    if word.startswith("http://"):
                        return word.rstrip(",;")
        self.process.kill()
        self.process.wait()
        raise RuntimeError(
            f"{self.process.args!r} did not start; its log:\n{self.log_path.read_text()[-2000:]}"
        )

    def _drain(self) -> None:
        stdout = self.process.stdout
        if stdout is not None:
            for _ in stdout:
                pass

    def terminate(self, timeout: float = 60.0) -> int:
        """SIGTERM, then wait; ``exit_seconds`` is how long it took to exit."""
        if self.process.poll() is not None:
            return self.process.returncode
        started = time.perf_counter()
        self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
        self.exit_seconds = time.perf_counter() - started
        self._log.close()
        return code

    def problems(self) -> list[str]:
        """WARNING/ERROR lines and tracebacks the child logged."""
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return [
            line
            for line in text.splitlines()
            if " WARNING " in line or " ERROR " in line or "Traceback" in line
        ]


class Receiver(_Process):
    """``destination_segment.receiver`` in its own process; counts read over GET /stats.

    It keeps only the newest message in memory (``--max-messages 1``); its counters still
    count every message, and it does not de-duplicate (``distinct_message_ids`` is reported
    separately).
    """

    def __init__(self, workdir: Path, record: Path | None = None) -> None:
        """``record``: also append every message to that JSON-lines file."""
        argv = [sys.executable, "-m", "destination_segment.receiver"]
        argv += ["--host", HOST, "--port", "0", "--max-messages", "1"]
        if record is not None:
            argv += ["--record", str(record)]
        super().__init__(argv, workdir / "receiver.log", "Segment receiver listening", ROOT)

    def problems(self) -> list[str]:
        """Everything it logged: it logs warnings and errors only."""
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return [line for line in text.splitlines() if line.strip()]

    def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = http_json("GET", self.url + "/stats")
        return result

    def count(self) -> int:
        return int(self.stats()["messages"])

    def clear(self) -> None:
        http_json("DELETE", self.url + "/messages")

    def control(self, spec: dict[str, Any] | None) -> None:
        """Arm faults (POST /_control), or with None disarm them."""
        if spec is None:
            http_json("DELETE", self.url + "/_control")
            return
        request = urllib.request.Request(
            self.url + "/_control", data=json.dumps(spec).encode(), method="POST"
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()

    def wait_for(self, count: int, timeout: float, poll: float = 0.02) -> tuple[int, float]:
        """Poll until ``count`` messages arrived or ``timeout``; (count seen, perf_counter then)."""
        deadline = time.perf_counter() + timeout
        seen = self.count()
        while seen < count and time.perf_counter() < deadline:
            time.sleep(poll)
            seen = self.count()
        return seen, time.perf_counter()


class FlowServer(_Process):
    """``flows run FILE --host 127.0.0.1 --port 0``: the real server, as deployed."""

    def __init__(
        self, flow_file: Path, workdir: Path, shutdown_timeout: float = 30.0, workers: int = 1
    ) -> None:
        argv = [sys.executable, "-m", "flows.cli", "run", str(flow_file)]
        argv += ["--host", HOST, "--port", "0", "--shutdown-timeout", str(shutdown_timeout)]
        argv += ["--workers", str(workers)]
        super().__init__(argv, workdir / f"{flow_file.stem}.server.log", "flows: serving", workdir)
        self.collect_url = self.url + "/collect"

    def metrics(self) -> str:
        return http_text(self.url + "/metrics")

    def accepted_events(self) -> int:
        return int(metric(self.metrics(), "flows_events_accepted_total"))

    def settled_metrics(self, quiet: float = 0.3, timeout: float = 10.0) -> str:
        """/metrics once the accepted count stopped moving (requests still in flight ended)."""
        text = self.metrics()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            time.sleep(quiet)
            again = self.metrics()
            if metric(again, "flows_events_accepted_total") == metric(
                text, "flows_events_accepted_total"
            ):
                return again
            text = again
        return text


class BareServer(_Process):
    """The baseline: ``benchmarks.bare_app`` on the same uvicorn stack and configuration."""

    def __init__(self, workdir: Path, workers: int = 1) -> None:
        argv = [sys.executable, "-m", "benchmarks.bare_app", "--host", HOST, "--port", "0"]
        argv += ["--workers", str(workers)]
        super().__init__(argv, workdir / "bare.server.log", "bare: serving", ROOT)
        self.collect_url = self.url + "/collect"


def bench_flow(
    workdir: Path, name: str, receiver_url: str, segment: dict[str, Any] | None = None
) -> Path:
    """The demo flow without its ``log`` destination, sending to the receiver, tuned.

    ``segment`` overrides settings of the Segment destination (camelCase, as in the
    flow file). Dead letters go to a file in ``workdir`` so a failure is visible there.
    """
    data = json.loads(SHOP_FLOW.read_text())
    data.pop("$schema", None)  # relative to examples/; the copy lives elsewhere
    flow = data["flows"]["default"]
    flow["destinations"].pop("log", None)
    settings = flow["destinations"]["segment"]["config"]["settings"]
    settings.update(
        writeKey=WRITE_KEY,
        host=receiver_url,
        deadLetterFile=str(workdir / f"{name}.dead-letter.jsonl"),
        **(segment or {}),
    )
    path = workdir / f"{name}.flow.json"
    path.write_text(json.dumps(data, indent=2))
    return path


@contextlib.contextmanager
def stopping(process: _Process) -> Iterator[_Process]:
    """Make sure a child is gone when the block ends, however it ends."""
    try:
        yield process
    finally:
        if process.process.poll() is None:
            process.terminate()
