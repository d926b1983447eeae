"""``SegmentDestination.replay``: dead-lettered messages to Segment again, as they were written.

The messages keep their messageId, so Segment drops any that did arrive
before. They are posted in batches (``flushAt`` messages, under the SDK's
batch byte limit) with the SDK's own request function, so the wire format
is the one the destination uses; each batch is tried once. A message that is
not an object, or is over Segment's 32 KB limit, fails alone.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Iterator
from typing import Any

from collector.replay import DeadLetterRecord, ReplayOutcome
from destination_segment.redaction import RedactSecret, first_line
from destination_segment.sdk import BATCH_SIZE_LIMIT, MAX_MSG_SIZE, post, sdk_logger
from destination_segment.settings import SegmentSettings


def replay(
    settings: SegmentSettings, records: Iterable[DeadLetterRecord], outcome: ReplayOutcome
) -> None:
    """Post ``records`` to the settings' host with their write key; report each batch."""
    batch: list[DeadLetterRecord] = []
    size = 0
    for record in records:
        message = record.message
        if not isinstance(message, dict):
            outcome.failed([record], "not a Segment message (a JSON object)")
            continue
        message_size = len(json.dumps(message).encode())
        if message_size > MAX_MSG_SIZE:
            outcome.failed(
                [record],
                f"the message is {message_size} bytes; Segment's limit is {MAX_MSG_SIZE} (32 KB)",
            )
            continue
        if batch and (len(batch) >= settings.flush_at or size + message_size > BATCH_SIZE_LIMIT):
            _post(settings, batch, outcome)
            batch, size = [], 0
        batch.append(record)
        size += message_size
    if batch:
        _post(settings, batch, outcome)


def _post(settings: SegmentSettings, batch: list[DeadLetterRecord], outcome: ReplayOutcome) -> None:
    """Post one batch once: all of it delivered, or all of it failed."""
    write_key = settings.write_key.get_secret_value()
    messages: list[dict[str, Any]] = [record.message for record in batch]
    try:
        with _redacting(write_key):
            post(
                write_key,
                host=settings.sdk_host,
                gzip=settings.gzip,
                timeout=settings.http_request_timeout / 1000,
                batch=messages,
            )
    except Exception as error:
        outcome.failed(batch, first_line(error, [write_key]))
        return
    outcome.delivered(batch)


@contextlib.contextmanager
def _redacting(secret: str) -> Iterator[None]:
    """Keep ``secret`` out of what the SDK logs while posting (it logs request bodies)."""
    logger = sdk_logger()
    redaction = RedactSecret(secret)
    logger.addFilter(redaction)
    try:
        yield
    finally:
        logger.removeFilter(redaction)
