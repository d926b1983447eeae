"""``make bench``: run the benchmarks and print a table of figures against targets."""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import time

from benchmarks.machine import reference_us

BENCHMARKS = ("push", "http", "memory", "shutdown", "buffer")


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument(
        "which",
        nargs="*",
        metavar="BENCHMARK",
        help=f"any of {', '.join(BENCHMARKS)} (default: all)",
    )
    parser.add_argument("--runs", type=int, default=3, help="repetitions; medians are reported")
    parser.add_argument("--quick", action="store_true", help="small versions: a smoke test")
    parser.add_argument("--events", type=int, default=100_000, help="push: events")
    parser.add_argument("--users", type=int, default=10_000, help="push: distinct users")
    parser.add_argument("--seconds", type=float, default=10.0, help="http: seconds per load run")
    parser.add_argument(
        "--loadgen",
        choices=["auto", "wrk", "python"],
        default="auto",
        help="http: wrk (installed with benchmarks/install-tools.sh if missing) or the "
        "Python generator; auto: wrk if it can be had",
    )
    parser.add_argument(
        "--segment",
        type=json.loads,
        default=None,
        metavar="JSON",
        help="http: Segment settings over the tuned ones, e.g. '{\"flushAt\": 100}'",
    )
    parser.add_argument(
        "--upstream-delay",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="http: hold every receiver answer this long (Segment's round trip)",
    )
    parser.add_argument(
        "--memory-events", type=int, default=1_000_000, help="memory: events (= users)"
    )
    args = parser.parse_args()
    which = args.which or list(BENCHMARKS)
    unknown = sorted(set(which) - set(BENCHMARKS))
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; use {', '.join(BENCHMARKS)}")
    runs = args.runs
    if args.quick:
        runs = 1
        args.events, args.users = 10_000, 2_000
        args.seconds = 3.0
        args.memory_events = 100_000

    rows: list[tuple[str, str, str]] = []
    started = time.perf_counter()
    if "push" in which:
        from benchmarks import bench_push

        rows += bench_push.report(bench_push.run(args.events, args.users, runs))
    if "http" in which:
        from benchmarks import bench_http

        bodies = (1000, 40) if args.quick else (5000, 200)
        figures = bench_http.run(
            runs, args.seconds, args.loadgen, args.segment, *bodies, args.upstream_delay
        )
        rows += bench_http.report(figures)
    if "memory" in which:
        from benchmarks import bench_memory

        cache = bench_memory.DEDUP_CACHE if not args.quick else 10_000
        rows += bench_memory.report(bench_memory.run(args.memory_events, cache))
    if "buffer" in which:
        from benchmarks import bench_buffer

        rows += bench_buffer.report(bench_buffer.run(5_000 if args.quick else 20_000))
    if "shutdown" in which:
        from benchmarks import bench_shutdown

        queued = 5_000 if args.quick else 20_000
        rows += bench_shutdown.report(bench_shutdown.run(runs, queued))

    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, {datetime.date.today().isoformat()}, "
        f"{'quick, ' if args.quick else ''}{runs} run(s), {time.perf_counter() - started:.0f} s"
    )
    print(
        f"machine speed: sum(range(1000)) takes {reference_us():.1f} us "
        "(6-8 us on a typical current x86 core; absolute figures scale with it)"
    )
    width = max(len(r[0]) for r in rows)
    print(f"{'measure'.ljust(width)}  {'value':>26}  target")
    for name, value, target in rows:
        print(f"{name.ljust(width)}  {value:>26}  {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
