"""A bounded soak run: steady load while Segment fails 5% of requests; nothing unaccounted.

    .venv/bin/python -m benchmarks.soak [--minutes 3] [--rate 2000] [--fail-rate 0.05]

Three processes on 127.0.0.1: the local Segment receiver (``flows segment-sink``
recording every message to a file), ``flows run`` with the demo flow, and this
one posting batches of product views at a steady rate. At the end the server
gets SIGTERM, and every event answered 200 must be in the receiver's record or
in a dead-letter file. Memory of the server is read from /proc at the start
(after a warm-up) and at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
DEMO_FLOW = ROOT / "examples" / "shop.flow.json"
FLOWS = [sys.executable, "-m", "flows.cli"]
BATCH = 10


@dataclass
class Load:
    """What the load generator sent and how it was answered."""

    accepted: set[str] = field(default_factory=set)
    statuses: dict[int, int] = field(default_factory=dict)
    errors: int = 0


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _rss_kib(pid: int, field_name: str = "VmRSS") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1])
    return 0


def _soak_flow(directory: Path) -> Path:
    """The demo flow without the log destination, retrying briefly so failures surface."""
    data = json.loads(DEMO_FLOW.read_text())
    flow = data["flows"]["default"]
    flow["destinations"].pop("log", None)
    flow["destinations"]["segment"]["config"]["settings"].update(
        {"maxRetries": 2, "flushInterval": 200, "httpRequestTimeout": 5000}
    )
    path = directory / "soak.flow.json"
    path.write_text(json.dumps(data))
    return path


def _wait_for_line(process: subprocess.Popen[str], needle: str) -> str:
    assert process.stdout is not None
    for line in process.stdout:
        if needle in line:
            return line
    raise RuntimeError(f"process exited before printing {needle!r}")


async def _generate(url: str, rate: int, seconds: float, load: Load, phase: str) -> None:
    """Post batches of BATCH events at ``rate`` events/s for ``seconds`` (open loop)."""
    interval = BATCH / rate
    start = time.monotonic()
    sequence = 0
    limits = httpx.Limits(max_connections=32, max_keepalive_connections=32)
    async with httpx.AsyncClient(timeout=10, limits=limits) as client:
        pending: set[asyncio.Task[None]] = set()
        while time.monotonic() - start < seconds:
            sequence += 1
            ids = [f"{phase}-{sequence}-{n}" for n in range(BATCH)]
            task = asyncio.create_task(_post(client, url, ids, load))
            pending.add(task)
            task.add_done_callback(pending.discard)
            delay = start + sequence * interval - time.monotonic()
            await asyncio.sleep(max(0.0, delay))
        await asyncio.gather(*pending)


async def _post(client: httpx.AsyncClient, url: str, ids: list[str], load: Load) -> None:
    batch = [
        {"name": "product view", "id": event_id, "user": {"id": f"user-{hash(event_id) % 5000}"}}
        for event_id in ids
    ]
    try:
        response = await client.post(url, json={"batch": batch})
    except httpx.HTTPError:
        load.errors += 1
        return
    load.statuses[response.status_code] = load.statuses.get(response.status_code, 0) + 1
    if response.status_code == 200:
        load.accepted.update(ids)


def _recorded_ids(path: Path) -> set[str]:
    ids: set[str] = set()
    if path.exists():
        with path.open() as lines:
            for line in lines:
                ids.add(json.loads(line)["messageId"])
    return ids


def _dead_lettered_ids(directory: Path) -> set[str]:
    ids: set[str] = set()
    for path in directory.rglob("*.jsonl"):
        with path.open() as lines:
            for line in lines:
                ids.add(json.loads(line)["message"]["messageId"])
    return ids


def run(minutes: float, rate: int, fail_rate: float) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="flows-soak-") as tmp:
        directory = Path(tmp)
        record = directory / "received.jsonl"
        dead_letters = directory / "dead-letter"
        sink_port, port = _free_port(), _free_port()
        sink = subprocess.Popen(
            [*FLOWS, "segment-sink", "--port", str(sink_port), "--record", str(record)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        sink_url = f"http://127.0.0.1:{sink_port}"
        env = {
            **os.environ,
            "SEGMENT_HOST": sink_url,
            "FLOWS_DEAD_LETTER_DIR": str(dead_letters),
        }
        server = subprocess.Popen(
            [
                *FLOWS,
                "run",
                str(_soak_flow(directory)),
                *("--port", str(port), "--host", "127.0.0.1"),
                *("--log-level", "warning", "--shutdown-timeout", "30"),
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        try:
            _wait_for_line(server, "serving")
            _await_health(sink_url)
            httpx.post(f"{sink_url}/_control", json={"status": 500, "rate": fail_rate})
            url = f"http://127.0.0.1:{port}/collect"
            load = Load()
            asyncio.run(_generate(url, rate, 10, load, "warm"))  # warm-up
            rss_start = _rss_kib(server.pid)
            started = time.monotonic()
            asyncio.run(_generate(url, rate, minutes * 60, load, "soak"))
            elapsed = time.monotonic() - started
            rss_end = _rss_kib(server.pid)
            peak = _rss_kib(server.pid, "VmHWM")
            stop_started = time.monotonic()
            server.send_signal(signal.SIGTERM)
            code = server.wait(timeout=120)
            stop_seconds = time.monotonic() - stop_started
        finally:
            for process in (server, sink):
                if process.poll() is None:
                    process.terminate()
                    process.wait(timeout=30)
        delivered = {i.removesuffix("-track") for i in _recorded_ids(record)}
        dead = {i.removesuffix("-track") for i in _dead_lettered_ids(dead_letters)}
        unaccounted = load.accepted - delivered - dead
        return {
            "minutes": round(elapsed / 60, 2),
            "events answered 200": len(load.accepted),
            "delivered": len(load.accepted & delivered),
            "dead-lettered": len(load.accepted & dead - delivered),
            "unaccounted": len(unaccounted),
            "responses by status": dict(sorted(load.statuses.items())),
            "transport errors": load.errors,
            "server RSS start MiB": round(rss_start / 1024, 1),
            "server RSS end MiB": round(rss_end / 1024, 1),
            "server peak RSS MiB": round(peak / 1024, 1),
            "shutdown seconds": round(stop_seconds, 2),
            "server exit code": code,
        }


def _await_health(url: str) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)  # polling a child process we cannot await otherwise
    raise RuntimeError("the Segment receiver did not start")


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.soak", description=__doc__)
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--rate", type=int, default=2000, help="events per second")
    parser.add_argument("--fail-rate", type=float, default=0.05, help="share of failed uploads")
    args = parser.parse_args()
    result = run(args.minutes, args.rate, args.fail_rate)
    width = max(len(key) for key in result)
    for key, value in result.items():
        print(f"{key.ljust(width)}  {value}")
    return 0 if result["unaccounted"] == 0 and result["server exit code"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
