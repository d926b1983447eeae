"""The Python load generator: the fallback when wrk is not installed.

It does what ``wrk_bodies.lua`` does (POST each body of a file in turn, with every
``@R@`` replaced by a value unique to the request) over keep-alive HTTP/1.1
connections, split across processes so it is not limited to one core:

- closed loop (default): each connection sends its next request as soon as the
  answer to the previous one arrived, for ``--seconds``;
- open loop (``--rate R``): requests are due at a fixed rate whatever the answers,
  and latency is measured from when a request was due, not when it went out, so a
  slow server is not hidden by the generator waiting for it (coordinated omission).

It prints one line ``LOADJSON {...}`` in the same form as the wrk script's ``WRKJSON``,
plus ``started``: the ``time.perf_counter()`` at which the load began (the clock is
system-wide on Linux, so the caller can compare it with its own).
Run: ``python -m benchmarks.loadgen URL BODIES --connections 32 --seconds 10 [--rate R]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

MARKER = b"@R@"


@dataclass(slots=True)
class Tally:
    requests: int = 0
    status_errors: int = 0
    socket_errors: int = 0
    latencies_us: list[int] = field(default_factory=list)


def _read_bodies(path: str) -> list[list[bytes]]:
    with open(path, "rb") as file:
        return [line.split(MARKER) for line in file.read().splitlines() if line]


async def _connection(
    host: str,
    port: int,
    path: str,
    bodies: list[list[bytes]],
    tag: bytes,
    end: float,
    interval: float | None,
    first_due: float,
    tally: Tally,
) -> None:
    try:
        reader, writer = await asyncio.open_connection(host, port)
    except OSError:
        tally.socket_errors += 1
        return
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n"
    ).encode()
    counter = 0
    due = first_due
    try:
        while True:
            now = time.perf_counter()
            if interval is not None:
                if due >= end:
                    break
                if due > now:
                    await asyncio.sleep(due - now)
                started = due
                due += interval
            else:
                if now >= end:
                    break
                started = now
            counter += 1
            body = tag + b"x%d" % counter
            payload = body.join(bodies[counter % len(bodies)])
            writer.write(head % len(payload) + payload)
            status, length = await _response_head(reader)
            if length:
                await reader.readexactly(length)
            tally.latencies_us.append(int((time.perf_counter() - started) * 1e6))
            tally.requests += 1
            if not 200 <= status < 300:
                tally.status_errors += 1
    except (OSError, asyncio.IncompleteReadError, ValueError):
        tally.socket_errors += 1
    finally:
        writer.close()


async def _response_head(reader: asyncio.StreamReader) -> tuple[int, int]:
    raw = await reader.readuntil(b"\r\n\r\n")
    lines = raw.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return status, length


def _process(
    index: int,
    url: str,
    bodies_path: str,
    connections: int,
    seconds: float,
    rate: float | None,
    start_at: float,
    tag: bytes,
    out: multiprocessing.Queue,  # type: ignore[type-arg]
) -> None:
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    bodies = _read_bodies(bodies_path)
    tally = Tally()

    async def run() -> None:
        # time.perf_counter is system-wide on Linux (CLOCK_MONOTONIC), so processes share it.
        delay = start_at - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        end = start_at + seconds
        interval = connections / rate if rate else None
        tasks = [
            _connection(
                host,
                port,
                parts.path or "/",
                bodies,
                tag + b"p%dc%d" % (index, n),
                end,
                interval,
                # spread the connections' first requests over one interval
                start_at + (interval or 0) * n / connections,
                tally,
            )
            for n in range(connections)
        ]
        await asyncio.gather(*tasks)

    asyncio.run(run())
    out.put(
        (tally.requests, tally.status_errors, tally.socket_errors, tally.latencies_us),
    )


def _percentile(values: list[int], fraction: float) -> int:
    if not values:
        return 0
    return values[min(len(values) - 1, int(fraction * len(values)))]


def generate(
    url: str,
    bodies_path: str,
    connections: int,
    seconds: float,
    rate: float | None = None,
    processes: int = 2,
    tag: str = "",
) -> dict[str, float]:
    """Run the load; the same keys as the wrk script's WRKJSON line, and ``started``."""
    processes = max(1, min(processes, connections))
    queue: multiprocessing.Queue = multiprocessing.Queue()  # type: ignore[type-arg]
    start_at = time.perf_counter() + 1.0  # every process is up before the clock starts
    workers = []
    for index in range(processes):
        share = connections // processes + (index < connections % processes)
        worker = multiprocessing.Process(
            target=_process,
            args=(
                index,
                url,
                bodies_path,
                share,
                seconds,
                rate * share / connections if rate else None,
                start_at,
                tag.encode(),
                queue,
            ),
        )
        worker.start()
        workers.append(worker)
    requests = status_errors = socket_errors = 0
    latencies: list[int] = []
    for _ in workers:
        got_requests, got_status, got_socket, got_latencies = queue.get()
        requests += got_requests
        status_errors += got_status
        socket_errors += got_socket
        latencies += got_latencies
    for worker in workers:
        worker.join()
    latencies.sort()
    return {
        "started": start_at,
        "requests": requests,
        "duration_us": int(seconds * 1e6),
        "connect": 0,
        "read": socket_errors,
        "write": 0,
        "status": status_errors,
        "timeout": 0,
        "p50_us": _percentile(latencies, 0.50),
        "p90_us": _percentile(latencies, 0.90),
        "p99_us": _percentile(latencies, 0.99),
        "max_us": latencies[-1] if latencies else 0,
    }


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.loadgen")
    parser.add_argument("url")
    parser.add_argument("bodies", help="file with one JSON body per line (@R@: unique value)")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=None, help="open loop: requests/s")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--tag", default="", help="prefix of the unique values")
    args = parser.parse_args()
    result = generate(
        args.url, args.bodies, args.connections, args.seconds, args.rate, args.processes, args.tag
    )
    print("LOADJSON " + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
