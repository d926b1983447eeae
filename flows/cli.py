"""The ``flows`` command line."""

from __future__ import annotations

import argparse
from importlib.metadata import version


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``flows`` console command."""
    parser = argparse.ArgumentParser(prog="flows", description="walkerOS-style event flows")
    parser.add_argument("--version", action="version", version=f"flows {version('walkeros-flows')}")
    parser.parse_args(argv)
    parser.print_help()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
