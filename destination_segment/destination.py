"""The ``segment`` destination: walkerOS events in, Segment Spec calls out via the SDK."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping
from typing import Any

from collector.collector import DestinationSetupError
from collector.dead_letter import DeadLetterFile, dead_letter_path
from collector.delivery import histograms, metrics
from collector.destination import (
    ConnectionReport,
    Destination,
    EventRejected,
    PushContext,
    ShutdownReport,
    Skipped,
)
from collector.replay import DeadLetterRecord, ReplayOutcome
from collector.store import Store
from destination_segment.calls import CallPlan, RuleSettings, SegmentCall, compile_rule_settings
from destination_segment.check import check_connection
from destination_segment.client import CallRejected, SegmentClient, render_message
from destination_segment.replay import replay as replay_messages
from destination_segment.settings import SegmentSettings
from destination_segment.shared_seen import SharedSeenTable
from destination_segment.store_seen import DeferredSeen, StoreSeen, stable_fingerprint

NO_IDENTITY = Skipped("no identity")
DISABLED = Skipped("disabled")


class SegmentDestination(Destination[SegmentSettings]):
    """Sends track, identify, group, page and screen calls to Segment."""

    type = "segment"
    Settings = SegmentSettings
    blocking = False  # push only queues; the SDK's own threads upload

    def __init__(self, settings: SegmentSettings, *, destination_id: str | None = None) -> None:
        super().__init__(settings, destination_id=destination_id)
        self.plan = CallPlan.from_settings(settings)
        self.dead_letter: DeadLetterFile | None = None
        if settings.dead_letter_file is not None:
            self.dead_letter = DeadLetterFile(
                dead_letter_path(settings.dead_letter_file, self.id),
                self.id,
                secrets=[settings.write_key.get_secret_value()],
            )
        self.client = SegmentClient(
            settings, on_failure=self.dead_letter.write if self.dead_letter else None
        )
        self.skipped_no_identity = 0
        self.max_calls = self.plan.calls_per_event(None)
        """The most calls one event can make (rules raise it as they compile): queue room."""
        self.shared: StoreSeen | None = None
        """The identify/group memory in a flow store (``dedupStore``), when one is named."""
        self._request = threading.local()

    def use_stores(self, stores: Mapping[str, Store[Any]], path: str) -> None:
        """Take the ``dedupStore`` store: identify/group are then decided there, per request."""
        store_id = self.settings.dedup_store
        if store_id is None:
            return
        store = stores.get(store_id)
        if store is None:
            defined = ", ".join(sorted(stores)) or "none (add a stores entry)"
            raise DestinationSetupError(
                f"{path}.config.settings.dedupStore",
                f"no store {store_id!r} in this flow; defined stores: {defined}",
            )
        self.shared = StoreSeen(store, f"dedup:{self.id}:", self.settings.dedup_ttl, self.logger)
        self.plan.identities = DeferredSeen()
        self.plan.groups = DeferredSeen()
        self.plan.fingerprint = stable_fingerprint
        self.blocking = True  # type: ignore[misc]  # a store round trip: keep it off the event loop

    def before_fork(self, workers: int) -> None:
        """One identify/group memory for all workers, so a user is not identified once per worker.

        With a ``dedupStore`` the store is that memory (each worker makes its own client).
        """
        if self.shared is not None:
            return
        size = self.settings.dedup_cache_size
        self.plan.identities = SharedSeenTable(size)
        self.plan.groups = SharedSeenTable(size)

    def compile_rule_settings(self, settings: dict[str, Any], path: str) -> RuleSettings:
        compiled = compile_rule_settings(settings, path)
        self.max_calls = max(self.max_calls, self.plan.calls_per_event(compiled))
        return compiled

    def calls(self, event: Mapping[str, Any], context: PushContext) -> list[SegmentCall] | None:
        """The calls this event makes (None: no identity), without sending them."""
        return self.plan.build(event, context)

    def preview(
        self, event: Mapping[str, Any], context: PushContext
    ) -> list[dict[str, Any]] | Skipped:
        """The exact messages this event would post, built by the SDK, sending nothing.

        The de-dup memory is used and updated as a real push would, so a
        sequence of events previews as it would be sent.
        """
        calls = self.plan.build(event, context)
        if calls is None:
            return NO_IDENTITY
        if self.shared is not None:
            calls = [call for call, send in self._decide([calls]) if send]
        return [render_message(call) for call in calls]

    def push(self, event: Mapping[str, Any], context: PushContext) -> Skipped | None:
        calls = self.plan.build(event, context)
        if calls is None:
            self.skipped_no_identity += 1
            if self.logger.isEnabledFor(logging.INFO):
                self.logger.info(
                    "event %r skipped: neither userId nor anonymousId resolved", event.get("name")
                )
            return NO_IDENTITY
        if self.settings.disable:
            return DISABLED
        client = self.client
        try:  # every message checked before any is queued: an event goes whole or not at all
            staged = [client.stage(call) for call in calls]
        except CallRejected as refusal:
            for call in calls:
                self.plan.forget(call)
            raise EventRejected(refusal.reason) from None
        if self.shared is None:
            for call, message in zip(calls, staged, strict=True):
                if not client.put(message):
                    self.plan.forget(call)
            return None
        held: list[tuple[list[SegmentCall], list[Any]]] | None = getattr(
            self._request, "held", None
        )
        if held is None:  # not within a request: decide this event alone
            self._put_decided([(calls, staged)])
        else:
            held.append((calls, staged))
        return None

    def begin_request(self) -> None:
        if self.shared is not None:
            self._request.held = []

    def end_request(self) -> None:
        """Decide the held events' identify/group calls in one store round trip, then queue."""
        held = getattr(self._request, "held", None)
        self._request.held = None
        if held:
            self._put_decided(held)

    def _decide(self, events: list[list[SegmentCall]]) -> list[tuple[SegmentCall, bool]]:
        """Every call of ``events`` in order, with whether to send it (de-dup by the store)."""
        shared = self.shared
        assert shared is not None
        asked = [
            (shared.key(call.type, call.dedup_key), str(call.fingerprint))
            for calls in events
            for call in calls
            if call.dedup_key is not None
        ]
        answers = iter(shared.decide(asked))
        return [
            (call, True if call.dedup_key is None else next(answers))
            for calls in events
            for call in calls
        ]

    def _put_decided(self, held: list[tuple[list[SegmentCall], list[Any]]]) -> None:
        shared = self.shared
        assert shared is not None
        decided = iter(self._decide([calls for calls, _ in held]))
        client = self.client
        for _, staged in held:
            for message in staged:
                call, send = next(decided)
                if send and not client.put(message) and call.dedup_key is not None:
                    shared.forget(shared.key(call.type, call.dedup_key))

    def reserve(self, events: int) -> bool:
        return self.settings.disable or self.client.reserve(events * self.max_calls)

    def release(self, events: int) -> None:
        if not self.settings.disable:
            self.client.release(events * self.max_calls)

    def shutdown(self, timeout: float) -> ShutdownReport:
        report = self.client.shutdown(timeout)
        if self.dead_letter is not None:
            self.dead_letter.close()  # a batch still in flight reopens it when it fails
        return report

    def check_connection(self) -> ConnectionReport:
        return check_connection(self.settings)

    def replay(self, records: Iterable[DeadLetterRecord], outcome: ReplayOutcome) -> None:
        """Post dead-lettered messages to Segment again, unchanged (``destination_segment.replay``)."""
        replay_messages(self.settings, records, outcome)

    def flush(self, timeout: float) -> bool:
        return self.client.flush(timeout)

    def backlog(self) -> float:
        return self.client.room.backlog()

    def histograms(self) -> dict[str, dict[str, Any]]:
        return histograms(self.client.stats)

    def stats(self) -> dict[str, int]:
        client = self.client
        counted = metrics(
            client.stats, client.queue_depth(), client.queue_capacity(), self.dead_letter
        )
        counted["enqueued"] = counted["queued"]  # the old name of "queued", kept for dashboards
        counted["skipped_no_identity"] = self.skipped_no_identity
        if self.shared is not None:
            counted["dedup_store_errors"] = self.shared.errors
        return counted
