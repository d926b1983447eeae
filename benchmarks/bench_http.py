"""Benchmark 2: HTTP ingest end to end, against the bare server stack.

Four processes: the local Segment receiver, ``flows run`` with a benchmark variant
of the demo flow (no ``log`` destination, tuned Segment settings), the load
generator (wrk, or ``benchmarks.loadgen`` without it), and this one, which only
starts them and reads counters. Each run measures, in this order:

- baseline and pipeline, one event per request, closed loop at full speed;
- baseline and pipeline, 50 events per request, closed loop at full speed; the
  pipeline runs are timed until the receiver has every message, and the server
  is then stopped with SIGTERM and the receiver's count read again, so a message
  lost in the shutdown flush would show;
- the pipeline at half the single-event rate just measured, for its p99 latency
  (paced closed loop with wrk, open loop with the Python generator).

Each body is unique per request (``@R@`` in the body file, see ``wrk_bodies.lua``):
with the demo mapping each event becomes exactly one Segment message, so events
are counted at the receiver. Figures are medians over the runs.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from benchmarks import procs
from benchmarks.workload import shop_events

HERE = Path(__file__).resolve().parent
WRK_SCRIPT = HERE / "wrk_bodies.lua"
INSTALL_SCRIPT = HERE / "install-tools.sh"
MARKER = "@R@"
BATCH = 50

#: The Segment settings of the benchmark flow; why these: README.md, "Segment tuning".
SEGMENT_TUNING: dict[str, Any] = {
    "flushAt": 500,
    "flushInterval": 500,
    "consumerThreads": 2,
    "gzip": True,
    "maxQueueSize": 50_000,
}


@dataclass(frozen=True, slots=True)
class Shape:
    name: str
    events_per_request: int
    connections: int


SINGLE = Shape("single", 1, 32)
BATCHED = Shape("batch", BATCH, 8)


@dataclass(slots=True)
class Load:
    """What a load generator reports for one run."""

    requests: int
    ok_requests: int
    errors: int
    seconds: float
    p50_ms: float
    p99_ms: float
    started: float  # perf_counter when the load began

    @property
    def rps(self) -> float:
        return self.ok_requests / self.seconds


@dataclass(slots=True)
class PipelineRun:
    load: Load
    accepted_events: int
    enqueued: int
    received_before_stop: int
    received_final: int
    delivered_eps: float
    overloaded: int
    dropped: int
    rss_mb: float
    exit_code: int
    problems: list[str]


@dataclass(slots=True)
class WorkersRun:
    load: Load
    delivered_eps: float
    accepted: int  # events in 2xx answers
    received: int  # at the receiver, after the shutdown flush
    overloaded: int  # 503s, from /metrics (which adds up every worker's counters)
    problems: list[str]


@dataclass(slots=True)
class HttpFigures:
    tool: str
    runs: int
    seconds: float
    single_bare_rps: list[float] = field(default_factory=list)
    single_rps: list[float] = field(default_factory=list)
    single_p50_ms: list[float] = field(default_factory=list)
    single_p99_ms: list[float] = field(default_factory=list)
    single_delivered_eps: list[float] = field(default_factory=list)
    single_rss_mb: list[float] = field(default_factory=list)
    batch_bare_rps: list[float] = field(default_factory=list)
    batch_rps: list[float] = field(default_factory=list)
    batch_p50_ms: list[float] = field(default_factory=list)
    batch_p99_ms: list[float] = field(default_factory=list)
    batch_delivered_eps: list[float] = field(default_factory=list)
    batch_rss_mb: list[float] = field(default_factory=list)
    paced_target_rps: list[float] = field(default_factory=list)
    paced_rps: list[float] = field(default_factory=list)
    paced_p50_ms: list[float] = field(default_factory=list)
    paced_p99_ms: list[float] = field(default_factory=list)
    replicas: int = 2
    replicas_delivered_eps: list[float] = field(default_factory=list)
    replicas_single_bare_rps: list[float] = field(default_factory=list)
    replicas_single_rps: list[float] = field(default_factory=list)
    lost: int = 0  # accepted events the receiver never got, over all runs
    errors: int = 0  # non-2xx answers and socket errors at the load generator
    overloaded: int = 0  # 503s the server answered (destination queue over its high water)
    problems: list[str] = field(default_factory=list)
    segment: dict[str, Any] = field(default_factory=dict)
    upstream_delay: float = 0.0


# -- request bodies ----------------------------------------------------------------------------


def write_bodies(path: Path, count: int, per_request: int, users: int = 10_000) -> int:
    """``count`` request bodies of ``per_request`` shop events, one per line; returns events.

    Ids, users and sessions carry ``@R@``, which the load generator makes unique per
    request. Within one body a user logs in at most once: a second login would be a
    de-duplicated identify, i.e. an event without a message.
    """
    events = shop_events(count * per_request, users)
    with path.open("wb") as file:
        for _ in range(count):
            batch = [next(events) for _ in range(per_request)]
            logged_in: set[str] = set()
            for index, event in enumerate(batch):
                if event["name"] == "user login":
                    user = event["user"]["id"]
                    if user in logged_in:  # make this one somebody else
                        event["user"] = {
                            **event["user"],
                            "id": f"{user}-{index}",
                            "session": f"{event['user']['session']}-{index}",
                        }
                    logged_in.add(event["user"]["id"])
            body = orjson.dumps(batch[0] if per_request == 1 else {"batch": batch})
            for prefix in (b'"evt-', b'"user-', b'"session-', b'"order-'):
                body = body.replace(prefix, prefix + MARKER.encode() + b"-")
            file.write(body + b"\n")
    return count * per_request


def messages_per_event(flow_file: Path, bodies: Path) -> float:
    """Segment calls per event for these bodies, computed in process with a counting stub."""
    from flows.flowfile.config import read_flow_file, resolve_flow
    from flows.graph import build_flow

    flow = build_flow(resolve_flow(read_flow_file(flow_file)))

    class Counting:
        calls = 0

        def stage(self, call: object) -> object:
            return call

        def put(self, staged: object) -> bool:
            Counting.calls += 1
            return True

    for active in flow.collector.destinations:
        active.destination.client = Counting()  # type: ignore[attr-defined]
    events = 0
    for number, line in enumerate(bodies.read_bytes().splitlines()):
        data = orjson.loads(line.replace(MARKER.encode(), b"%d" % number))
        batch = data["batch"] if isinstance(data, dict) and "batch" in data else [data]
        for event in batch:
            flow.collector.push(event)
            events += 1
    return Counting.calls / events


# -- load generators ---------------------------------------------------------------------------


def pick_tool(wanted: str) -> str:
    """``wrk`` when it is (or can be) installed, else ``python``; ``wanted`` forces one."""
    if wanted == "python":
        return "python"
    if shutil.which("wrk") is None:
        print("benchmarks: wrk not found; running benchmarks/install-tools.sh", file=sys.stderr)
        subprocess.run(["sh", str(INSTALL_SCRIPT)], check=False)
    if shutil.which("wrk") is not None:
        return "wrk"
    if wanted == "wrk":
        raise SystemExit("benchmarks: wrk is not installed and could not be installed")
    print("benchmarks: using the Python load generator (benchmarks/loadgen.py)", file=sys.stderr)
    return "python"


def run_load(
    tool: str,
    url: str,
    bodies: Path,
    connections: int,
    seconds: float,
    *,
    pace_ms: int | None = None,
    rate: float | None = None,
    tag: str = "",
) -> Load:
    """One load run: wrk (``pace_ms``: per-connection delay) or Python (``rate``: open loop).

    ``tag`` prefixes the unique values, so concurrent generators never repeat an id.
    """
    if tool == "wrk":
        argv = ["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--timeout", "30s"]
        argv += ["-s", str(WRK_SCRIPT), url, "--", str(bodies), str(pace_ms or 0), tag]
        started = time.perf_counter()
        marker = "WRKJSON "
    else:
        argv = [sys.executable, "-m", "benchmarks.loadgen", url, str(bodies)]
        argv += ["--connections", str(connections), "--seconds", f"{seconds:g}", "--tag", tag]
        if rate:
            argv += ["--rate", f"{rate:.1f}"]
        started = 0.0  # the generator reports when its clock started
        marker = "LOADJSON "
    output = subprocess.run(argv, cwd=procs.ROOT, capture_output=True, text=True, check=True).stdout
    line = next(x for x in output.splitlines() if x.startswith(marker))
    result = json.loads(line.removeprefix(marker))
    errors = result["connect"] + result["read"] + result["write"] + result["timeout"]
    return Load(
        requests=result["requests"],
        ok_requests=result["requests"] - result["status"],
        errors=errors + result["status"],
        seconds=result["duration_us"] / 1e6,
        p50_ms=result["p50_us"] / 1000,
        p99_ms=result["p99_us"] / 1000,
        started=result.get("started", started),
    )


# -- one measurement each ----------------------------------------------------------------------


def measure_bare(
    workdir: Path, tool: str, bodies: Path, shape: Shape, seconds: float, workers: int = 1
) -> Load:
    server = procs.BareServer(workdir, workers)
    with procs.stopping(server):
        return run_load(tool, server.collect_url, bodies, shape.connections, seconds)


def measure_pipeline(
    workdir: Path,
    tool: str,
    flow_file: Path,
    receiver: procs.Receiver,
    bodies: Path,
    shape: Shape,
    seconds: float,
) -> PipelineRun:
    """Full-speed load, then wait for delivery, then SIGTERM and the final count."""
    receiver.clear()
    server = procs.FlowServer(flow_file, workdir)
    with procs.stopping(server):
        load = run_load(tool, server.collect_url, bodies, shape.connections, seconds)
        text = server.settled_metrics()
        rss = procs.vm_hwm_mb(server.pid)
        accepted = int(procs.metric(text, "flows_events_accepted_total"))
        enqueued = procs.segment_messages(text, "enqueued")
        dropped = procs.segment_messages(text, "dropped_queue_full")
        overloaded = int(procs.metric(text, "flows_http_overloaded_total"))
        seen, done = receiver.wait_for(enqueued, timeout=300)
        exit_code = server.terminate()
    final = receiver.count()
    return PipelineRun(
        load=load,
        accepted_events=accepted,
        enqueued=enqueued,
        received_before_stop=seen,
        received_final=final,
        delivered_eps=seen / (done - load.started),
        overloaded=overloaded,
        dropped=dropped,
        rss_mb=rss,
        exit_code=exit_code,
        problems=server.problems(),
    )


def measure_workers(
    workdir: Path,
    tool: str,
    flow_file: Path,
    receiver: procs.Receiver,
    bodies: Path,
    shape: Shape,
    seconds: float,
    workers: int,
) -> WorkersRun:
    """``flows run --workers N``: N server processes on one socket, one per core.

    Each worker has its own /metrics, so the events accepted are counted at the load
    generator (2xx answers x events per body)."""
    receiver.clear()
    server = procs.FlowServer(flow_file, workdir, workers=workers)
    try:
        load = run_load(tool, server.collect_url, bodies, shape.connections, seconds)
        accepted = load.ok_requests * shape.events_per_request
        seen, done = receiver.wait_for(accepted, timeout=300)
        # Workers publish their counters every second: wait for a read that stays put.
        text = server.settled_metrics(quiet=1.2)
        overloaded = int(procs.metric(text, "flows_http_overloaded_total"))
    finally:
        exit_code = server.terminate()
    problems = server.problems()
    if exit_code != 0:
        problems.append(f"flows run --workers {workers} exited {exit_code}")
    delivered_eps = seen / (done - load.started)
    return WorkersRun(load, delivered_eps, accepted, receiver.count(), overloaded, problems)


def measure_paced(
    workdir: Path,
    tool: str,
    flow_file: Path,
    receiver: procs.Receiver,
    bodies: Path,
    target_rps: float,
    seconds: float,
) -> Load:
    """The pipeline at ``target_rps`` single-event requests/s.

    wrk: ``connections`` each wait ``pace_ms`` after an answer, sized for a 10 ms cycle
    per connection; a short first run measures the answer time and the pace is then
    corrected for it. Python: open loop at exactly ``target_rps``.
    """
    receiver.clear()
    server = procs.FlowServer(flow_file, workdir)
    with procs.stopping(server):
        if tool == "python":
            connections = max(4, round(target_rps * 0.010))
            return run_load(tool, server.collect_url, bodies, connections, seconds, rate=target_rps)
        connections = max(1, round(target_rps * 0.010))
        cycle_ms = 1000 * connections / target_rps
        pace = max(1, round(cycle_ms - 1))
        probe = run_load(tool, server.collect_url, bodies, connections, 3, pace_ms=pace)
        answer_ms = max(0.0, 1000 * connections / max(probe.rps, 1) - pace)
        pace = max(1, round(cycle_ms - answer_ms))
        return run_load(tool, server.collect_url, bodies, connections, seconds, pace_ms=pace)


# -- the benchmark -----------------------------------------------------------------------------


def run(
    runs: int = 3,
    seconds: float = 10.0,
    tool: str = "auto",
    segment: dict[str, Any] | None = None,
    single_bodies: int = 5000,
    batch_bodies: int = 200,
    upstream_delay: float = 0.0,
) -> HttpFigures:
    """``segment`` overrides the tuning; ``upstream_delay`` holds every receiver answer
    that many seconds, standing in for the round trip to Segment's real API."""
    tool = pick_tool(tool)
    tuning = {**SEGMENT_TUNING, **(segment or {})}
    figures = HttpFigures(
        tool=tool,
        runs=runs,
        seconds=seconds,
        segment=tuning,
        upstream_delay=upstream_delay,
        replicas=max(2, os.cpu_count() or 2),
    )
    with tempfile.TemporaryDirectory(prefix="flows-bench-http-") as tmp:
        workdir = Path(tmp)
        single = workdir / "single.bodies"
        batched = workdir / "batch.bodies"
        write_bodies(single, single_bodies, 1)
        write_bodies(batched, batch_bodies, BATCH)
        receiver = procs.Receiver(workdir)
        with procs.stopping(receiver):
            flow_file = procs.bench_flow(workdir, "bench", receiver.url, tuning)
            # Several workers share the uploads: keep the total of upload threads the same.
            per_worker = max(1, int(tuning.get("consumerThreads", 1)) // figures.replicas)
            workers_flow = procs.bench_flow(
                workdir, "workers", receiver.url, {**tuning, "consumerThreads": per_worker}
            )
            if upstream_delay > 0:
                receiver.control({"delay": upstream_delay})
            for bodies in (single, batched):
                ratio = messages_per_event(flow_file, bodies)
                if abs(ratio - 1) > 1e-9:
                    raise RuntimeError(f"{bodies.name}: {ratio} messages per event, not 1")
            for _ in range(runs):
                _one_run(
                    figures,
                    workdir,
                    tool,
                    (flow_file, workers_flow),
                    receiver,
                    single,
                    batched,
                    seconds,
                )
            figures.problems += [f"receiver: {p}" for p in receiver.problems()]
    for line in figures.problems[:20]:
        print(f"benchmarks: http: {line}", file=sys.stderr)
    return figures


def _one_run(
    figures: HttpFigures,
    workdir: Path,
    tool: str,
    flows: tuple[Path, Path],
    receiver: procs.Receiver,
    single: Path,
    batched: Path,
    seconds: float,
) -> None:
    """One repetition; ``flows`` is (the one-process flow, the flow for --workers)."""
    flow_file, workers_flow = flows
    for shape, bodies in ((SINGLE, single), (BATCHED, batched)):
        bare = measure_bare(workdir, tool, bodies, shape, seconds)
        pipeline = measure_pipeline(workdir, tool, flow_file, receiver, bodies, shape, seconds)
        figures.errors += bare.errors + pipeline.load.errors - pipeline.overloaded
        figures.overloaded += pipeline.overloaded
        figures.lost += pipeline.accepted_events - pipeline.received_final
        figures.problems += pipeline.problems
        if pipeline.exit_code != 0:
            figures.problems.append(f"flows run exited {pipeline.exit_code}")
        if pipeline.dropped:
            figures.problems.append(f"{pipeline.dropped} message(s) dropped, SDK queue full")
        prefix = shape.name
        getattr(figures, f"{prefix}_bare_rps").append(bare.rps)
        getattr(figures, f"{prefix}_rps").append(pipeline.load.rps)
        getattr(figures, f"{prefix}_p50_ms").append(pipeline.load.p50_ms)
        getattr(figures, f"{prefix}_p99_ms").append(pipeline.load.p99_ms)
        getattr(figures, f"{prefix}_delivered_eps").append(pipeline.delivered_eps)
        getattr(figures, f"{prefix}_rss_mb").append(pipeline.rss_mb)
    replicas = figures.replicas
    for shape, bodies in ((BATCHED, batched), (SINGLE, single)):
        run = measure_workers(
            workdir, tool, workers_flow, receiver, bodies, shape, seconds, replicas
        )
        figures.problems += run.problems
        figures.errors += run.load.errors - run.overloaded
        figures.overloaded += run.overloaded
        # wrk does not count requests still in flight when its time is up, so "accepted"
        # here can be a little low: only a shortfall at the receiver counts as lost.
        figures.lost += max(0, run.accepted - run.received)
        if shape is BATCHED:
            figures.replicas_delivered_eps.append(run.delivered_eps)
        else:
            bare = measure_bare(workdir, tool, bodies, shape, seconds, replicas)
            figures.errors += bare.errors
            figures.replicas_single_bare_rps.append(bare.rps)
            figures.replicas_single_rps.append(run.load.rps)
    target = figures.single_rps[-1] / 2
    paced = measure_paced(workdir, tool, flow_file, receiver, single, target, seconds)
    figures.errors += paced.errors
    figures.paced_target_rps.append(target)
    figures.paced_rps.append(paced.rps)
    figures.paced_p50_ms.append(paced.p50_ms)
    figures.paced_p99_ms.append(paced.p99_ms)


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def report(figures: HttpFigures) -> list[tuple[str, str, str]]:
    """Rows of (measure, value, target)."""
    m = _median
    single_ratio = m(
        [p / b for p, b in zip(figures.single_rps, figures.single_bare_rps, strict=True)]
    )
    batch_ratio = m([p / b for p, b in zip(figures.batch_rps, figures.batch_bare_rps, strict=True)])
    replicas_ratio = m(
        [
            p / b
            for p, b in zip(
                figures.replicas_single_rps, figures.replicas_single_bare_rps, strict=True
            )
        ]
    )
    share = m(
        [r / (2 * t) for r, t in zip(figures.paced_rps, figures.paced_target_rps, strict=True)]
    )
    pacing = "paced closed loop" if figures.tool == "wrk" else "open loop"
    short = {"flushAt": "at", "flushInterval": "ms", "consumerThreads": "threads"}
    short |= {"maxQueueSize": "queue"}
    tuning = " ".join(f"{short.get(k, k)}={json.dumps(v)}" for k, v in figures.segment.items())
    if figures.upstream_delay:
        tuning += f" +{figures.upstream_delay:g}s/answer"
    return [
        (
            f"http: load generator ({SINGLE.connections}/{BATCHED.connections} conns)",
            figures.tool,
            "",
        ),
        ("http: Segment settings (flushAt, flushInterval, ...)", tuning, ""),
        ("http: single, bare baseline", f"{m(figures.single_bare_rps):,.0f} req/s", ""),
        ("http: single, pipeline", f"{m(figures.single_rps):,.0f} req/s", ""),
        ("http: single, pipeline / baseline", f"{single_ratio:.2f}x", ">= 0.25x"),
        (
            f"http: single, --workers {figures.replicas}: bare / pipeline",
            f"{m(figures.replicas_single_bare_rps):,.0f} / {m(figures.replicas_single_rps):,.0f}"
            " req/s",
            "",
        ),
        (
            f"http: single, --workers {figures.replicas}: pipeline / baseline",
            f"{replicas_ratio:.2f}x",
            ">= 0.25x",
        ),
        (
            "http: single, p50 / p99 at full speed",
            f"{m(figures.single_p50_ms):.1f} / {m(figures.single_p99_ms):.1f} ms",
            "",
        ),
        (
            "http: single, delivered to receiver",
            f"{m(figures.single_delivered_eps):,.0f} events/s",
            "",
        ),
        (
            f"http: single at {share:.0%} of max ({pacing})",
            f"{m(figures.paced_rps):,.0f} req/s",
            "50%",
        ),
        (
            "http: single at ~50% of max, p50 / p99",
            f"{m(figures.paced_p50_ms):.1f} / {m(figures.paced_p99_ms):.1f} ms",
            "p99 < 20 ms",
        ),
        (f"http: batch of {BATCH}, bare baseline", f"{m(figures.batch_bare_rps):,.0f} req/s", ""),
        (f"http: batch of {BATCH}, pipeline", f"{m(figures.batch_rps):,.0f} req/s", ""),
        (f"http: batch of {BATCH}, pipeline / baseline", f"{batch_ratio:.2f}x", ""),
        (
            f"http: batch of {BATCH}, p50 / p99",
            f"{m(figures.batch_p50_ms):.1f} / {m(figures.batch_p99_ms):.1f} ms",
            "",
        ),
        (
            f"http: batch of {BATCH}, delivered to receiver, 1 worker",
            f"{m(figures.batch_delivered_eps):,.0f} events/s",
            "",
        ),
        (
            f"http: batch of {BATCH}, delivered, --workers {figures.replicas} (1 upload thread each)",
            f"{m(figures.replicas_delivered_eps):,.0f} events/s",
            ">= 10,000 events/s",
        ),
        (
            "http: server peak RSS (VmHWM), single / batch",
            f"{m(figures.single_rss_mb):.0f} / {m(figures.batch_rss_mb):.0f} MB",
            "",
        ),
        ("http: events lost (accepted, never received)", f"{figures.lost:,}", "0"),
        ("http: warnings/errors logged by the server", f"{len(figures.problems)}", "0"),
        (
            "http: 503 overload answers / other errors",
            f"{figures.overloaded:,} / {figures.errors:,}",
            "0 / 0",
        ),
    ]
