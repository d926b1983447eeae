"""Benchmark 1: Collector.push into the Segment destination, against the SDK alone.

Three measurements in one run, each the median of several repetitions:
- direct SDK: ``Client.track``/``page``/``identify`` with pre-built arguments
  (the same calls the pipeline makes) and a flush, the baseline;
- pipeline: ``Collector.push`` with the shop mapping and a shutdown flush, the
  SDK posting to the local receiver;
Both are timed until every message is delivered to the receiver: the SDK's
consumer thread competes for the GIL, so timing only the enqueueing would
charge its work to whichever run it happened to overlap.
- pipeline with the SDK client replaced by a no-op stub: our own cost;
- the same with the shop flow's ``validate`` transformer (its tracking plan,
  ``examples/shop.flow.json``) in the source chain: what a contract costs per event.
"""

from __future__ import annotations

import gc
import json
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from segment.analytics.client import Client

from benchmarks.machine import TYPICAL_US, reference_us
from benchmarks.workload import SHOP_DESTINATION, shop_events
from collector.chain import Chain, ChainStep
from collector.collector import Collector, build_destination
from collector.transformers.validate import ValidateSettings, ValidateTransformer
from destination_segment.calls import SegmentCall
from destination_segment.receiver import SegmentReceiver
from destination_segment.sdk_client import sdk_arguments
from flows.flowfile.contract import resolve_contracts

WRITE_KEY = "bench-write-key"
SHOP_FLOW = Path(__file__).resolve().parents[1] / "flows" / "examples" / "shop.flow.json"


@dataclass(slots=True)
class PushFigures:
    events: int
    users: int
    direct_eps: float
    pipeline_eps: float
    stub_us_per_event: float
    pipeline_us_per_event: float
    sdk_calls: int
    reference_us: float  # the machine's speed, measured just before each stubbed run
    validate_us_per_event: float = 0.0
    """Own cost with the validate transformer in the chain (SDK stubbed)."""
    valid_share: float = 0.0
    """Share of the events the shop contract finds valid (invalid ones cost more)."""

    @property
    def ratio(self) -> float:
        return self.pipeline_eps / self.direct_eps


def _destination(receiver_url: str, queue: int) -> Any:
    config = {
        **SHOP_DESTINATION,
        "settings": {
            **SHOP_DESTINATION["settings"],
            "writeKey": WRITE_KEY,
            "host": receiver_url,
            "maxQueueSize": queue,
        },
    }
    return build_destination("segment", "segment", config)


class _CountingStub:
    """Stands in for the SDK client: counts calls, sends nothing (``stage`` and ``put`` are
    what the destination calls: the SDK's share of the work)."""

    def __init__(self) -> None:
        self.calls = 0

    def stage(self, call: SegmentCall) -> SegmentCall:
        return call

    def put(self, staged: SegmentCall) -> bool:
        self.calls += 1
        return True


def _sdk_calls(events: list[dict[str, Any]], receiver_url: str) -> list[SegmentCall]:
    """The calls the pipeline makes for ``events``, captured once for the baseline."""
    active = _destination(receiver_url, len(events) * 2)
    collector = Collector(None, [active])
    captured: list[SegmentCall] = []

    class Capture(_CountingStub):
        def put(self, staged: SegmentCall) -> bool:
            captured.append(staged)
            return True

    active.destination.client = Capture()
    for event in events:
        collector.push(event)
    return captured


def _time(fn: Any) -> float:
    gc.collect()
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def run(events: int = 100_000, users: int = 10_000, runs: int = 3) -> PushFigures:
    """Measure all three and return the medians."""
    batch = list(shop_events(events, users))
    with SegmentReceiver(max_messages=1000) as receiver:
        calls = _sdk_calls(batch, receiver.url)
        prebuilt = [(call.type, sdk_arguments(call.params)) for call in calls]

        direct, pipeline, stubbed, references, validated = [], [], [], [], []
        valid_share = 0.0
        for _ in range(runs):
            client = Client(WRITE_KEY, host=receiver.url, max_queue_size=len(prebuilt) * 2)

            def direct_calls(client: Client = client) -> None:
                methods = {kind: getattr(client, kind) for kind in ("track", "page", "identify")}
                for kind, kwargs in prebuilt:
                    methods[kind](**{**kwargs, "context": dict(kwargs.get("context", {}))})
                client.flush()  # delivered, not just queued: the consumer's work counts

            direct.append(_time(direct_calls))
            client.join()

            active = _destination(receiver.url, len(prebuilt) * 2)
            collector = Collector(None, [active])
            collector.start()
            push = collector.push

            def pipeline_calls(push: Any = push, collector: Collector = collector) -> None:
                for event in batch:
                    push(event)
                collector.shutdown(120)  # delivered, as for the baseline

            pipeline.append(_time(pipeline_calls))

            active = _destination(receiver.url, len(prebuilt) * 2)
            stub = _CountingStub()
            active.destination.client = stub
            collector = Collector(None, [active])
            push = collector.push
            references.append(reference_us())
            stubbed.append(_time(lambda push=push: [push(e) for e in batch]))
            sdk_calls = stub.calls

            active = _destination(receiver.url, len(prebuilt) * 2)
            active.destination.client = _CountingStub()
            collector = Collector(None, [active])
            chain, valid = _validate_chain()
            push = collector.push
            validated.append(
                _time(lambda push=push, chain=chain: [push(e, chain, {}) for e in batch])
            )
            valid_share = _valid_share(valid, batch)
        receiver.clear()

    direct_s = statistics.median(direct)
    pipeline_s = statistics.median(pipeline)
    stub_s = statistics.median(stubbed)
    return PushFigures(
        events=events,
        users=users,
        direct_eps=events / direct_s,
        pipeline_eps=events / pipeline_s,
        stub_us_per_event=stub_s / events * 1e6,
        pipeline_us_per_event=pipeline_s / events * 1e6,
        sdk_calls=sdk_calls,
        reference_us=statistics.median(references),
        validate_us_per_event=statistics.median(validated) / events * 1e6,
        valid_share=valid_share,
    )


def _validate_chain() -> tuple[Chain, Any]:
    """A source chain holding the shop flow's validate step, its contract resolved."""
    data = json.loads(SHOP_FLOW.read_text())
    contracts = resolve_contracts(data["contract"])
    settings = ValidateSettings.model_validate({"contract": [contracts["shop"]], "mode": "pass"})
    step = ValidateTransformer(settings, step_id="validate")
    chained = ChainStep("validate", step.push, step.logger)
    return Chain([chained]), step


def _valid_share(step: Any, batch: list[dict[str, Any]]) -> float:
    """How many of ``batch`` the step's contract accepts (a second, untimed pass)."""
    prepare = Collector(None, []).prepare
    checked = [step.contract.check(prepare(dict(event))) for event in batch]
    return sum(1 for issues in checked if not issues) / len(batch)


def report(figures: PushFigures) -> list[tuple[str, str, str]]:
    """Rows of (measure, value, target)."""
    return [
        ("push: direct SDK baseline", f"{figures.direct_eps:,.0f} events/s", ""),
        ("push: pipeline (SDK to receiver)", f"{figures.pipeline_eps:,.0f} events/s", ""),
        ("push: pipeline / direct SDK", f"{figures.ratio:.2f}x", ">= 0.5x"),
        ("push: pipeline, per event (delivered)", f"{figures.pipeline_us_per_event:.1f} us", ""),
        (
            "push: pipeline own cost (SDK stubbed)",
            f"{figures.stub_us_per_event:.1f} us/event",
            "<= 25 us",
        ),
        (
            "push: own cost / sum(range(1000)) just before",
            f"{figures.stub_us_per_event / figures.reference_us:.2f}x"
            f" (loop {figures.reference_us:.1f} us)",
            f"<= {25 / TYPICAL_US[1]:.1f}-{25 / TYPICAL_US[0]:.1f}x (25 us at 6-8 us)",
        ),
        (
            "push: own cost with the shop validate transformer",
            f"{figures.validate_us_per_event:.1f} us/event"
            f" (+{figures.validate_us_per_event - figures.stub_us_per_event:.1f} us,"
            f" {figures.validate_us_per_event / figures.stub_us_per_event:.2f}x;"
            f" {figures.valid_share:.0%} valid)",
            "",
        ),
        (
            f"push: SDK calls for {figures.events:,} events / {figures.users:,} users",
            f"{figures.sdk_calls:,}",
            "~110,000",
        ),
    ]
