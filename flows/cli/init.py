"""``flows init [DIR] [--force]``: a starter project a newcomer edits.

The starter files are package data (``flows/starter``), copied as they are: a
flow file that validates with no environment set and an event to push through
it. Nothing is overwritten without ``--force``, and nothing is written at all
when one file is in the way.
"""

from __future__ import annotations

import argparse
import shlex
from collections.abc import Iterator
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path, PurePosixPath

from flows.cli.commands import AddCommand, CommandError


def add_command(add: AddCommand) -> None:
    """Add ``init`` and its options to ``flows``."""
    init = add("init", run, "Write a starter flow.json and an example event to edit")
    init.add_argument("dir", nargs="?", default=".", metavar="DIR", help="folder (default: .)")
    init.add_argument("--force", action="store_true", help="overwrite files that exist")


def starter_files() -> list[tuple[PurePosixPath, Traversable]]:
    """(path under DIR, packaged file) of every starter file: flow.json first, then folders."""
    found = _walk(files("flows") / "starter", PurePosixPath())
    return sorted(found, key=lambda item: (len(item[0].parts), item[0]))


def _walk(folder: Traversable, under: PurePosixPath) -> Iterator[tuple[PurePosixPath, Traversable]]:
    for entry in folder.iterdir():
        if entry.is_dir():
            yield from _walk(entry, under / entry.name)
        elif entry.name.endswith(".json"):
            yield under / entry.name, entry


def run(args: argparse.Namespace) -> int:
    """Write the starter files into ``args.dir``; refuse to overwrite without ``--force``."""
    folder = Path(args.dir)
    planned = [(folder / relative, source) for relative, source in starter_files()]
    for target, _ in planned:
        if target.is_dir():
            raise CommandError(f"{target} is a folder; the starter writes a file there")
        if target.exists() and not args.force:
            raise CommandError(f"{target} exists; use --force to overwrite")
    for target, source in planned:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(source.read_bytes())
        except OSError as error:
            raise CommandError(f"{target}: cannot write: {error.strerror or error}") from None
        print(f"wrote {target}")
    flow = shlex.quote(str(folder / "flow.json"))
    event = shlex.quote(str(folder / "events" / "page-view.json"))
    print(
        "\n".join(
            [
                "next:",
                f"  flows validate {flow}",
                f"  flows push {flow} --event {event}",
                f"  flows segment-sink & flows run {flow}",
                "then POST events to http://127.0.0.1:8080/collect and see what Segment would "
                "receive: curl -s http://127.0.0.1:9010/messages",
                "to real Segment (the host defaults to the local receiver, so set both):",
                f"  SEGMENT_WRITE_KEY=... SEGMENT_HOST=https://api.segment.io flows run {flow}",
            ]
        )
    )
    return 0
