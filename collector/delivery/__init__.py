"""What destinations that really deliver share: retries, queue room, counters, a sender.

- ``retry``: ``RetryPolicy`` (backoff, ``Retry-After``, limits) and which answers to retry;
- ``room``: ``QueueRoom``, the queue room admitted requests hold (``reserve``/``release``);
- ``stats``: ``DeliveryStats`` (queued, delivered, failed, ...) and the upload histogram,
  as ``Destination.stats()``/``histograms()`` hand them to metrics;
- ``sender``: ``BatchSender``, a bounded queue uploaded in batches by background threads,
  with retries, dead letters and a shutdown that keeps its deadline.
"""

from collector.delivery.retry import RetryPolicy, parse_retry_after, retryable_status
from collector.delivery.room import QueueRoom
from collector.delivery.sender import Batching, BatchSender, SendError, Transport
from collector.delivery.stats import DeliveryStats, histograms, metrics

__all__ = [
    "BatchSender",
    "Batching",
    "DeliveryStats",
    "QueueRoom",
    "RetryPolicy",
    "SendError",
    "Transport",
    "histograms",
    "metrics",
    "parse_retry_after",
    "retryable_status",
]
