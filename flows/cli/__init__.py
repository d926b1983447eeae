"""The ``flows`` command line (``flows.cli.main``), the commands' own engines (step examples,
demo, init) and the ``flows.commands`` entry points other distributions add commands through.

Nothing is imported here: ``python -m flows.cli.demo`` must find ``flows.cli.demo`` not yet
imported (runpy warns otherwise), and ``flows.cli.main`` imports every command.
"""
