"""A local Segment-compatible receiver: what Segment would receive, without an account.

It speaks the Segment HTTP Tracking API as far as a client can observe it
(``POST /v1/batch`` and the six single-call endpoints, Basic auth with the
write key, gzip bodies, Segment's 32 KB message and 500 KB batch limits, JSON
errors with ``code`` and ``message``), records every accepted message, and lets
tests inject failures and hangs. Tests, benchmarks and ``make run`` all send
here, so it stays standard-library HTTP plus orjson and keeps each request cheap.

Beyond the tracking API it serves a small read-back and control surface::

    GET    /messages[?type=track]  -> {"count": N, "messages": [...]}
    DELETE /messages               -> clears messages and counters
    GET    /stats                  -> the counters of ``SegmentReceiver.stats``
    GET    /health                 -> {"status": "ok"}
    POST   /_control  {"status": 500, "count": 3, "retryAfter": 2, "delay": 0.5}
    GET    /_control               -> the faults now armed
    DELETE /_control               -> no more faults

Run it with ``python -m destination_segment.receiver --port 9010``.

The modules: ``protocol`` (the Tracking API checks, pure), ``body`` (reading a
bounded request body), ``faults`` (injected failures and delays), ``handler``
(routing each request), ``server`` (the threaded HTTP server), ``recording``
(accepted messages and counters), ``core`` (``SegmentReceiver``) and ``cli`` (``main``).
"""

from destination_segment.receiver.cli import DEFAULT_PORT as DEFAULT_PORT
from destination_segment.receiver.cli import main
from destination_segment.receiver.core import SegmentReceiver
from destination_segment.receiver.protocol import (
    MAX_BATCH_BYTES,
    MAX_BODY_BYTES,
    MAX_MESSAGE_BYTES,
)
from destination_segment.receiver.protocol import SPEC_TYPES as SPEC_TYPES

__all__ = [
    "MAX_BATCH_BYTES",
    "MAX_BODY_BYTES",
    "MAX_MESSAGE_BYTES",
    "SegmentReceiver",
    "main",
]
