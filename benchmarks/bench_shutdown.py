"""Benchmark 4: SIGTERM with 20,000 messages waiting in the SDK queue.

The receiver process is paused (SIGSTOP), so the SDK's upload hangs and events
posted to ``flows run`` pile up in its queue; once ``/metrics`` shows the queue
at 20,000, the receiver is resumed (SIGCONT) and ``flows run`` gets SIGTERM at
once. Measured: how long the server takes to exit, its exit code, and how many
messages reached the receiver against how many the SDK had accepted. The
baseline is the same server stopped with nothing queued.
"""

from __future__ import annotations

import http.client
import os
import signal
import statistics
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from benchmarks import procs
from benchmarks.bench_http import BATCH, MARKER, SEGMENT_TUNING, write_bodies

SHUTDOWN_TIMEOUT = 10.0  # the default of ``flows run --shutdown-timeout``


@dataclass(slots=True)
class ShutdownFigures:
    queued_target: int
    timeout: float
    queued: list[int] = field(default_factory=list)
    in_flight: list[int] = field(default_factory=list)
    exit_seconds: list[float] = field(default_factory=list)
    idle_exit_seconds: list[float] = field(default_factory=list)
    enqueued: list[int] = field(default_factory=list)
    received: list[int] = field(default_factory=list)
    exit_codes: list[int] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


class _Poster:
    """Posts request bodies over one keep-alive connection; every ``@R@`` made unique."""

    def __init__(self, url: str, bodies: Path) -> None:
        parts = urlsplit(url)
        self.path = parts.path
        self.connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)
        self.bodies = [line.split(MARKER.encode()) for line in bodies.read_bytes().splitlines()]
        self.sent = 0

    def post(self) -> int:
        """One request; returns the events it had accepted."""
        self.sent += 1
        body = b"s%d" % self.sent
        payload = body.join(self.bodies[self.sent % len(self.bodies)])
        headers = {"Content-Type": "application/json"}
        self.connection.request("POST", self.path, payload, headers)
        response = self.connection.getresponse()
        answer = response.read()
        if response.status != 200:
            raise RuntimeError(f"POST answered {response.status}: {answer[:200]!r}")
        return int(answer.split(b'"accepted":')[1].rstrip(b"}"))

    def close(self) -> None:
        self.connection.close()


def _queue_depth(server: procs.FlowServer) -> int:
    text = server.metrics()
    return int(procs.metric(text, 'flows_destination_queue{destination="segment",measure="depth"}'))


def _one(
    workdir: Path, flow_file: Path, receiver: procs.Receiver, bodies: Path, queued: int
) -> dict[str, Any]:
    receiver.clear()
    server = procs.FlowServer(flow_file, workdir, shutdown_timeout=SHUTDOWN_TIMEOUT)
    with procs.stopping(server):
        poster = _Poster(server.collect_url, bodies)
        os.kill(receiver.pid, signal.SIGSTOP)
        try:
            accepted = 0
            while accepted < queued:  # the consumer holds at most a batch or two of these
                accepted += poster.post()
            depth = _queue_depth(server)
            while depth < queued:
                accepted += poster.post()
                depth = _queue_depth(server)
            poster.close()
            enqueued = procs.segment_messages(server.metrics(), "enqueued")
        finally:
            os.kill(receiver.pid, signal.SIGCONT)
        code = server.terminate()
    received, _ = receiver.wait_for(enqueued, timeout=2)
    return {
        "queued": depth,
        "in_flight": enqueued - depth,
        "enqueued": enqueued,
        "received": received,
        "exit_seconds": server.exit_seconds,
        "exit_code": code,
        "problems": server.problems(),
    }


def _idle(workdir: Path, flow_file: Path) -> float:
    server = procs.FlowServer(flow_file, workdir, shutdown_timeout=SHUTDOWN_TIMEOUT)
    server.terminate()
    assert server.exit_seconds is not None
    return server.exit_seconds


def run(runs: int = 3, queued: int = 20_000) -> ShutdownFigures:
    figures = ShutdownFigures(queued_target=queued, timeout=SHUTDOWN_TIMEOUT)
    with tempfile.TemporaryDirectory(prefix="flows-bench-shutdown-") as tmp:
        workdir = Path(tmp)
        bodies = workdir / "batch.bodies"
        write_bodies(bodies, 200, BATCH)
        receiver = procs.Receiver(workdir)
        with procs.stopping(receiver):
            tuning = {
                **SEGMENT_TUNING,
                "maxQueueSize": max(SEGMENT_TUNING["maxQueueSize"], 2 * queued),
            }
            flow_file = procs.bench_flow(workdir, "shutdown", receiver.url, tuning)
            for _ in range(runs):
                figures.idle_exit_seconds.append(_idle(workdir, flow_file))
                result = _one(workdir, flow_file, receiver, bodies, queued)
                figures.queued.append(result["queued"])
                figures.in_flight.append(result["in_flight"])
                figures.enqueued.append(result["enqueued"])
                figures.received.append(result["received"])
                figures.exit_seconds.append(result["exit_seconds"])
                figures.exit_codes.append(result["exit_code"])
                figures.problems += result["problems"]
            figures.problems += [f"receiver: {p}" for p in receiver.problems()]
    for line in figures.problems[:20]:
        print(f"benchmarks: shutdown: {line}", file=sys.stderr)
    return figures


def report(figures: ShutdownFigures) -> list[tuple[str, str, str]]:
    """Rows of (measure, value, target)."""
    m = statistics.median
    runs = list(zip(figures.received, figures.enqueued, strict=True))
    worst_received, worst_enqueued = min(runs, key=lambda run: run[0] / run[1])
    extra = [t - i for t, i in zip(figures.exit_seconds, figures.idle_exit_seconds, strict=True)]
    flush_rate = m([r / max(1e-3, x) for r, x in zip(figures.received, extra, strict=True)])
    return [
        (
            "shutdown: queued at SIGTERM (+ in flight)",
            f"{m(figures.queued):,.0f} (+{m(figures.in_flight):,.0f})",
            f">= {figures.queued_target:,}",
        ),
        (
            "shutdown: time to exit, idle server (baseline)",
            f"{m(figures.idle_exit_seconds):.2f} s",
            "",
        ),
        (
            "shutdown: time to exit with the queue full",
            f"{m(figures.exit_seconds):.2f} s (max {max(figures.exit_seconds):.2f})",
            f"< {figures.timeout:g} s (timeout)",
        ),
        ("shutdown: flush rate (time over the idle exit)", f"{flush_rate:,.0f} messages/s", ""),
        (
            "shutdown: received / accepted by the SDK (worst run)",
            f"{worst_received:,} / {worst_enqueued:,}",
            "all",
        ),
        ("shutdown: exit codes", ", ".join(str(c) for c in figures.exit_codes), "0"),
        ("shutdown: warnings/errors logged by the server", f"{len(figures.problems)}", "0"),
    ]
