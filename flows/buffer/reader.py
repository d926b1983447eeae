"""One destination's reader of the buffer: its own consumer group, acknowledging only
what the destination delivered (or dead-lettered).

Loop: claim entries another consumer left pending longer than ``claimIdle``
(XAUTOCLAIM), else read new ones (XREADGROUP, blocking up to ``block``);
push each entry's event through the collector for this destination; wait
until the destination settled everything queued (``Destination.flush``);
then XACK the entries and trim what every group has acknowledged. A reader
stopped or killed before the ack leaves its entries pending: a live reader
claims them, and Segment drops the repeats by messageId (at least once).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from typing import Any

import redis

from collector.chain import Chain, RoutedChain
from collector.collector import ActiveDestination, Collector
from collector.destination import EventRejected
from flows.buffer.stream import EventBuffer, decode

logger = logging.getLogger("flows.buffer")

RETRY_PAUSE = 0.5
"""Seconds between attempts while Redis cannot be reached."""
FLUSH_SLICE = 0.2
"""Seconds of each wait for the destination, between looks whether the reader stops."""

Entry = tuple[bytes, dict[bytes, bytes] | None]


def consumer_name() -> str:
    """Unique per process: host, pid and a random part (a restart is a new consumer)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class BufferReader:
    """The thread that delivers the buffer to one destination."""

    def __init__(
        self,
        buffer: EventBuffer,
        collector: Collector,
        active: ActiveDestination,
        chains: dict[str, Chain | RoutedChain | None],
        consumer: str,
    ) -> None:
        self.buffer = buffer
        self.collector = collector
        self.active = active
        self.group = active.id
        self.chains = chains
        self.consumer = consumer
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._next_claim = 0.0
        self._reading: redis.Redis | None = None
        """A client whose socket timeout outlasts the blocking read."""

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._run, name=f"flows-buffer-{self.group}", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float) -> None:
        """Stop by ``timeout`` s; entries not yet acknowledged stay pending for another reader."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(max(0.0, timeout))

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        down = False
        grouped = False
        while not self._stop.is_set():
            try:
                if not grouped:  # every group before any trim: none may lose entries
                    self.buffer.ensure_groups([a.id for a in self.collector.destinations])
                    if self._reading is None:
                        self._reading = self.buffer.reading_client()
                    grouped = True
                entries = self._claim() or self._read()
                if entries:
                    self._deliver(entries)
                if down:
                    logger.warning("buffer: redis at %s answers again", self.buffer.store.where)
                    down = False
            except redis.RedisError as error:
                if "NOGROUP" in str(error):  # a Redis started empty: make the groups again
                    grouped = False
                    continue
                if not down:
                    logger.error(
                        "buffer: redis at %s unreachable (%s); destination %s waits",
                        self.buffer.store.where,
                        type(error).__name__,
                        self.group,
                    )
                    down = True
                self._stop.wait(RETRY_PAUSE)
            except Exception:  # never lose the reader: log, pause, go on
                logger.exception("buffer: reader of destination %s failed", self.group)
                self._stop.wait(RETRY_PAUSE)

    def _claim(self) -> list[Entry]:
        """Entries idle longer than ``claimIdle`` in any consumer of the group (a dead one)."""
        now = time.monotonic()
        if now < self._next_claim:
            return []
        settings = self.buffer.settings
        answer = self.buffer.client().xautoclaim(
            self.buffer.key,
            self.group,
            self.consumer,
            settings.claim_idle,
            start_id="0-0",
            count=settings.batch,
        )
        entries: list[Entry] = answer[1]
        deleted: list[bytes] = answer[2] if len(answer) > 2 else []
        if deleted:  # trimmed while pending: nothing to deliver, drop them from the group
            self.buffer.client().xack(self.buffer.key, self.group, *deleted)
        if entries:
            self.buffer.stats.claimed += len(entries)
            logger.info(
                "buffer: destination %s claimed %d entries a stopped reader left",
                self.group,
                len(entries),
            )
        else:
            self._next_claim = now + settings.claim_idle / 4000
        return entries

    def _read(self) -> list[Entry]:
        settings = self.buffer.settings
        assert self._reading is not None  # made with the groups, before the first read
        answer: Any = self._reading.xreadgroup(
            self.group,
            self.consumer,
            {self.buffer.key: ">"},
            count=settings.batch,
            block=settings.block,
        )
        streams: Any = answer  # RESP2: [[key, entries]]
        return list(streams[0][1]) if streams else []

    def _deliver(self, entries: list[Entry]) -> None:
        """Push the entries' events, wait until the destination settled them, then ack."""
        if not self._push(entries):
            return
        ids: list[Any] = [entry_id for entry_id, _ in entries]
        client = self.buffer.client()
        keep_until = time.monotonic() + self.buffer.settings.claim_idle / 2000
        while not self.active.destination.flush(FLUSH_SLICE):
            if self._stop.is_set():
                return  # not acknowledged: pending, claimed by a live reader later
            if time.monotonic() > keep_until:  # still ours: not idle for another reader
                client.xclaim(
                    self.buffer.key, self.group, self.consumer, 0, tuple(ids), justid=True
                )
                keep_until = time.monotonic() + self.buffer.settings.claim_idle / 2000
        self.buffer.stats.acked += int(client.xack(self.buffer.key, self.group, *ids))
        self.buffer.trim()

    def _push(self, entries: list[Entry]) -> bool:
        """Push with queue room held for all of them, so none is dropped for a full queue.

        Room is awaited while the destination drains; entries more than its whole
        queue holds go in halves. False: the reader stopped first.
        """
        destination = self.active.destination
        held = True
        while not destination.reserve(len(entries)):
            drained = destination.flush(FLUSH_SLICE)
            if drained and len(entries) > 1:
                half = len(entries) // 2
                return self._push(entries[:half]) and self._push(entries[half:])
            if drained:  # one event more than the whole queue: pushed unreserved (counted)
                held = False
                break
            if self._stop.is_set():
                return False
        try:
            self._push_held(entries)
        finally:
            if held:
                destination.release(len(entries))
        return True

    def _push_held(self, entries: list[Entry]) -> None:
        active = self.active
        collector = self.collector
        with collector.request_for(active):
            for _id, fields in entries:
                data = fields.get(b"e") if fields else None
                if data is None:
                    continue
                event, source, ingest = decode(data)
                outcomes = collector.deliver_to(active, event, self.chains.get(source), ingest)
                for outcome in outcomes:
                    if isinstance(outcome, EventRejected):  # for good: on record, then acked
                        active.dead_letter.write([event], f"rejected: {outcome.reason}")


def start_readers(
    buffer: EventBuffer,
    collector: Collector,
    chains: dict[str, Any],
) -> list[BufferReader]:
    """Start every destination's reader; each waits for Redis if it is down."""
    consumer = consumer_name()
    readers = [
        BufferReader(buffer, collector, active, chains, consumer)
        for active in collector.destinations
    ]
    for reader in readers:
        reader.start()
    return readers
