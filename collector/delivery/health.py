"""One warning when a destination's uploads start failing, one line when they work again.

A destination that is down fails every batch; logging each failure says the
same thing hundreds of times and buries the moment it began. ``UploadHealth``
turns the stream of outcomes into two lines per outage: the first failure
(with its reason) and the recovery (how many uploads failed, for how long).
"""

from __future__ import annotations

import logging
import threading
import time


class UploadHealth:
    """Tracks whether the last upload of destination ``name`` failed; safe from any thread."""

    def __init__(self, logger: logging.Logger, name: str) -> None:
        self.logger = logger
        self.name = name
        self.failures = 0
        """Failed uploads since the last one that worked (0: healthy)."""
        self._since = 0.0
        self._lock = threading.Lock()

    def failed(self, reason: str) -> None:
        """An upload (an attempt) failed; the first of a run is logged as a warning."""
        with self._lock:
            self.failures += 1
            first = self.failures == 1
            if first:
                self._since = time.monotonic()
        if first:
            self.logger.warning(
                "%s: uploads are failing: %s",
                self.name,
                reason,
                extra={"destination": self.name},
            )

    def succeeded(self) -> None:
        """An upload worked; after failures, say that the destination recovered."""
        if not self.failures:  # the common case: no lock
            return
        with self._lock:
            failures, self.failures = self.failures, 0
            lasted = time.monotonic() - self._since
        if failures:
            self.logger.info(
                "%s: uploads work again after %d failed upload(s) over %.1f s",
                self.name,
                failures,
                lasted,
                extra={"destination": self.name, "failures": failures},
            )
