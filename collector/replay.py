"""Replaying dead-letter files (``flows replay``): the part every destination shares.

A dead-letter file (``collector.dead_letter``) holds one JSON record per line.
``replay_file`` reads it, hands each destination the records meant for it
(``Destination.replay``, which sends them its own way) and keeps the account:
what a destination reports delivered is counted as replayed; what it reports
failed goes, with the new reason, to ``FILE.failed`` in the same format, ready
to be replayed later, and so does every line that cannot be read or has no
destination to go to. Each non-blank line ends counted exactly once, whatever
the destination does: a record it never reports, or never reads, fails too.

The file is streamed, never held in memory: one pass reads every line (the
unreadable ones settle there) and finds the destinations they name, then one
pass per destination feeds it its records. Only what the file held when the
first pass began is read, so a flow still appending to it changes nothing.

A dry run (``dry_run=True``) reads and checks every line the same way and
counts what each destination would be handed, but sends nothing and writes
(or removes) no ``FILE.failed``. ``rate`` paces the records handed to the
destinations (``collector.rate.TokenBucket``); ``on_progress`` sees the report
after every line read or settled, for a progress display.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol

from collector.dead_letter import dead_letter_line
from collector.rate import TokenBucket

if TYPE_CHECKING:
    from collector.destination import Destination

ProblemSink = Callable[[str], None]
"""Told one line per problem: ``FILE:LINE: reason``, or ``FILE: n message(s) ... failed``."""

ProgressSink = Callable[["ReplayReport"], None]
"""Shown the report as it grows (after each line read or settled); it must be cheap."""


class CannotReplayError(Exception):
    """The destination has no ``replay``: nothing it dead-letters can be sent again."""


@dataclass(frozen=True, slots=True)
class DeadLetterRecord:
    """One line of a dead-letter file, read: what to send again and to whom."""

    destination: str
    """The id of the destination to send it to: the line's, or the one ``flows replay``
    was told (``--destination``)."""
    message: Any
    """What the destination could not deliver (its ``message``), as it wrote it."""
    line: int
    """Line number in the file (from 1), for problem reports."""
    reason: str = ""
    """Why it was dead-lettered."""
    time: str = ""
    """When it was dead-lettered (ISO 8601, UTC)."""


class ReplayOutcome(Protocol):
    """Where ``Destination.replay`` reports what became of each record it was given."""

    def delivered(self, records: Iterable[DeadLetterRecord]) -> None:
        """These records were accepted by the destination's endpoint."""

    def failed(self, records: Iterable[DeadLetterRecord], reason: str) -> None:
        """These records were not delivered, for ``reason`` (no secrets in it)."""


@dataclass(slots=True)
class ReplayReport:
    """What a replay did: messages delivered, lines that failed, where those went."""

    path: Path
    failed_path: Path
    replayed: int = 0
    failed: int = 0
    read: int = 0
    """Non-blank lines read (the first pass)."""
    planned: dict[str, int] = field(default_factory=dict)
    """A dry run's account: messages each destination (by id) would have been handed."""


def failed_path_for(path: Path) -> Path:
    """``FILE.failed``: where the lines a replay of FILE could not deliver go."""
    return path.with_name(path.name + ".failed")


def replay_file(
    path: str | Path,
    destinations: Mapping[str, Destination[Any]],
    *,
    destination: str | None = None,
    on_problem: ProblemSink = lambda line: None,
    on_progress: ProgressSink = lambda report: None,
    dry_run: bool = False,
    rate: float | None = None,
) -> ReplayReport:
    """Send every message of the dead-letter file ``path`` again.

    Each line goes to ``destination`` if given, else to the destination it
    records, which must be in ``destinations`` (by id) and replay dead letters.
    ``dry_run``: check and count only; ``rate``: at most that many records
    handed over per second. Raises OSError if ``path`` cannot be read.
    """
    source = Path(path)
    bucket = TokenBucket(rate) if rate is not None else None
    with _FailedFile(failed_path_for(source), dry_run=dry_run) as failed:
        account = _Account(ReplayReport(source, failed.path), failed, on_problem, on_progress)
        with source.open("rb") as file:
            targets = _scan(file, destination, account)
            end = file.tell()
        for target in targets:
            with source.open("rb") as file:
                records = _records(file, end, destination, target)
                found = destinations.get(target)
                if found is None or not found.replays:
                    account.refuse_all(records, _unreplayable(target, found))
                elif dry_run:
                    account.plan(target, records)
                else:
                    account.run(found, bucket.paced(records) if bucket else records)
    if not account.report.failed and not dry_run:
        failed.path.unlink(missing_ok=True)  # a stale one: all of it came from FILE, now replayed
    return account.report


def replayable(destinations: Iterable[Destination[Any]]) -> dict[str, Destination[Any]]:
    """The destinations that replay dead letters, by id."""
    return {found.id: found for found in destinations if found.replays}


def _unreplayable(target: str, found: Destination[Any] | None) -> str:
    if found is None:
        return f"destination {target!r} is not in the flow (choose one with --destination ID)"
    return f"destination {target!r} ({found.type}) cannot replay dead letters"


# -- reading the file ------------------------------------------------------------------------


def _lines(file: IO[bytes], end: int | None = None) -> Iterator[tuple[int, bytes]]:
    """(line number, line) of the non-blank lines, up to byte ``end`` (None: to the end)."""
    offset = 0
    for number, raw in enumerate(file, 1):
        offset += len(raw)
        if end is not None and offset > end:
            return
        if raw.strip():
            yield number, raw


def _parse(raw: bytes, number: int, destination: str | None) -> DeadLetterRecord | str:
    """The record of one line, or why it cannot be replayed."""
    try:
        record = json.loads(raw)  # not orjson: an integer past 64 bits is still a value
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        return f"not valid JSON: {error}"
    if not isinstance(record, dict):
        return "not a dead-letter record (a JSON object with a message)"
    if "message" not in record:
        if "event" in record:
            return (
                'an "event" line (an events dead-letter file): replay sends messages; '
                "post the event to the flow again"
            )
        return 'no "message"'
    target = destination or record.get("destination")
    if not isinstance(target, str) or not target:
        return 'no "destination" (give one with --destination ID)'
    reason, time = record.get("reason"), record.get("time")
    return DeadLetterRecord(
        target,
        record["message"],
        number,
        reason if isinstance(reason, str) else "",
        time if isinstance(time, str) else "",
    )


def _scan(file: IO[bytes], destination: str | None, account: _Account) -> dict[str, None]:
    """Settle every unreadable line; the destinations the others name, in order (a set)."""
    targets: dict[str, None] = {}
    for number, raw in _lines(file):
        account.report.read += 1
        parsed = _parse(raw, number, destination)
        if isinstance(parsed, str):
            account.unreadable(number, raw, parsed)
        else:
            targets[parsed.destination] = None
            account.on_progress(account.report)
    return targets


def _records(
    file: IO[bytes], end: int, destination: str | None, target: str
) -> Iterator[DeadLetterRecord]:
    """The records for ``target`` among the first ``end`` bytes (the scan settled the rest)."""
    for number, raw in _lines(file, end):
        parsed = _parse(raw, number, destination)
        if not isinstance(parsed, str) and parsed.destination == target:
            yield parsed


# -- keeping the account ---------------------------------------------------------------------


class _Account:
    """The ``ReplayOutcome`` of a replay: counts, problem lines and ``FILE.failed``.

    Records handed to a destination stay open until it reports them; one
    reported twice counts once (the first report).
    """

    def __init__(
        self,
        report: ReplayReport,
        failed: _FailedFile,
        on_problem: ProblemSink,
        on_progress: ProgressSink,
    ) -> None:
        self.report = report
        self.failed_file = failed
        self.on_problem = on_problem
        self.on_progress = on_progress
        self._open: dict[int, DeadLetterRecord] = {}

    def delivered(self, records: Iterable[DeadLetterRecord]) -> None:
        self.report.replayed += len(self._settle(records))
        self.on_progress(self.report)

    def failed(self, records: Iterable[DeadLetterRecord], reason: str) -> None:
        settled = self._settle(records)
        if not settled:
            return
        self.report.failed += len(settled)
        if len(settled) == 1:
            self.on_problem(f"{self.report.path}:{settled[0].line}: {reason}")
        else:
            self.on_problem(
                f"{self.report.path}: {len(settled)} message(s) to "
                f"{settled[0].destination!r} failed: {reason}"
            )
        for record in settled:
            self.failed_file.write(dead_letter_line(record.destination, reason, record.message))
        self.on_progress(self.report)

    def unreadable(self, number: int, raw: bytes, reason: str) -> None:
        """A line that cannot be read goes over verbatim, to be fixed by hand."""
        self.on_problem(f"{self.report.path}:{number}: {reason}")
        self.failed_file.write(raw if raw.endswith(b"\n") else raw + b"\n")
        self.report.failed += 1
        self.on_progress(self.report)

    def plan(self, target: str, records: Iterable[DeadLetterRecord]) -> None:
        """A dry run: count what ``target`` would be handed; nothing is sent."""
        planned = self.report.planned
        for _record in records:
            planned[target] = planned.get(target, 0) + 1

    def refuse_all(self, records: Iterable[DeadLetterRecord], reason: str) -> None:
        for record in self._opened(records):
            self.failed([record], reason)

    def run(self, destination: Destination[Any], records: Iterator[DeadLetterRecord]) -> None:
        """``destination.replay`` over ``records``; then fail what it left unreported or unread."""
        handed = self._opened(records)
        try:
            destination.replay(handed, self)
        except Exception as error:  # a bug in the destination: its records fail, others go on
            # Only the type: the text of an unexpected error may quote a secret setting.
            reason = (
                f"destination {destination.id!r} failed while replaying: {type(error).__name__}"
            )
        else:
            reason = f"destination {destination.id!r} did not report it replayed"
        self.failed(list(self._open.values()), reason)  # handed over, never reported
        for record in handed:  # never read
            self.failed([record], reason)

    def _opened(self, records: Iterable[DeadLetterRecord]) -> Iterator[DeadLetterRecord]:
        for record in records:
            self._open[record.line] = record
            yield record

    def _settle(self, records: Iterable[DeadLetterRecord]) -> list[DeadLetterRecord]:
        """Those of ``records`` still open, now closed."""
        return [record for record in records if self._open.pop(record.line, None) is not None]


class _FailedFile:
    """``FILE.failed``: made on the first line written (replacing an older one), else left be.

    In a dry run nothing is written: the lines are only counted by the account.
    """

    def __init__(self, path: Path, *, dry_run: bool = False) -> None:
        self.path = path
        self.dry_run = dry_run
        self._file: IO[bytes] | None = None

    def __enter__(self) -> _FailedFile:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._file is not None:
            self._file.close()

    def write(self, line: bytes) -> None:
        if self.dry_run:
            return
        if self._file is None:
            self._file = self.path.open("wb")
        self._file.write(line)
