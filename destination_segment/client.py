"""How to send: the official SDK's Client, wrapped to be safe in a server.

segment-analytics-python 2.4 batches, retries and posts. Around it this
module adds what a server needs: a Client made in the process that uses it
(the SDK is not fork-safe), one tracked set of consumer threads (its
``thread`` > 1 loses track of all but one), an ``on_error`` that can never
raise (a raising one kills the consumer silently), counters for every
dropped or failed message, the write key kept out of every log line, and a
shutdown that flushes within a time limit (the SDK's flush has none).
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from collector.delivery import DeliveryStats, QueueRoom, RetryPolicy
from collector.delivery.health import UploadHealth
from collector.delivery.sender import IN_FLIGHT_AT_DEADLINE
from collector.destination import ShutdownReport
from destination_segment.calls import SegmentCall
from destination_segment.consumer import ShutdownSafeConsumer, StoppedBeforeDeliveryError
from destination_segment.redaction import RedactSecret, first_line
from destination_segment.sdk import MAX_MSG_SIZE, Consumer, sdk_logger
from destination_segment.sdk_client import FastEnqueueClient, MessageTooLargeError, preview_client
from destination_segment.settings import SegmentSettings

logger = logging.getLogger("flows.destination.segment")
Staged = tuple[dict[str, Any], int]
"""A message as the SDK would queue it, and its encoded size."""


class CallRejected(Exception):  # noqa: N818  # an outcome, as EventRejected
    """The SDK would refuse this call for good (over 32 KB, a bad id); ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class SegmentClient:
    """One SDK Client per process, with accounting and a bounded shutdown."""

    def __init__(
        self,
        settings: SegmentSettings,
        on_failure: Callable[[list[dict[str, Any]], str], None] | None = None,
    ) -> None:
        self.settings = settings
        self.stats = DeliveryStats()
        """What happened to the messages; ``stats.upload_seconds`` times each batch upload."""
        self.room = QueueRoom(settings.max_queue_size, self.queue_depth)
        """``maxQueueSize`` beside the queued messages, held by admitted requests (see reserve)."""
        self.policy = retry_policy(settings)
        self.health = UploadHealth(logger, "segment")
        """Logs when uploads start failing and when they recover (not every batch)."""
        self._on_failure = on_failure
        self._write_key = settings.write_key.get_secret_value()
        self._client: FastEnqueueClient | None = None
        self._consumers: list[Consumer] = []
        self._pid = 0
        self._lock = threading.Lock()
        self._accounting = threading.Lock()  # see consumer.py: a batch is counted once
        _install_redaction(self._write_key)

    # -- the SDK client, per process --------------------------------------------------------

    def _make_client(self) -> FastEnqueueClient:
        settings = self.settings
        common: dict[str, Any] = {
            "host": settings.sdk_host,
            "on_error": self._on_error,
            "gzip": settings.gzip,
            "upload_size": settings.flush_at,
            "upload_interval": settings.flush_interval / 1000,
            "max_retries": self.policy.max_retries,
            "timeout": settings.http_request_timeout / 1000,
        }
        client = FastEnqueueClient(
            write_key=self._write_key,
            # Unbounded: maxQueueSize is kept by reserve/put, so neither an admitted
            # request nor a batch the SDK re-queues (Retry-After) can find it full.
            max_queue_size=0,
            send=not settings.disable,
            thread=0,  # no SDK consumer: ours below report what shutdown interrupts
            **common,
        )
        # The SDK joins its consumers at exit with no time limit, so a hanging upload
        # would hold the process past its shutdown deadline; shutdown() joins ours.
        atexit.unregister(client.join)
        consumers: list[Consumer] = []
        if not settings.disable:
            # The SDK's own thread>1 keeps only the last consumer; make and track ours.
            gathering = threading.Lock()
            for _ in range(settings.consumer_threads):
                consumer = ShutdownSafeConsumer(
                    client.queue,
                    self._write_key,
                    host=common["host"],
                    on_error=self._on_error,
                    upload_size=common["upload_size"],
                    upload_interval=common["upload_interval"],
                    gzip=common["gzip"],
                    retries=common["max_retries"],
                    timeout=common["timeout"],
                    max_total_backoff_duration=self.policy.max_total,
                    max_rate_limit_duration=self.policy.max_rate_limit,
                    message_sizes=client.message_sizes,
                    gathering=gathering,
                    accounting=self._accounting,
                    on_uploaded=self._uploaded,
                )
                consumer.start()
                consumers.append(consumer)
        client.consumers = consumers  # Client.join() (atexit) pauses and joins these
        self._consumers = consumers
        return client

    def client(self) -> FastEnqueueClient:
        """The Client of this process, made on first use and again after a fork."""
        client = self._client
        if client is not None and self._pid == os.getpid():
            return client
        with self._lock:
            if self._client is None or self._pid != os.getpid():
                self._client = self._make_client()
                self._pid = os.getpid()
            return self._client

    # -- sending ----------------------------------------------------------------------------

    def stage(self, call: SegmentCall) -> Staged:
        """The message the SDK would queue for ``call``, checked, not yet queued.

        Raises CallRejected (counted) where the SDK would refuse it: a message
        over 32 KB or a bad id. Sending it again would fail the same way.
        """
        try:
            return self.client().stage(call.type, call.params)
        except MessageTooLargeError as error:
            reason = (
                f"the {call.type} message is {error.size} bytes, over Segment's 32 KB limit "
                f"({MAX_MSG_SIZE} bytes); send less data"
            )
        except (AssertionError, RuntimeError) as error:  # the SDK refuses bad ids by raising
            reason = f"the SDK refuses the {call.type} call: {first_line(error)[:200]}"
        self.stats.add("rejected")
        raise CallRejected(reason)

    def put(self, staged: Staged) -> bool:
        """Queue a staged message; False (counted, logged) when it had no room.

        A request the http source admitted holds room (``reserve``), so its
        messages always fit; only a push outside a reservation can be dropped.
        """
        if self.room.full_for_unreserved():
            self.stats.add("dropped_queue_full")
            logger.warning(
                "segment queue is full (maxQueueSize=%d): %s call dropped",
                self.settings.max_queue_size,
                staged[0].get("type"),
            )
            return False
        self.client().put(*staged)
        self.stats.add("queued")
        return True

    def send(self, call: SegmentCall) -> bool:
        """Hand one call to the SDK; False (counted, logged) when it was not queued."""
        try:
            staged = self.stage(call)
        except CallRejected as refusal:
            logger.error("segment %s call rejected: %s", call.type, refusal.reason)
            return False
        return self.put(staged)

    def reserve(self, messages: int) -> bool:
        """Hold queue room for ``messages`` until ``release``; False when it has none now."""
        return self.room.reserve(messages)

    def release(self, messages: int) -> None:
        self.room.release(messages)

    def flush(self, timeout: float) -> bool:
        """Upload what is queued now; True once every message was accepted by Segment or
        given to ``on_failure`` (dead-lettered), False if ``timeout`` s passed first."""
        client = self._client
        if client is None or self._pid != os.getpid():
            return True
        deadline = time.monotonic() + max(0.0, timeout)
        queue = client.queue
        hurried = [c for c in self._consumers if not c.hurrying]
        for consumer in hurried:
            consumer.hurrying = True
        try:
            with queue.all_tasks_done:
                while queue.unfinished_tasks:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return False
                    queue.all_tasks_done.wait(remaining)
            return True
        finally:
            for consumer in hurried:
                consumer.hurrying = False

    def _uploaded(self, size: int, error: BaseException | None, seconds: float) -> None:
        """A consumer finished an upload of ``size`` messages: time it, count what Segment
        took, and say when uploads start failing and when they work again."""
        self.stats.upload_seconds.observe(seconds)
        self.stats.batch_size.observe(size)
        if error is None:
            self.stats.add("delivered", size)
            self.health.succeeded()
        else:
            self.health.failed(first_line(error, [self._write_key]))

    def queue_depth(self) -> int:
        client = self._client
        return client.queue.qsize() if client is not None else 0

    def queue_capacity(self) -> int:
        return self.settings.max_queue_size

    def _on_error(self, error: Exception, batch: list[dict[str, Any]]) -> None:
        """Called by a consumer thread when a batch is given up; must never raise."""
        try:
            reason = first_line(error, [self._write_key])
            self.stats.add("failed", len(batch))
            logger.error(
                "segment: %d message(s) not delivered: %s",
                len(batch),
                reason,
                extra={"destination": "segment"},
            )
            if self._on_failure is not None:
                self._on_failure(batch, reason)
        except BaseException:  # a raise here would kill the SDK consumer thread
            with contextlib.suppress(BaseException):
                logger.exception("segment: error handler failed")

    # -- shutdown ---------------------------------------------------------------------------

    def shutdown(self, timeout: float) -> ShutdownReport:
        """Flush within ``timeout`` seconds, stop the consumers, report what was not delivered."""
        client = self._client
        if client is None or self._pid != os.getpid():
            return ShutdownReport()
        deadline = time.monotonic() + max(0.0, timeout)
        failed_before = self.stats.failed
        queue = client.queue
        for consumer in self._consumers:  # a long flushInterval must not eat the deadline
            consumer.hurrying = True
        with queue.all_tasks_done:
            while queue.unfinished_tasks:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                queue.all_tasks_done.wait(remaining)
            timed_out = queue.unfinished_tasks > 0
        for consumer in self._consumers:
            consumer.pause()
        for consumer in self._consumers:
            if consumer.is_alive():
                consumer.join(max(0.0, deadline - time.monotonic()) + 0.05)
        with self._accounting:  # no consumer is between reporting a batch and marking it done
            abandoned = 0
            for consumer in self._consumers:
                held = consumer.abandon()
                if held:
                    abandoned += len(held)
                    # The process may exit before this upload ends: record it now. It may
                    # still arrive; a replay is then de-duplicated by messageId.
                    self._on_error(StoppedBeforeDeliveryError(IN_FLIGHT_AT_DEADLINE), held)
            left = _drain(queue)
            if left and self._on_failure is not None:
                self._on_failure(left, "shutdown timeout")
            # Messages a consumer took but never finished (an upload still hanging) count too.
            in_flight = queue.unfinished_tasks
            undelivered = (
                len(left) + max(0, in_flight - abandoned) + (self.stats.failed - failed_before)
            )
        self._client = None
        return ShutdownReport.after_flush(undelivered, timed_out, len(left), in_flight, "message")

    def alive_consumers(self) -> int:
        return sum(1 for c in self._consumers if c.is_alive())


def retry_policy(settings: SegmentSettings) -> RetryPolicy:
    """The settings' retry limits; the SDK's consumer applies them with its own schedule
    (first retry at once, then 0.5 s doubling up to 60 s, ``Retry-After`` capped at 300 s)."""
    return RetryPolicy(
        max_retries=settings.max_retries,
        max_total=settings.max_total_backoff_duration / 1000,
        max_rate_limit=settings.max_rate_limit_duration / 1000,
    )


def render_message(call: SegmentCall) -> dict[str, Any]:
    """The exact message a push would queue for ``call`` (as posted in /v1/batch)."""
    return preview_client().render(call.type, call.params)


def _drain(queue: Any) -> list[dict[str, Any]]:
    left: list[dict[str, Any]] = []
    while True:
        try:
            left.append(queue.get_nowait())
        except Exception:
            return left
        queue.task_done()


_redacted: set[str] = set()


def _install_redaction(secret: str) -> None:
    """Keep ``secret`` out of the SDK's and our own log records, at every level."""
    if not secret or secret in _redacted:
        return
    _redacted.add(secret)
    # The SDK logs on its own logger directly (logger filters do not see propagated
    # records); our own log lines never carry the key.
    sdk_logger().addFilter(RedactSecret(secret))
