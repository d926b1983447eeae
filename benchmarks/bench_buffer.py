"""The durable buffer against the in-memory path, in one run, on a real redis-server.

``flows run`` of ``examples/scale.flow.json`` (Segment at a local receiver) with the
buffer, and the same flow without ``config.settings.buffer``: batched requests
(50 events) from 8 threads, timed from the first request until the receiver has
every message. Also: Redis commands per request (INFO commandstats) and Redis
memory per 100,000 buffered events (INFO memory, with no destination reading).

    .venv/bin/python -m benchmarks.bench_buffer [--events 20000]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import redis

from destination_segment.receiver import SegmentReceiver
from flows.buffer.stream import encode

ROOT = Path(__file__).resolve().parents[1]
PER_REQUEST = 50
THREADS = 8


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_redis(directory: Path) -> tuple[subprocess.Popen[bytes], str]:
    binary = shutil.which("redis-server")
    if binary is None:
        sys.exit("redis-server is not installed: apt-get install -y redis-server")
    port = free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", str(directory)],
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    for _ in range(500):
        try:
            client.ping()
            return process, url
        except redis.ConnectionError:
            time.sleep(0.02)
    sys.exit("redis-server did not start")


def flow_file(directory: Path, buffered: bool) -> Path:
    flow = json.loads((ROOT / "flows" / "examples" / "scale.flow.json").read_text())
    spec = flow["flows"]["default"]
    if not buffered:
        spec["config"]["settings"].pop("buffer")
    segment = spec["destinations"]["segment"]["config"]["settings"]
    segment.pop("dedupStore")
    segment.update({"flushAt": 100, "maxQueueSize": 100_000})
    path = directory / ("buffered.flow.json" if buffered else "memory.flow.json")
    path.write_text(json.dumps(flow))
    return path


def bodies(run: str, events: int) -> list[bytes]:
    made = []
    for request in range(events // PER_REQUEST):
        batch = [
            {
                "name": "product view",
                "id": f"{run}-{request}-{n}",
                "user": {"id": f"u-{n}"},
                "data": {"id": f"sku-{n}", "price": 420},
            }
            for n in range(PER_REQUEST)
        ]
        made.append(json.dumps({"batch": batch}).encode())
    return made


def load(url: str, payloads: list[bytes]) -> int:
    """Post every body from THREADS threads; the number answered 200 (503s are retried)."""
    lock = threading.Lock()
    queue = list(payloads)
    ok = [0]

    def work() -> None:
        with httpx.Client(timeout=10) as client:
            while True:
                with lock:
                    if not queue:
                        return
                    body = queue.pop()
                for _ in range(100):
                    response = client.post(
                        url + "/collect", content=body, headers={"content-type": "application/json"}
                    )
                    if response.status_code == 200:
                        with lock:
                            ok[0] += 1
                        break
                    time.sleep(0.05)

    threads = [threading.Thread(target=work) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return ok[0]


def measure(
    flow: Path,
    env: dict[str, str],
    run: str,
    events: int,
    receiver: SegmentReceiver,
    redis_url: str,
) -> dict[str, float]:
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "flows",
            "run",
            str(flow),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        process.stdout.readline()
        url = f"http://127.0.0.1:{port}"
        warm = bodies(run + "-warm", PER_REQUEST * 4)
        load(url, warm)
        deadline = time.monotonic() + 30
        while (
            receiver.stats["distinct_message_ids"] < (len(warm) * PER_REQUEST)
            and time.monotonic() < deadline
        ):
            time.sleep(0.02)
        before = receiver.stats["distinct_message_ids"]
        client = redis.Redis.from_url(redis_url)
        client.config_resetstat()
        payloads = bodies(run, events)
        started = time.monotonic()
        answered = load(url, payloads)
        wanted = before + answered * PER_REQUEST
        deadline = time.monotonic() + 120
        while receiver.stats["distinct_message_ids"] < wanted and time.monotonic() < deadline:
            time.sleep(0.01)
        seconds = time.monotonic() - started
        stats = client.info("commandstats")
        calls = {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in stats.items()}
        acks = calls.get("xack", 0)
        appends = calls.get("evalsha", 0) - acks  # each ack is followed by one trim (EVALSHA)
        reads = acks + calls.get("xreadgroup", 0) + calls.get("xautoclaim", 0) + acks
        return {
            "events_per_s": (receiver.stats["distinct_message_ids"] - before) / seconds,
            "requests": answered,
            "appends": appends,
            "reader_round_trips": reads,
        }
    finally:
        process.terminate()
        process.wait(30)


def memory_per_100k(redis_url: str) -> float:
    """Bytes of Redis memory per buffered event: 100,000 entries of a typical event."""
    client = redis.Redis.from_url(redis_url)
    key = "bench:memory"
    client.delete(key)
    before = int(client.info("memory")["used_memory"])
    event = {
        "name": "product view",
        "id": "1700000001000-abcdef0123456789",
        "timestamp": 1700000001000,
        "data": {"id": "sku-1", "price": 420},
        "user": {"id": "u-1"},
        "consent": {},
        "count": 1,
        "entity": "product",
        "action": "view",
    }
    pipe = client.pipeline(transaction=False)
    for n in range(100_000):
        event["id"] = f"1700000001000-{n:016x}"
        pipe.xadd(key, {"e": encode(event, "http", None)})
        if n % 5000 == 4999:
            pipe.execute()
    pipe.execute()
    used = int(client.info("memory")["used_memory"]) - before
    client.delete(key)
    return used / 100_000


@dataclass(slots=True)
class BufferFigures:
    memory_eps: float
    buffered_eps: float
    appends_per_request: float
    reader_trips_per_request: float
    bytes_per_event: float

    @property
    def ratio(self) -> float:
        return self.buffered_eps / self.memory_eps


def run(events: int = 20_000) -> BufferFigures:
    """Both paths in one run against one receiver and one redis-server."""
    with tempfile.TemporaryDirectory() as temp, SegmentReceiver() as receiver:
        directory = Path(temp)
        redis_process, redis_url = start_redis(directory)
        try:
            env = {"REDIS_URL": redis_url, "SEGMENT_HOST": receiver.url}
            memory = measure(flow_file(directory, False), env, "m", events, receiver, redis_url)
            buffered = measure(flow_file(directory, True), env, "b", events, receiver, redis_url)
            per_event = memory_per_100k(redis_url)
        finally:
            redis_process.kill()
    return BufferFigures(
        memory["events_per_s"],
        buffered["events_per_s"],
        buffered["appends"] / buffered["requests"],
        buffered["reader_round_trips"] / buffered["requests"],
        per_event,
    )


def report(figures: BufferFigures) -> list[tuple[str, str, str]]:
    """Rows of (measure, value, target)."""
    return [
        ("buffer: batched delivered, in-memory path", f"{figures.memory_eps:,.0f} events/s", ""),
        ("buffer: batched delivered, with the buffer", f"{figures.buffered_eps:,.0f} events/s", ""),
        ("buffer: with / without", f"{figures.ratio:.2f}x", ">= 0.5x"),
        (
            "buffer: redis round trips per request",
            f"{figures.appends_per_request:.2f} + {figures.reader_trips_per_request:.2f} reader",
            "1 on the request path",
        ),
        (
            "buffer: redis memory per 100,000 buffered events",
            f"{figures.bytes_per_event * 100_000 / 1e6:.1f} MB ({figures.bytes_per_event:.0f} B each)",
            "",
        ),
    ]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=20_000)
    args = parser.parse_args()
    for name, value, target in report(run(args.events)):
        print(f"{name}: {value}  {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
