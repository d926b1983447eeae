"""``flows replay``'s progress on stderr: a line every ``every`` lines or ``interval`` seconds.

``collector.replay`` shows this the report after each line read or settled;
the check is two comparisons, so a large file is not slowed by it.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

from collector.replay import ReplayReport

EVERY_LINES = 1000
EVERY_SECONDS = 1.0


class ReplayProgress:
    """Prints ``flows: replay: N line(s) read, X replayed, Y failed`` now and then."""

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        every: int = EVERY_LINES,
        interval: float = EVERY_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        dry_run: bool = False,
    ) -> None:
        self.dry_run = dry_run
        self.stream = stream if stream is not None else sys.stderr
        self.every = every
        self.interval = interval
        self.clock = clock
        self._last_count = 0
        self._last_time = clock()

    def __call__(self, report: ReplayReport) -> None:
        count = report.read + report.replayed + report.failed
        if count - self._last_count < self.every and self.clock() - self._last_time < self.interval:
            return
        self._last_count = count
        self._last_time = self.clock()
        self._print(report, "")

    def done(self, report: ReplayReport) -> None:
        """The final summary line."""
        self._print(report, "dry run done: " if self.dry_run else "done: ")

    def _print(self, report: ReplayReport, prefix: str) -> None:
        sent = (
            f"{sum(report.planned.values())} would be replayed"
            if self.dry_run
            else f"{report.replayed} replayed"
        )
        print(
            f"flows: replay: {prefix}{report.read} line(s) read, {sent}, {report.failed} failed",
            file=self.stream,
            flush=True,
        )
