"""Finding destination classes by name: entry points or ``module:attr`` import paths.

A third-party package adds a destination by declaring an entry point in the
``flows.destinations`` group; walkerOS package names are accepted as aliases
so a walkerOS server flow file runs unchanged.
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from collector.callables import CallableImportError, import_callable

DESTINATION_GROUP = "flows.destinations"
SOURCE_GROUP = "flows.sources"

ALIASES: dict[str, str] = {
    "@walkeros/server-destination-segment": "segment",
    "@walkeros/destination-segment": "segment",
    "@walkeros/server-source-express": "http",
    "@walkeros/server-source-fetch": "http",
    "@walkeros/server-destination-log": "log",
}


class PackageNotFoundError(LookupError):
    """A ``package`` name in a flow names nothing installed."""


@cache
def _entry_points(group: str) -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=group)}


def available(group: str = DESTINATION_GROUP) -> list[str]:
    """Names usable as ``package`` in the group (entry points), sorted."""
    return sorted(_entry_points(group))


def load_package(package: str, group: str = DESTINATION_GROUP) -> Any:
    """The class behind ``package``: an entry point name, a walkerOS alias or ``module:attr``."""
    name = ALIASES.get(package, package)
    found = _entry_points(group).get(name)
    if found is not None:
        return found.load()
    if ":" in name:
        try:
            return import_callable(name)
        except CallableImportError as error:
            raise PackageNotFoundError(f"package {package!r}: {error}") from None
    kind = "destination" if group == DESTINATION_GROUP else "source"
    names = ", ".join(available(group)) or "none installed"
    raise PackageNotFoundError(
        f"unknown {kind} package {package!r}; use one of: {names}, or an import path module:attr"
    )
