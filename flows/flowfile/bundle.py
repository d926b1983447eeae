"""Bundles: one validated, self-contained flow file for deployment.

A bundle holds the chosen flow with ``$var`` resolved, ``$env`` and
``$secret`` references kept as walkerOS markers (``__WALKEROS_ENV:NAME``,
``__WALKEROS_SECRET:NAME``, so no secret is ever read or written), and the
distributions it was checked with pinned by name and version. Where the
bundle runs, markers are read from the environment (a secret also from
``FLOWS_SECRETS_DIR``, default ``/run/secrets``). ``flows run`` refuses a
bundle whose pinned packages differ from what is installed.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, packages_distributions, version
from typing import Any

from flows.flowfile.config import FlowError, resolve_flow


def distribution_of(cls: type) -> tuple[str, str] | None:
    """The installed distribution (name, version) that provides ``cls``, if any."""
    top = cls.__module__.split(".")[0]
    names = packages_distributions().get(top)
    if not names:
        return None
    try:
        return names[0], version(names[0])
    except PackageNotFoundError:
        return None


def make_bundle(
    data: Mapping[str, Any],
    source: str,
    flow_name: str | None = None,
    env: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Validate one flow of ``data`` and return it as a bundle document."""
    resolved = resolve_flow(data, flow_name, env, deferred=True)
    pins: dict[str, str] = {}
    for cls in resolved.packages.values():
        found = distribution_of(cls)
        if found is not None:
            pins[found[0]] = found[1]
    return {
        "version": resolved.file.version,
        "flows": {resolved.name: resolved.spec},
        "bundle": {
            "flow": resolved.name,
            "source": source,
            "packages": dict(sorted(pins.items())),
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
        },
    }


def check_pins(data: Mapping[str, Any]) -> None:
    """Refuse to run a bundle checked against other package versions than installed."""
    info = data.get("bundle")
    if not isinstance(info, dict):
        return
    problems = []
    for name, pinned in (info.get("packages") or {}).items():
        try:
            installed = version(name)
        except PackageNotFoundError:
            problems.append(f"bundle.packages.{name}: pinned {pinned}, but it is not installed")
            continue
        if installed != pinned:
            problems.append(
                f"bundle.packages.{name}: bundle was built with {pinned}, installed is {installed}; "
                "rebuild the bundle with `flows bundle`"
            )
    if problems:
        raise FlowError(problems)
