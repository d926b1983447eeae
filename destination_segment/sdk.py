"""The one seam to segment-analytics-python: every SDK name this package uses comes from here.

The destination subclasses the SDK's ``Client`` (``sdk_client.FastEnqueueClient``)
and ``Consumer`` (``consumer.ShutdownSafeConsumer``), overrides some of their
private methods, reads their attributes, and repeats a little of what they
build (the ``context.library`` the SDK adds, its log channel). An SDK release
that renames or reshapes any of that would not fail: the override would
silently stop being called. So nothing else imports the SDK, and
``tests/test_sdk_contract.py`` checks every name below, and every method and
attribute the subclasses rely on, against the installed release; when it
fails, this module (and what uses the name) must follow.
"""

from __future__ import annotations

import logging
from typing import Any, Final

from segment.analytics.client import Client
from segment.analytics.consumer import BATCH_SIZE_LIMIT, MAX_MSG_SIZE, Consumer
from segment.analytics.request import DatetimeSerializer, post
from segment.analytics.version import VERSION

__all__ = [
    "BATCH_SIZE_LIMIT",
    "LIBRARY",
    "MAX_MSG_SIZE",
    "SDK_BATCH_PATH",
    "SDK_LOGGER",
    "VERSION",
    "Client",
    "Consumer",
    "DatetimeSerializer",
    "post",
    "sdk_logger",
]

SDK_LOGGER: Final = "segment"
"""The logger the SDK's Client, Consumer and ``post`` write to (request bodies at DEBUG,
the write key with them): where the write-key redaction is installed."""

SDK_BATCH_PATH: Final = "/v1/batch"
"""What ``post`` appends to its ``host``: a path prefix goes into the host it is given."""

LIBRARY: Final[dict[str, Any]] = {"name": "analytics-python", "version": VERSION}
"""What the SDK's ``Client._enqueue`` sets as ``context.library`` on every message."""


def sdk_logger() -> logging.Logger:
    """The SDK's logger (``SDK_LOGGER``)."""
    return logging.getLogger(SDK_LOGGER)
