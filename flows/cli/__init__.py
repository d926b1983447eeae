"""The ``flows`` command line, the commands' own engines (step examples, demo) and the
``flows.commands`` entry points other distributions add commands through."""

from flows.cli.main import main

__all__ = ["main"]
