"""Finding step classes by name: entry points, walkerOS package names or ``module:attr``.

One registry for the four kinds of step. A third-party package adds a step by
declaring an entry point in the kind's group (``flows.destinations``,
``flows.sources``, ``flows.transformers``, ``flows.stores``); walkerOS package
names are aliases, so a walkerOS server flow file runs unchanged. A
``package`` may carry a version (``@walkeros/destination-demo@2.1.0``): the
installed one is used.
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from collector.callables import CallableImportError, import_callable

DESTINATION_GROUP = "flows.destinations"
SOURCE_GROUP = "flows.sources"
TRANSFORMER_GROUP = "flows.transformers"
STORE_GROUP = "flows.stores"

GROUPS: dict[str, str] = {
    "sources": SOURCE_GROUP,
    "transformers": TRANSFORMER_GROUP,
    "destinations": DESTINATION_GROUP,
    "stores": STORE_GROUP,
}
"""Flow file key -> entry-point group."""

KIND_NAMES: dict[str, str] = {
    SOURCE_GROUP: "source",
    TRANSFORMER_GROUP: "transformer",
    DESTINATION_GROUP: "destination",
    STORE_GROUP: "store",
}

ALIASES: dict[str, dict[str, str]] = {
    DESTINATION_GROUP: {
        "@walkeros/server-destination-segment": "segment",
        "@walkeros/destination-segment": "segment",
        "@walkeros/server-destination-log": "log",
        "@walkeros/destination-demo": "demo",
        "@walkeros/server-destination-api": "api",
    },
    SOURCE_GROUP: {
        "@walkeros/server-source-express": "http",
        "@walkeros/server-source-fetch": "http",
    },
    TRANSFORMER_GROUP: {
        "@walkeros/transformer-validate": "validate",
        "@walkeros/server-transformer-fingerprint": "fingerprint",
    },
    STORE_GROUP: {
        "@walkeros/store-memory": "memory",
    },
}
"""walkerOS package names, per group, and the entry point each one is."""


class PackageNotFoundError(LookupError):
    """A ``package`` name in a flow names nothing installed."""


@cache
def _entry_points(group: str) -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=group)}


def available(group: str = DESTINATION_GROUP) -> list[str]:
    """Names usable as ``package`` in the group (entry points), sorted."""
    return sorted(_entry_points(group))


def aliases_of(group: str) -> dict[str, str]:
    """The walkerOS names of the group whose entry point is installed."""
    names = _entry_points(group)
    return {alias: name for alias, name in ALIASES.get(group, {}).items() if name in names}


def without_version(package: str) -> str:
    """``@scope/name@1.2.3`` -> ``@scope/name``; ``name@1`` -> ``name``; import paths as they are."""
    if ":" in package:
        return package
    at = package.rfind("@")
    return package[:at] if at > 0 else package


def load_package(package: str, group: str = DESTINATION_GROUP) -> Any:
    """The class behind ``package``: an entry point name, a walkerOS alias or ``module:attr``."""
    bare = without_version(package)
    name = ALIASES.get(group, {}).get(bare, bare)
    found = _entry_points(group).get(name)
    if found is not None:
        return found.load()
    if ":" in name:
        try:
            return import_callable(name)
        except CallableImportError as error:
            raise PackageNotFoundError(f"package {package!r}: {error}") from None
    kind = KIND_NAMES.get(group, "step")
    names = ", ".join(available(group)) or "none installed"
    raise PackageNotFoundError(
        f"unknown {kind} package {package!r}; use one of: {names}, or an import path module:attr"
    )
