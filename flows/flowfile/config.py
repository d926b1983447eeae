"""Flow files: the JSON that declares sources, destinations and the collector.

Loading goes in steps, each with errors that name the JSON path: parse the
file, check its shape, pick a flow, resolve ``$var``/``$env`` references, then
check every package's own settings model. ``$env`` values can be kept as
references (bundles), so a secret never has to be written anywhere.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from collector.collector import CollectorConfig
from flows.flowfile.checks import FlowCheckError, check_no_code
from flows.flowfile.errors import format_validation_error
from flows.flowfile.model import BundleInfo, FlowFile, FlowSpec
from flows.flowfile.references import (
    ENV_MARKER,
    ENV_MARKER_PREFIX,
    SECRET_MARKER_PREFIX,
    FlowReferenceError,
)
from flows.flowfile.settings import resolve_flow_settings
from flows.flowfile.steps import CheckedSteps, check_steps

__all__ = ["BundleInfo", "FlowError", "FlowFile", "ResolvedFlow", "resolve_flow"]

SUPPORTED_VERSION = 4


class FlowError(ValueError):
    """A flow file cannot be used; each line of ``errors`` names a JSON path and a reason."""

    def __init__(self, errors: list[str] | str) -> None:
        self.errors = [errors] if isinstance(errors, str) else list(errors)
        super().__init__("\n".join(self.errors))


@dataclass(slots=True)
class ResolvedFlow:
    """A flow picked from a file, references resolved, every package checked."""

    name: str
    path: str
    spec: dict[str, Any]
    file: FlowFile
    packages: dict[str, type] = field(default_factory=dict)
    """Step class by ``kind.id`` (``destinations.segment``)."""
    warnings: list[str] = field(default_factory=list)
    """What is accepted but has no effect here, each line naming its JSON path."""
    settings: dict[str, Any] = field(default_factory=dict)
    """Each step's validated settings by ``kind.id``; the builder uses them as they are."""


def read_flow_file(path: str | Path) -> dict[str, Any]:
    """Parse a flow file; the error names the file and the place of a syntax error."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FlowError(f"{file}: no such file") from None
    except OSError as error:
        raise FlowError(f"{file}: cannot read: {error.strerror}") from None
    try:
        data = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as error:
        raise FlowError(
            f"{file}: invalid JSON at line {error.lineno} column {error.colno}: {error.msg}"
        ) from None
    except ValueError as error:
        raise FlowError(f"{file}: {error}") from None
    if not isinstance(data, dict):
        raise FlowError(f"{file}: a flow file must be a JSON object")
    return data


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON (numbers must be finite)")


def parse_flow_file(data: Mapping[str, Any]) -> FlowFile:
    """Check the shape of a whole flow file."""
    try:
        flow_file = FlowFile.model_validate(data)
    except ValidationError as error:
        raise FlowError(format_validation_error(error, FlowFile)) from None
    if flow_file.version != SUPPORTED_VERSION:
        raise FlowError(
            f"version: flow file version {flow_file.version} is not supported; use {SUPPORTED_VERSION}"
        )
    if not flow_file.flows:
        raise FlowError('flows: a flow file needs at least one flow, e.g. "default"')
    return flow_file


def pick_flow(flow_file: FlowFile, name: str | None) -> str:
    """The flow to use: the one named, the only one, ``default``, or the only server flow."""
    names = list(flow_file.flows)
    if name is not None:
        if name not in flow_file.flows:
            raise FlowError(f"--flow: no flow named {name!r}; the file has {', '.join(names)}")
        return name
    if len(names) == 1:
        return names[0]
    if "default" in flow_file.flows:
        return "default"
    servers = [n for n, spec in flow_file.flows.items() if spec.platform == "server"]
    if len(servers) == 1:
        return servers[0]
    raise FlowError(f"the file has several flows ({', '.join(names)}): choose one with --flow NAME")


def check_platform(flow_file: FlowFile, chosen: str) -> None:
    """Refuse a web flow: it runs in a browser, this runtime runs server flows."""
    spec: FlowSpec = flow_file.flows[chosen]
    if spec.platform == "server":
        return
    servers = [n for n, other in flow_file.flows.items() if other.platform == "server"]
    hint = (
        f"; choose a server flow with --flow {servers[0]}"
        if servers
        else "; run it with walkerOS in the browser"
    )
    raise FlowError(
        f'flows.{chosen}.config.platform: flow {chosen!r} is a "{spec.platform}" flow, '
        f"and this runtime runs server flows{hint}"
    )


def resolve_flow(
    data: Mapping[str, Any],
    name: str | None = None,
    env: Mapping[str, str] | None = None,
    *,
    deferred: bool = False,
) -> ResolvedFlow:
    """Pick a flow, resolve its references, and check every step's config.

    The whole file is checked for shape; only the chosen flow is resolved and
    checked in full, so a problem in another flow (a web flow beside the
    server one) does not stop this one. ``deferred=True`` keeps ``$env`` and
    ``$secret`` references (as walkerOS markers) for a bundle; the checks then
    run against the environment's values or, for variables not set at build
    time, a placeholder.
    """
    flow_file = parse_flow_file(data)
    chosen = pick_flow(flow_file, name)
    check_platform(flow_file, chosen)
    where = f"flows.{chosen}"
    environment = os.environ if env is None else env
    try:
        settings = resolve_flow_settings(data, chosen, environment, deferred=deferred)
        check_no_code(settings.flow, where)
    except FlowReferenceError as error:
        raise FlowError(str(error)) from None
    except FlowCheckError as error:
        raise FlowError(error.errors) from None
    spec = settings.flow
    checked = spec
    if deferred:
        checked = _with_placeholders(spec, environment)
    steps = check_packages(checked, where)
    return ResolvedFlow(
        chosen,
        where,
        spec,
        flow_file,
        steps.packages,
        [*settings.warnings, *steps.warnings],
        steps.settings,
    )


def _with_placeholders(value: Any, env: Mapping[str, str]) -> Any:
    """Resolve kept ``$env`` markers for checking: the environment, else the default,
    else a placeholder for a variable that is only set where the bundle runs."""
    if isinstance(value, str):
        if value.startswith(SECRET_MARKER_PREFIX):
            return (
                f"<secret {value.removeprefix(SECRET_MARKER_PREFIX)}, read where the bundle runs>"
            )
        if ENV_MARKER_PREFIX not in value:
            return value
        return ENV_MARKER.sub(lambda match: _placeholder(match, env), value)
    if isinstance(value, dict):
        return {key: _with_placeholders(item, env) for key, item in value.items()}
    if isinstance(value, list):
        return [_with_placeholders(item, env) for item in value]
    return value


def _placeholder(match: re.Match[str], env: Mapping[str, str]) -> str:
    name, default = match.group(1), match.group(2)
    found = env.get(name)
    if found is not None:
        return found
    return default if default is not None else f"<{name}>"


def check_packages(spec: Mapping[str, Any], where: str) -> CheckedSteps:
    """Load every step and validate its config against its models; collect all errors.

    Returns the step classes and validated settings by ``kind.id``, and the
    warnings (keys accepted without effect here).
    """
    errors: list[str] = []
    try:
        CollectorConfig.model_validate(spec.get("collector", {}))
    except ValidationError as error:
        errors += format_validation_error(error, CollectorConfig, f"{where}.collector")
    steps = check_steps(spec, where)
    errors += steps.errors
    if errors:
        raise FlowError(errors)
    return steps
