"""Benchmark 3: peak memory of Collector.push over a million distinct users.

Every event comes from a user of its own, the worst case for the identify
de-duplication memory: with the shop mapping of ``bench_push`` (destination-level
identify with traits) each event asks the cache about a new identity, so an
unbounded cache would grow by one entry per event. The SDK client is replaced by
the counting stub of ``bench_push``, so the figure is our memory, not a network
backlog in the SDK's queue.

Each measurement runs in a fresh subprocess, so its VmHWM is its own:
- baseline: the same process generating the same events and building the same
  destination, without pushing them (the floor: interpreter, imports, the events);
- pipeline: every event through ``Collector.push``; the resident size is sampled
  along the way, so it shows the growth stopping once the cache is full.
"""

from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

from benchmarks.procs import ROOT, status_mb

DEDUP_CACHE = 100_000


@dataclass(slots=True)
class MemoryFigures:
    events: int
    cache_size: int
    baseline_mb: float
    peak_mb: float
    cache_entries: int
    sdk_calls: int
    samples: list[tuple[int, float, int]]  # (events pushed, VmRSS MB, allocated blocks)
    seconds: float

    def _after_full(self) -> list[tuple[int, float, int]]:
        """Samples from twice the cache size on: the cache has been full for a while."""
        return [sample for sample in self.samples if sample[0] >= 2 * self.cache_size]

    @property
    def growth_after_full_mb(self) -> float:
        """VmRSS growth from the first sample after the cache filled to the last one."""
        full = self._after_full()
        return full[-1][1] - full[0][1] if len(full) >= 2 else float("nan")

    @property
    def blocks_growth_after_full(self) -> float:
        """Growth of the live Python allocations over the same span, as a fraction."""
        full = self._after_full()
        return full[-1][2] / full[0][2] - 1 if len(full) >= 2 else float("nan")


def _status(field: str) -> float:
    return status_mb("self", field)


def child(events: int, cache_size: int, push: bool) -> dict[str, Any]:
    """The measurement itself, in the subprocess."""
    from benchmarks.bench_push import WRITE_KEY, _CountingStub
    from benchmarks.workload import SHOP_DESTINATION, shop_events
    from collector.collector import Collector, build_destination

    config = {
        **SHOP_DESTINATION,
        "settings": {
            **SHOP_DESTINATION["settings"],
            "writeKey": WRITE_KEY,
            "host": "http://127.0.0.1:9",  # never contacted: the client is a stub
            "dedupCacheSize": cache_size,
            "deadLetterFile": None,
        },
    }
    active = build_destination("segment", "segment", config)
    stub = _CountingStub()
    active.destination.client = stub  # type: ignore[attr-defined]
    collector = Collector(None, [active])
    every = max(1, events // 20)
    samples: list[tuple[int, float, int]] = []
    started = time.perf_counter()
    for pushed, event in enumerate(shop_events(events, events, distinct_users=True), 1):
        if push:
            collector.push(event)
        if pushed % every == 0:
            gc.collect()
            samples.append((pushed, _status("VmRSS"), sys.getallocatedblocks()))
    seconds = time.perf_counter() - started
    plan = active.destination.plan  # type: ignore[attr-defined]
    return {
        "vm_hwm_mb": _status("VmHWM"),
        "cache_entries": len(plan.identities),
        "sdk_calls": stub.calls,
        "samples": samples,
        "seconds": seconds,
    }


def _spawn(events: int, cache_size: int, push: bool) -> dict[str, Any]:
    argv = [sys.executable, "-m", "benchmarks.bench_memory", "--child"]
    argv += ["--events", str(events), "--cache", str(cache_size)]
    if not push:
        argv.append("--no-push")
    output = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, check=True).stdout
    result: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    return result


def run(events: int = 1_000_000, cache_size: int = DEDUP_CACHE) -> MemoryFigures:
    baseline = _spawn(events, cache_size, push=False)
    pipeline = _spawn(events, cache_size, push=True)
    return MemoryFigures(
        events=events,
        cache_size=cache_size,
        baseline_mb=baseline["vm_hwm_mb"],
        peak_mb=pipeline["vm_hwm_mb"],
        cache_entries=pipeline["cache_entries"],
        sdk_calls=pipeline["sdk_calls"],
        samples=[(int(n), float(mb), int(blocks)) for n, mb, blocks in pipeline["samples"]],
        seconds=pipeline["seconds"],
    )


def report(figures: MemoryFigures) -> list[tuple[str, str, str]]:
    """Rows of (measure, value, target)."""
    n = f"{figures.events:,} events / {figures.events:,} users"
    rss_at = {pushed: mb for pushed, mb, _ in figures.samples}
    marks = [p for p in (2 * figures.cache_size, figures.events) if p in rss_at]
    trail = " -> ".join(f"{rss_at[p]:.0f} MB @ {p:,}" for p in marks)
    return [
        (f"memory: peak RSS after {n}", f"{figures.peak_mb:.0f} MB", "< 300 MB"),
        ("memory: baseline (same events, not pushed)", f"{figures.baseline_mb:.0f} MB", ""),
        (
            "memory: pipeline - baseline",
            f"{figures.peak_mb - figures.baseline_mb:.0f} MB",
            "",
        ),
        (
            f"memory: de-dup cache entries (dedupCacheSize {figures.cache_size:,})",
            f"{figures.cache_entries:,}",
            f"<= {figures.cache_size:,}",
        ),
        ("memory: RSS once the cache is full", trail or "n/a", ""),
        (
            "memory: RSS growth after the cache is full",
            f"{figures.growth_after_full_mb:+.1f} MB",
            "",
        ),
        (
            "memory: live Python allocations, same span",
            f"{figures.blocks_growth_after_full:+.2%}",
            "~0 (bounded)",
        ),
        ("memory: SDK calls (stub)", f"{figures.sdk_calls:,}", ""),
        ("memory: push time, per event", f"{figures.seconds / figures.events * 1e6:.1f} us", ""),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_memory")
    parser.add_argument("--child", action="store_true", help="measure in this process")
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--cache", type=int, default=DEDUP_CACHE)
    parser.add_argument("--no-push", action="store_true", help="the baseline: do not push")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.events, args.cache, not args.no_push)), flush=True)
        return 0
    for row in report(run(args.events, args.cache)):
        print("  ".join(row))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
