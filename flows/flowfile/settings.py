"""One flow of a flow file with every reference resolved: walkerOS's ``getFlowSettings``.

What is resolved, and with which variables (later wins): the flow's
``config`` and ``collector`` with the file's and the flow's ``variables``;
each source's, transformer's, destination's and store's ``config`` and
``env`` with the step's own ``variables`` on top. Other keys (``package``,
``code``, ``next``, ``examples``...) are copied as written, as upstream;
``variables`` are consumed and left out of the result.

Per string (whole-string forms first, as upstream):

- ``$var.name.path``: a variable's value, itself resolved on first use (a
  variable may reference variables, ``$env``, ``$flow``, ``$contract``);
  ``Cyclic $var reference: a -> b -> a`` for a loop.
- ``$contract.NAME.path``: the file's ``contract`` map, resolved by
  :func:`flows.contract.resolve_contracts` after its own references; a file
  without a contract map leaves the string as is.
- ``$flow.NAME.path``: the sibling flow's resolved ``config`` block. An
  unknown flow or path is an error, or with ``strict_flow_refs=False`` a
  warning (the string stays); a cycle is always an error.
- ``$secret.NAME``: a bundle keeps the marker ``__WALKEROS_SECRET:NAME``;
  otherwise the secret is read (:class:`flows.secrets.SecretSource`). A web
  flow, or :data:`~flows.secrets.NO_SECRET_SOURCE`, refuses it.
- inline ``$var`` and ``$env`` (:mod:`flows.flowfile.references`).

``$store.ID`` stays a string for the builder, checked to name a defined
store; ``$code:`` stays too, and :func:`flows.flow_checks.check_no_code`
refuses it where the flow is built.
"""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from flows.flowfile.checks import check_store_references
from flows.flowfile.contract import ContractError, resolve_contracts
from flows.flowfile.errors import did_you_mean
from flows.flowfile.references import (
    MARKER_START,
    REF_SECRET,
    REF_VAR_FULL,
    SECRET_MARKER,
    SECRET_MARKER_PREFIX,
    FlowReferenceError,
    lookup_variable,
    secret_reference,
    substitute_inline,
)
from flows.flowfile.secrets import NO_SECRET_SOURCE, SecretSource

__all__ = ["STEP_SECTIONS", "FlowSettings", "resolve_flow_settings"]

_NAME: Final = r"[a-zA-Z_][a-zA-Z0-9_]*"
REF_CONTRACT: Final = re.compile(rf"\$contract\.({_NAME})(?:\.(.+))?")
"""Whole-string ``$contract.NAME(.path)`` (``fullmatch``), walkerOS's ``REF_CONTRACT``."""
REF_FLOW: Final = re.compile(rf"\$flow\.({_NAME})(?:\.([a-zA-Z0-9_.]+))?")
"""Whole-string ``$flow.NAME(.path)`` (``fullmatch``), walkerOS's ``REF_FLOW``."""

STEP_SECTIONS: Final = ("sources", "destinations", "stores", "transformers")
"""Step maps, in the order walkerOS resolves them (which decides the first error)."""
STEP_RESOLVED_KEYS: Final = ("config", "env")
"""The keys of a step that are resolved; the rest is copied as written."""


@dataclass(slots=True)
class FlowSettings:
    """The resolved flow; ``warnings`` are soft ``$flow`` misses (``strict_flow_refs=False``)."""

    name: str
    flow: dict[str, Any]
    warnings: list[str] = field(default_factory=list)


def resolve_flow_settings(
    data: Mapping[str, Any],
    name: str,
    env: Mapping[str, str] | None = None,
    *,
    deferred: bool = False,
    strict_flow_refs: bool = True,
    secrets: SecretSource | None = None,
) -> FlowSettings:
    """Resolve flow ``name`` of the flow file ``data`` (already parsed, shape not yet checked).

    ``env`` defaults to ``os.environ``; ``secrets`` to
    ``SecretSource.from_environment(env)`` (the environment, then
    ``FLOWS_SECRETS_DIR`` or ``/run/secrets``). ``deferred=True`` is for
    bundles: ``$env`` and ``$secret`` become markers, nothing secret is read.
    Raises FlowReferenceError (one reference, with its JSON path) or
    FlowCheckError (every unknown ``$store`` id).
    """
    flows = data.get("flows")
    flows = flows if isinstance(flows, Mapping) else {}
    if name not in flows:
        names = [key for key in flows if isinstance(key, str)]
        close = did_you_mean(name, names)
        raise FlowReferenceError(
            f'Flow "{name}" not found. Available: {", ".join(names)}',
            name=name,
            path="flows",
            hint=f'did you mean "{close}"?' if close else None,
        )
    environment: Mapping[str, str] = os.environ if env is None else env
    source = SecretSource.from_environment(environment) if secrets is None else secrets
    raw = _object(flows[name])
    if not deferred and _object(raw.get("config")).get("platform") == "web":
        source = NO_SECRET_SOURCE
    resolver = _Resolver(data, flows, environment, deferred, strict_flow_refs, source)
    flow = resolver.chosen_flow(name, raw)
    check_store_references(flow, f"flows.{name}")
    return FlowSettings(name, flow, resolver.warnings)


@dataclass(slots=True)
class _Scope:
    """The variables visible at one place, each resolved once, on first use."""

    raw: dict[str, Any]
    defined_at: dict[str, str]
    """Where each variable is written, so an error inside one points at it."""
    resolved: dict[tuple[str, bool], Any] = field(default_factory=dict)
    """By name and by whether contracts were at hand (a variable in the contract map has none)."""
    visiting: list[str] = field(default_factory=list)

    def with_layer(self, layer: Any, where: str) -> _Scope:
        """A narrower scope: ``layer``'s variables on top of these."""
        layer = _object(layer)
        defined = {**self.defined_at, **{key: f"{where}.{key}" for key in layer}}
        return _Scope({**self.raw, **layer}, defined)


class _Resolver:
    """One resolution: the sibling-flow cache, the ``$flow`` cycle guard and the warnings."""

    def __init__(
        self,
        data: Mapping[str, Any],
        flows: Mapping[str, Any],
        env: Mapping[str, str],
        deferred: bool,
        strict_flow_refs: bool,
        secrets: SecretSource,
    ) -> None:
        self.data = data
        self.flows = flows
        self.env = env
        self.deferred = deferred
        self.strict = strict_flow_refs
        self.secrets = secrets
        self.file_scope = _Scope({}, {}).with_layer(data.get("variables"), "variables")
        self.flow_configs: dict[str, Any] = {}
        self.visiting: list[str] = []
        self.warnings: list[str] = []

    def chosen_flow(self, name: str, raw: Mapping[str, Any]) -> dict[str, Any]:
        """The flow ``name`` resolved, in walkerOS's order (contracts, config, steps, collector)."""
        where = f"flows.{name}"
        scope = self.file_scope.with_layer(raw.get("variables"), f"{where}.variables")
        self.visiting.append(name)
        try:
            contracts = self._contracts(scope)
            result = {key: copy.deepcopy(value) for key, value in raw.items() if key != "variables"}
            if "config" in raw:
                result["config"] = self.resolve(raw["config"], scope, f"{where}.config", contracts)
            for section in STEP_SECTIONS:
                steps = raw.get(section)
                if isinstance(steps, Mapping):
                    result[section] = {
                        step_id: self._step(step, scope, f"{where}.{section}.{step_id}", contracts)
                        for step_id, step in steps.items()
                    }
            if "collector" in raw:
                collector = raw["collector"]
                result["collector"] = self.resolve(
                    collector, scope, f"{where}.collector", contracts
                )
        finally:
            self.visiting.pop()
        return result

    def _step(self, step: Any, scope: _Scope, where: str, contracts: dict[str, Any] | None) -> Any:
        if not isinstance(step, Mapping):
            return copy.deepcopy(step)
        step_scope = scope.with_layer(step.get("variables"), f"{where}.variables")
        result = {key: copy.deepcopy(value) for key, value in step.items() if key != "variables"}
        for key in STEP_RESOLVED_KEYS:
            if key in step:
                result[key] = self.resolve(step[key], step_scope, f"{where}.{key}", contracts)
        return result

    def _contracts(self, scope: _Scope) -> dict[str, Any] | None:
        """The resolved contract map, or None when the file has none (``$contract`` stays)."""
        contract = self.data.get("contract")
        if not contract:
            return None
        if not isinstance(contract, Mapping):
            raise FlowReferenceError(
                "the contract map must be an object", name="contract", path="contract"
            )
        try:
            return resolve_contracts(self.resolve(contract, scope, "contract", None))
        except ContractError as error:
            raise FlowReferenceError(error.problem, name=error.name, path=error.path) from None

    def resolve(
        self, value: Any, scope: _Scope, path: str, contracts: dict[str, Any] | None
    ) -> Any:
        """A copy of ``value`` with every reference resolved; ``path`` is its JSON path."""
        if isinstance(value, str):
            return self._string(value, scope, path, contracts)
        if isinstance(value, Mapping):
            return {
                key: self.resolve(item, scope, f"{path}.{key}", contracts)
                for key, item in value.items()
            }
        if isinstance(value, list | tuple):
            return [
                self.resolve(item, scope, f"{path}.{index}", contracts)
                for index, item in enumerate(value)
            ]
        return value

    def _string(self, text: str, scope: _Scope, path: str, contracts: dict[str, Any] | None) -> Any:
        if "$" not in text and MARKER_START not in text:
            return text
        whole = REF_VAR_FULL.fullmatch(text)
        if whole:
            return copy.deepcopy(self._variable(whole.group(1), scope, path, contracts))
        if contracts is not None:
            match = REF_CONTRACT.fullmatch(text)
            if match:
                return self._contract(match.group(1), match.group(2), contracts, path)
        match = REF_FLOW.fullmatch(text)
        if match:
            return self._flow(match.group(1), match.group(2), text, path)
        secret = REF_SECRET.fullmatch(text) or SECRET_MARKER.fullmatch(text)
        if secret:
            if self.deferred and text.startswith(SECRET_MARKER_PREFIX):
                return text  # a marker already: a bundle of a bundle keeps it
            return secret_reference(
                secret.group(1), self.secrets, deferred=self.deferred, path=path
            )
        return substitute_inline(
            text,
            lambda dotted: self._variable(dotted, scope, path, contracts),
            self.env,
            deferred=self.deferred,
            path=path,
        )

    def _variable(
        self, dotted: str, scope: _Scope, path: str, contracts: dict[str, Any] | None
    ) -> Any:
        """``a.b.c``: variable ``a`` resolved (once per scope), then walked."""
        head = dotted.split(".", 1)[0]
        if head not in scope.raw:
            return lookup_variable(scope.raw, dotted, path)  # raises, with a suggestion
        key = (head, contracts is not None)
        if key not in scope.resolved:
            if head in scope.visiting:
                chain = " -> ".join([*scope.visiting, head])
                raise FlowReferenceError(f"Cyclic $var reference: {chain}", name=head, path=path)
            scope.visiting.append(head)
            try:
                scope.resolved[key] = self.resolve(
                    scope.raw[head], scope, scope.defined_at[head], contracts
                )
            finally:
                scope.visiting.pop()
        return lookup_variable({head: scope.resolved[key]}, dotted, path)

    def _contract(self, name: str, sub: str | None, contracts: dict[str, Any], path: str) -> Any:
        if name not in contracts:
            close = did_you_mean(name, contracts)
            defined = ", ".join(contracts) or "none"
            raise FlowReferenceError(
                f'Contract "{name}" not found',
                name=name,
                path=path,
                hint=f'did you mean "{close}"?' if close else f"defined: {defined}",
            )
        found = contracts[name]
        if sub:
            found = walk_path(found, sub, f"$contract.{name}", path)
        return copy.deepcopy(found)

    def _flow(self, name: str, sub: str | None, text: str, path: str) -> Any:
        target = self._flow_config(name, path)
        if target is None:
            if not self.strict:
                self._warn(
                    f'{text} cannot resolve: flow "{name}" does not exist in this config.', path
                )
                return text
            close = did_you_mean(name, [key for key in self.flows if isinstance(key, str)])
            raise FlowReferenceError(
                f'Flow "{name}" not found in $flow.{name}',
                name=name,
                path=path,
                hint=f'did you mean "{close}"?' if close else None,
            )
        found = target
        if sub:
            if self.strict:
                found = walk_path(target, sub, f"$flow.{name}", path)
            else:
                try:
                    found = walk_path(target, sub, f"$flow.{name}", path)
                except FlowReferenceError:
                    found = None
                if found is None or found == "":
                    target_path = f"flows.{name}.config.{sub}"
                    self._warn(
                        f"{text} is empty. Set {target_path}, "
                        f"or run `walkeros deploy {name}` first.",
                        path,
                    )
                    return text
        return copy.deepcopy(found)

    def _flow_config(self, name: str, path: str) -> Any:
        """Flow ``name``'s ``config`` block resolved (cached), or None if there is no such flow."""
        if name in self.flow_configs:
            return self.flow_configs[name]
        if name not in self.flows:
            return None
        if name in self.visiting:
            chain = " -> ".join([*self.visiting, name])
            raise FlowReferenceError(f"Cyclic $flow reference: {chain}", name=name, path=path)
        raw = _object(self.flows[name])
        where = f"flows.{name}"
        scope = self.file_scope.with_layer(raw.get("variables"), f"{where}.variables")
        self.visiting.append(name)
        try:
            # Only the public config block, and without contracts, as upstream.
            resolved = self.resolve(raw.get("config") or {}, scope, f"{where}.config", None)
        finally:
            self.visiting.pop()
        self.flow_configs[name] = resolved
        return resolved

    def _warn(self, message: str, path: str) -> None:
        self.warnings.append(f"{message} (used at {path})")


def walk_path(value: Any, dotted: str, reference: str, path: str) -> Any:
    """Walk ``a.b.0`` into objects and lists; the error is walkerOS's ``walkPath`` text."""
    segments = dotted.split(".")
    current = value
    for index, segment in enumerate(segments):
        if isinstance(current, Mapping) and segment in current:
            current = current[segment]
            continue
        if isinstance(current, list) and segment.isdigit() and int(segment) < len(current):
            current = current[int(segment)]
            continue
        visited = ".".join(segments[:index])
        problem = f'Path "{dotted}" not found in "{reference}": "{segment}" does not exist'
        keys = list(current) if isinstance(current, Mapping) else []
        close = did_you_mean(segment, [key for key in keys if isinstance(key, str)])
        raise FlowReferenceError(
            f'{problem} in "{visited}"' if visited else problem,
            name=reference,
            path=path,
            hint=f'did you mean "{close}"?' if close else None,
        )
    return current


def _object(value: Any) -> Mapping[str, Any]:
    """``value`` if it is an object, else empty: shape errors are the flow model's to report."""
    return value if isinstance(value, Mapping) else {}
