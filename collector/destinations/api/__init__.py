"""The ``api`` destination: events to any HTTP endpoint (walkerOS's
``@walkeros/server-destination-api``), batched, retried and dead-lettered.

- ``settings``: the flow-file settings, checked at load;
- ``body``: what is sent for an event and for a batch;
- ``transport``: one request per batch over a pooled httpx client;
- ``check``: ``flows validate --check`` (connect only);
- ``replay``: ``flows replay`` of its dead letters, through the same transport;
- ``destination``: ``ApiDestination``, on ``collector.delivery.BatchSender``.
"""

from collector.destinations.api.destination import ApiDestination
from collector.destinations.api.settings import ApiSettings, BatchOptions

__all__ = ["ApiDestination", "ApiSettings", "BatchOptions"]
