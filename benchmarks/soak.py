"""A bounded soak run: steady load while Segment fails 5% of requests; nothing unaccounted.

    .venv/bin/python -m benchmarks.soak [--minutes 3] [--rate 2000] [--fail-rate 0.05]

Three processes on 127.0.0.1 (started with ``benchmarks.procs``): the local Segment
receiver recording every message to a file, ``flows run`` with the demo flow, and this
one posting batches of product views at a steady rate. At the end the server
gets SIGTERM, and every event answered 200 must be in the receiver's record or
in a dead-letter file. Memory of the server is read from /proc at the start
(after a warm-up) and at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from benchmarks import procs

BATCH = 10


@dataclass
class Load:
    """What the load generator sent and how it was answered."""

    accepted: set[str] = field(default_factory=set)
    statuses: dict[int, int] = field(default_factory=dict)
    errors: int = 0


SOAK_SEGMENT = {"maxRetries": 2, "flushInterval": 200, "httpRequestTimeout": 5000}
"""Retry briefly, so some batches exhaust their retries and reach the dead-letter file."""


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


def _message_ids(path: Path, message: Callable[[Any], Any]) -> set[str]:
    """The messageIds in a JSON-lines file; ``message`` picks the message out of a line."""
    ids: set[str] = set()
    if path.exists():
        with path.open() as lines:
            for line in lines:
                ids.add(message(json.loads(line))["messageId"])
    return ids


def run(minutes: float, rate: int, fail_rate: float) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="flows-soak-") as tmp:
        workdir = Path(tmp)
        record = workdir / "received.jsonl"
        receiver = procs.Receiver(workdir, record=record)
        with procs.stopping(receiver):
            flow = procs.bench_flow(workdir, "soak", receiver.url, SOAK_SEGMENT)
            server = procs.FlowServer(flow, workdir)
            with procs.stopping(server):
                receiver.control({"status": 500, "rate": fail_rate})
                load = Load()
                asyncio.run(_generate(server.collect_url, rate, 10, load, "warm"))  # warm-up
                rss_start = procs.status_mb(server.pid, "VmRSS")
                started = time.monotonic()
                asyncio.run(_generate(server.collect_url, rate, minutes * 60, load, "soak"))
                elapsed = time.monotonic() - started
                rss_end = procs.status_mb(server.pid, "VmRSS")
                peak = procs.vm_hwm_mb(server.pid)
                code = server.terminate(timeout=120)
        delivered = {i.removesuffix("-track") for i in _message_ids(record, lambda m: m)}
        dead_letters = workdir / "soak.dead-letter.jsonl"  # where bench_flow puts them
        dead = {
            i.removesuffix("-track") for i in _message_ids(dead_letters, lambda d: d["message"])
        }
        unaccounted = load.accepted - delivered - dead
        return {
            "minutes": round(elapsed / 60, 2),
            "events answered 200": len(load.accepted),
            "delivered": len(load.accepted & delivered),
            "dead-lettered": len(load.accepted & dead - delivered),
            "unaccounted": len(unaccounted),
            "responses by status": dict(sorted(load.statuses.items())),
            "transport errors": load.errors,
            "server RSS start MiB": round(rss_start, 1),
            "server RSS end MiB": round(rss_end, 1),
            "server peak RSS MiB": round(peak, 1),
            "shutdown seconds": round(server.exit_seconds or 0.0, 2),
            "server exit code": code,
        }


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
