"""``ApiDestination.replay``: dead-lettered bodies sent again through the destination's transport.

Each dead-letter line holds the body value one event contributed
(``BodyBuilder.as_message``); ``BodyBuilder.part_from_message`` turns it back
into the bytes ``push`` would have queued, so the requests are the ones the
destination makes with its current settings: one per event, or a JSON array
of up to ``batch.size`` of them. Each request is tried once; the answer
decides as it does for a live batch (2xx delivered, anything else failed
with its reason).
"""

from __future__ import annotations

from collections.abc import Iterable

from collector.dead_letter import first_line
from collector.delivery import SendError
from collector.destination import EventRejected
from collector.destinations.api.body import BodyBuilder
from collector.destinations.api.settings import ApiSettings
from collector.destinations.api.transport import HttpTransport
from collector.replay import DeadLetterRecord, ReplayOutcome

NO_URL = "the destination has no url: nothing to send to"


def replay(
    settings: ApiSettings,
    body: BodyBuilder,
    records: Iterable[DeadLetterRecord],
    outcome: ReplayOutcome,
) -> None:
    """Send ``records`` to ``settings.url``, ``batch.size`` per request when batched."""
    if settings.url is None:
        for record in records:
            outcome.failed([record], NO_URL)
        return
    size = settings.batch.size if settings.batch is not None else 1
    transport = HttpTransport(settings, body, 1)
    try:
        batch: list[tuple[DeadLetterRecord, bytes]] = []
        for record in records:
            try:
                batch.append((record, body.part_from_message(record.message)))
            except EventRejected as refusal:
                outcome.failed([record], refusal.reason)
                continue
            if len(batch) >= size:
                _send(transport, batch, outcome, settings.secrets())
                batch = []
        if batch:
            _send(transport, batch, outcome, settings.secrets())
    finally:
        transport.close()


def _send(
    transport: HttpTransport,
    batch: list[tuple[DeadLetterRecord, bytes]],
    outcome: ReplayOutcome,
    secrets: list[str],
) -> None:
    """One request, tried once: every record of it delivered, or every one failed."""
    records = [record for record, _part in batch]
    try:
        transport.send([part for _record, part in batch])
    except SendError as error:
        outcome.failed(records, error.reason)
        return
    except Exception as error:
        outcome.failed(records, f"{type(error).__name__}: {first_line(error, secrets)}")
        return
    outcome.delivered(records)
