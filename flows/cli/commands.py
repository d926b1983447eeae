"""``flows`` subcommands from other distributions: the entry-point group ``flows.commands``.

A distribution registers, under the group, a callable that is given ``add``
and adds its command with it, as ``destination_segment`` adds
``segment-sink``::

    [project.entry-points."flows.commands"]
    segment-sink = "destination_segment.sink_command:add_command"

    def add_command(add: AddCommand) -> None:
        parser = add("segment-sink", run, "Run a local Segment-compatible receiver")
        parser.add_argument("--port", type=int)

``add(name, handler, help)`` returns the command's argparse parser.
``handler(args)`` returns the exit code and raises ``CommandError`` for a
failure, which ``flows`` prints as ``flows: error: ...`` lines with exit
code 1, as it does for its own commands. A callable that fails (an import
error, a name already taken) costs only its command: ``flows`` warns and
keeps the rest. Name the entry point after the command: warnings use it.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable, Sequence
from importlib.metadata import EntryPoint, entry_points
from typing import Final, Protocol

from collector.dead_letter import first_line

GROUP: Final = "flows.commands"

Handler = Callable[[argparse.Namespace], int]
"""A command: the parsed arguments in, the exit code out."""


class AddCommand(Protocol):
    """What a ``flows.commands`` callable is given: adds a command, returns its parser."""

    def __call__(self, name: str, handler: Handler, help_: str) -> argparse.ArgumentParser: ...


class CommandError(Exception):
    """A user-facing failure: each line is printed after ``flows: error:``."""

    def __init__(self, lines: Sequence[str] | str) -> None:
        self.lines = [lines] if isinstance(lines, str) else list(lines)
        super().__init__("\n".join(self.lines))


class CommandTakenError(ValueError):
    """A command of that name exists already."""


def add_installed_commands(
    add: AddCommand,
    warn: Callable[[str], None],
    found: Iterable[EntryPoint] | None = None,
) -> None:
    """Let each ``flows.commands`` entry point (``found``: the installed ones) add its command."""
    points = entry_points(group=GROUP) if found is None else found
    for point in sorted(points, key=lambda p: p.name):
        try:
            point.load()(add)
        except Exception as error:
            origin = f" from {point.dist.name}" if point.dist is not None else ""
            warn(
                f"command {point.name!r}{origin} ({point.value}) not added: "
                f"{type(error).__name__}: {first_line(error)}"
            )
