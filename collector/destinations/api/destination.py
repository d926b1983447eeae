"""The ``api`` destination (walkerOS's ``@walkeros/server-destination-api``): events to any
HTTP endpoint, batched, retried, dead-lettered.

``push`` encodes the event's part and queues it (``blocking = False``: it
runs on the event loop in microseconds); ``collector.delivery.BatchSender``
threads upload it. ``reserve`` holds queue room for each admitted request,
so what is answered 200 always fits in ``maxQueueSize``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from collector.dead_letter import DeadLetterFile, dead_letter_path
from collector.delivery import Batching, BatchSender, RetryPolicy, histograms, metrics
from collector.destination import (
    ConnectionReport,
    Destination,
    EventRejected,
    PushContext,
    ShutdownReport,
    Skipped,
)
from collector.destinations.api.body import BodyBuilder
from collector.destinations.api.check import check_connection
from collector.destinations.api.replay import replay as replay_bodies
from collector.destinations.api.settings import ApiSettings
from collector.destinations.api.transport import HttpTransport
from collector.replay import DeadLetterRecord, ReplayOutcome

NO_URL = Skipped("no url")


def retry_policy(settings: ApiSettings) -> RetryPolicy:
    return RetryPolicy(
        max_retries=settings.max_retries,
        base=settings.retry_backoff / 1000,
        max_total=settings.max_total_backoff_duration / 1000,
        max_rate_limit=settings.max_rate_limit_duration / 1000,
    )


class ApiDestination(Destination[ApiSettings]):
    """Sends each event (or a batch of them, as a JSON array) to ``url``."""

    type = "api"
    Settings = ApiSettings
    blocking = False  # push only queues; the sender's threads upload

    def __init__(self, settings: ApiSettings, *, destination_id: str | None = None) -> None:
        super().__init__(settings, destination_id=destination_id)
        self.body = BodyBuilder(
            settings, settings.transform_function(), batched=settings.batch is not None
        )
        self.dead_letter: DeadLetterFile | None = None
        if settings.dead_letter_file is not None:
            self.dead_letter = DeadLetterFile(
                dead_letter_path(settings.dead_letter_file, self.id),
                self.id,
                secrets=settings.secrets(),
            )
        batch = settings.batch
        self.sender: BatchSender[bytes] = BatchSender(
            self.id,
            self._transport,
            batching=Batching(batch.size, batch.wait / 1000) if batch else Batching(),
            policy=retry_policy(settings),
            capacity=settings.max_queue_size,
            threads=settings.concurrency,
            on_failure=self._dead_letter,
            secrets=settings.secrets(),
        )

    def _transport(self) -> HttpTransport:
        return HttpTransport(self.settings, self.body, self.settings.concurrency)

    def _dead_letter(self, parts: list[bytes], reason: str) -> None:
        if self.dead_letter is not None:
            self.dead_letter.write([self.body.as_message(part) for part in parts], reason)

    def init(self) -> None:
        if self.settings.url is None:
            self.logger.warning("%s: no url set: events are counted as skipped, not sent", self.id)
            return
        self.sender.start()

    def push(self, event: Mapping[str, Any], context: PushContext) -> Skipped | None:
        if self.settings.url is None:
            return NO_URL
        try:
            part = self.body.part(event, context)
        except EventRejected:
            self.sender.stats.add("rejected")
            raise
        self.sender.put(part)
        return None

    def preview(
        self, event: Mapping[str, Any], context: PushContext
    ) -> list[dict[str, Any]] | Skipped:
        """What ``flows push`` prints: the method and this event's body (or array item)."""
        if self.settings.url is None:
            return NO_URL
        part = self.body.part(event, context)
        return [
            {
                "destination": self.id,
                "method": self.settings.method,
                "body": self.body.as_message(part),
            }
        ]

    def reserve(self, events: int) -> bool:
        return self.settings.url is None or self.sender.room.reserve(events)

    def release(self, events: int) -> None:
        if self.settings.url is not None:
            self.sender.room.release(events)

    def backlog(self) -> float:
        return self.sender.room.backlog()

    def flush(self, timeout: float) -> bool:
        return self.settings.url is None or self.sender.flush(timeout)

    def shutdown(self, timeout: float) -> ShutdownReport:
        report = self.sender.shutdown(timeout)
        if self.dead_letter is not None:
            self.dead_letter.close()
        return report

    def check_connection(self) -> ConnectionReport:
        return check_connection(self.settings)

    def replay(self, records: Iterable[DeadLetterRecord], outcome: ReplayOutcome) -> None:
        """Send dead-lettered bodies again through this destination's transport, each request
        tried once (``collector.destinations.api.replay``)."""
        replay_bodies(self.settings, self.body, records, outcome)

    def stats(self) -> dict[str, int]:
        return metrics(
            self.sender.stats, self.sender.depth(), self.sender.room.capacity, self.dead_letter
        )

    def histograms(self) -> dict[str, dict[str, Any]]:
        return histograms(self.sender.stats)
