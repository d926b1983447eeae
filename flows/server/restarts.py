"""When to restart a worker of ``flows run --workers`` that died, and when to give up.

A worker killed by the OOM killer or a crash is restarted soon, but one that
keeps dying is restarted less and less often, so a persistent fault does not
burn a core on start-ups. A worker that never got as far as listening (a
destination failing to initialise, say) will fail the same way every time:
after a few such start-ups in a row the whole server stops, with exit 1.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass

FIRST_DELAY = 0.5
"""Seconds before the first restart after a worker died."""
MAX_DELAY = 30.0
"""The delay doubles on each death in a row, up to this."""
STABLE_AFTER = 60.0
"""A worker that served this long before it died starts over at ``FIRST_DELAY``."""
START_FAILURES = 5
"""Consecutive deaths before listening that make the server give up."""


@dataclass(slots=True)
class RestartPolicy:
    """The backoff and the start-up failure count of one worker slot."""

    next_delay: float = FIRST_DELAY
    start_failures: int = 0

    def after_death(self, listened: bool, uptime: float) -> float | None:
        """Seconds to wait before restarting the slot, or None to give up on it."""
        if listened:
            self.start_failures = 0
            if uptime >= STABLE_AFTER:
                self.next_delay = FIRST_DELAY
        else:
            self.start_failures += 1
            if self.start_failures >= START_FAILURES:
                return None
        delay = self.next_delay
        self.next_delay = min(delay * 2, MAX_DELAY)
        return delay


def describe_exit(code: int) -> str:
    """A process's end in words, from ``os.waitstatus_to_exitcode``: "exited with 3"."""
    if code >= 0:
        return f"exited with {code}"
    try:
        return f"was killed by {signal.Signals(-code).name}"
    except ValueError:
        return f"was killed by signal {-code}"
