"""The ``flows`` command line and the commands' own engines (step examples, replay, demo)."""

from flows.cli.main import main

__all__ = ["main"]
