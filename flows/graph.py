"""Turning a resolved flow into running parts: a Collector, its destinations, its sources."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from collector.cache import compile_cache
from collector.cache_steps import CacheStop, cached_push
from collector.callables import import_callable
from collector.chain import (
    Chain,
    ChainConfigError,
    ChainStep,
    FanOut,
    RoutedChain,
    StepRejected,
    chain_ids,
    known_step,
    route_ids,
)
from collector.collector import (
    ActiveDestination,
    Collector,
    CollectorConfig,
    build_destination,
)
from collector.destination import DestinationConfig, EventRejected, Skipped
from collector.destinations.function import FunctionDestination
from collector.errors import ConfigError, suggestion
from collector.route import Route, compile_route, is_static
from collector.store import Store
from collector.stores.redis import RedisStore
from collector.transformer import FunctionTransformer, Transformer
from collector.values import compile_value
from flows.buffer import EventBuffer, buffer_settings
from flows.flowfile.config import FlowError, ResolvedFlow
from flows.flowfile.steps import config_keys


@dataclass(slots=True)
class Flow:
    """A built flow: the collector (with destinations), sources, transformers and stores."""

    name: str
    collector: Collector
    sources: dict[str, Any] = field(default_factory=dict)
    transformers: dict[str, ChainStep] = field(default_factory=dict)
    stores: dict[str, Store[Any]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    examples: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Each step's ``examples``, by ``kind.id``."""
    buffer: EventBuffer | None = None
    """The durable buffer (``config.settings.buffer``), when the flow has one."""

    @property
    def links(self) -> dict[str, Any]:
        """Each transformer's ``next``, for walking chains."""
        return {tid: step.next for tid, step in self.transformers.items()}

    def primary_source(self) -> Any:
        """walkerOS's primary source: the first marked ``primary``, else the first."""
        for source in self.sources.values():
            if getattr(source, "primary", False):
                return source
        return next(iter(self.sources.values()), None)

    def destination(self, destination_id: str) -> ActiveDestination:
        for active in self.collector.destinations:
            if active.id == destination_id:
                return active
        raise KeyError(destination_id)


def build_flow(resolved: ResolvedFlow) -> Flow:
    """Create the stores, transformers, chains, destinations and sources of a resolved flow.

    Everything a flow file says is turned into objects and plain functions
    here, once: per event only the compiled chains and mappings run.
    """
    spec = resolved.spec
    errors: list[str] = []
    stores = _build_stores(resolved, errors)
    links = Links({tid: ref.get("next") for tid, ref in (spec.get("transformers") or {}).items()})
    transformers = _build_transformers(resolved, stores, links.next, errors)
    destinations: list[ActiveDestination] = []
    for destination_id, ref in (spec.get("destinations") or {}).items():
        path = f"{resolved.path}.destinations.{destination_id}"
        config = ref.get("config") or {}
        if config.get("disabled") is True:
            continue
        cls = resolved.packages[f"destinations.{destination_id}"]
        settings = resolved.settings.get(f"destinations.{destination_id}")
        try:
            active = build_destination(
                destination_id, cls, _known(config), path=path, settings=settings
            )
            active.destination.use_stores(stores, path)
            before = _chain(
                ref.get("before"), links, transformers, f"{path}.before", allow_many=False
            )
        except ConfigError as error:
            errors.append(str(error))
            continue
        if isinstance(active.destination, FunctionDestination):
            active.destination.function = import_callable(ref["code"]["push"])
        active.before = before
        if ref.get("cache") is not None:
            try:
                active.cache = compile_cache(
                    ref["cache"], path=f"{path}.cache", stores=stores, step_id=destination_id
                )
            except ConfigError as error:
                errors.append(str(error))
        _set_level(active.destination.logger, config)
        destinations.append(active)
    sources: dict[str, Any] = {}
    for source_id, ref in (spec.get("sources") or {}).items():
        path = f"{resolved.path}.sources.{source_id}"
        config = ref.get("config") or {}
        if config.get("disabled") is True:
            continue
        source_cls: Any = resolved.packages[f"sources.{source_id}"]
        source = source_cls(resolved.settings[f"sources.{source_id}"], source_id=source_id)
        source.primary = ref.get("primary") is True
        try:
            source.chain = _chain(
                ref.get("next"), links, transformers, f"{path}.next", allow_many=True
            )
        except ConfigError as error:
            errors.append(str(error))
        if config.get("ingest") is not None:
            source.ingest_mapping = compile_value(config["ingest"], f"{path}.config.ingest")
        sources[source_id] = source
    buffer = _build_buffer(resolved, stores, errors)
    if buffer is not None:
        buffer.chains = {sid: getattr(source, "chain", None) for sid, source in sources.items()}
        for source in sources.values():
            if hasattr(source, "buffer"):
                source.buffer = buffer
    if errors:
        raise FlowError(errors)
    collector = Collector(CollectorConfig.model_validate(spec.get("collector") or {}), destinations)
    collector.add_steps([*stores.values(), *(step.transformer for step in transformers.values())])
    collector.transformer_stats = {tid: step.stats for tid, step in transformers.items()}
    return Flow(
        resolved.name,
        collector,
        sources,
        transformers,
        stores,
        list(resolved.warnings),
        _examples(spec),
        buffer,
    )


def _build_buffer(
    resolved: ResolvedFlow, stores: dict[str, Store[Any]], errors: list[str]
) -> EventBuffer | None:
    """``config.settings.buffer``: the flow's durable buffer in one of its redis stores."""
    config = resolved.spec.get("config") or {}
    settings = config.get("settings") or {}
    where = f"{resolved.path}.config.settings"
    try:
        parsed = buffer_settings(settings, where)
    except ConfigError as error:
        errors.append(str(error))
        return None
    if parsed is None:
        return None
    store = stores.get(parsed.store)
    if not isinstance(store, RedisStore):
        known = [sid for sid, s in stores.items() if isinstance(s, RedisStore)]
        reason = (
            f"{parsed.store!r} is not a redis store of this flow"
            + (f"; redis stores: {', '.join(known)}" if known else "; declare one under stores")
            + suggestion(parsed.store, known)
        )
        errors.append(str(ConfigError(f"{where}.buffer.store", reason)))
        return None
    return EventBuffer(store, resolved.name, parsed)


def _build_stores(resolved: ResolvedFlow, errors: list[str]) -> dict[str, Store[Any]]:
    stores: dict[str, Store[Any]] = {}
    for store_id, ref in (resolved.spec.get("stores") or {}).items():
        config = ref.get("config") or {}
        cls: Any = resolved.packages[f"stores.{store_id}"]
        store = cls(resolved.settings[f"stores.{store_id}"], step_id=store_id)
        _set_level(store.logger, config)
        stores[store_id] = store
    return stores


def _build_transformers(
    resolved: ResolvedFlow,
    stores: dict[str, Store[Any]],
    links: dict[str, Any],
    errors: list[str],
) -> dict[str, ChainStep]:
    """Every transformer as a chain step; their own ``before`` chains are linked after."""
    spec = resolved.spec
    steps: dict[str, ChainStep] = {}
    for transformer_id, ref in (spec.get("transformers") or {}).items():
        config = ref.get("config") or {}
        cls: Any = resolved.packages[f"transformers.{transformer_id}"]
        transformer: Transformer[Any]
        if cls is FunctionTransformer:
            transformer = FunctionTransformer(
                import_callable(ref["code"]["push"]), step_id=transformer_id
            )
        else:
            try:
                transformer = cls(
                    resolved.settings[f"transformers.{transformer_id}"], step_id=transformer_id
                )
            except ConfigError as error:
                where = f"{resolved.path}.transformers.{transformer_id}.config.settings"
                errors.append(f"{where}.{error.path}: {error.reason}")
                continue
        _set_level(transformer.logger, config)
        push: Any = transformer.push
        if ref.get("cache") is not None:
            try:
                cache = compile_cache(
                    ref["cache"],
                    path=f"{resolved.path}.transformers.{transformer_id}.cache",
                    stores=stores,
                    step_id=transformer_id,
                )
            except ConfigError as error:
                errors.append(str(error))
                continue
            push = cached_push(transformer.push, cache)
        step = ChainStep(transformer_id, push, transformer.logger, dict(stores))
        step.transformer = transformer
        step.next = ref.get("next")
        steps[transformer_id] = step
    for transformer_id, ref in (spec.get("transformers") or {}).items():
        if transformer_id not in steps or ref.get("before") is None:
            continue
        path = f"{resolved.path}.transformers.{transformer_id}.before"
        try:
            ids = chain_ids(ref["before"], links, path)
            if transformer_id in ids:
                raise ChainConfigError(path, f"the chain runs {transformer_id!r} itself")
            steps[transformer_id].before = Chain([steps[i] for i in ids if i in steps])
        except ChainConfigError as error:
            errors.append(str(error))
    return steps


class Links:
    """Each transformer's ``next``; compiled as routes once, when a chain first needs them."""

    def __init__(self, next_by_id: dict[str, Any]) -> None:
        self.next = next_by_id
        self.static = all(link is None or is_static(link) for link in next_by_id.values())
        self._routes: dict[str, Route | None] | None = None

    def routes(self) -> dict[str, Route | None]:
        if self._routes is None:
            routes: dict[str, Route | None] = {}
            for step_id, link in self.next.items():
                where = f"transformers.{step_id}.next"
                _check_targets(link, self.next, where)
                routes[step_id] = None if link is None else compile_route(link, where)
            self._routes = routes
        return self._routes


def _chain(
    start: Any,
    links: Links,
    steps: dict[str, ChainStep],
    path: str,
    *,
    allow_many: bool,
) -> Chain | RoutedChain | None:
    """A chain from ``start``: walked once at load when every link is a step id or a list
    (``Chain``), else resolved per event from the routes (``RoutedChain``)."""
    if start is None or start == []:
        return None
    if is_static(start) and links.static:
        ids = chain_ids(start, links.next, path)
        return Chain([steps[i] for i in ids if i in steps]) if ids else None
    _check_targets(start, links.next, path)
    route = compile_route(start, path)
    if route.fans_out and not allow_many:
        raise ChainConfigError(path, "a destination's before cannot fan out (many), as in walkerOS")
    return RoutedChain(route, steps, links.routes(), allow_many=allow_many)


def _check_targets(route: Any, links: dict[str, Any], path: str) -> None:
    """Every step id ``route`` names is a transformer (else a ChainConfigError)."""
    for step_id, where in route_ids(route):
        known_step(step_id, links, f"{path}.{where}" if where else path)


def _known(config: dict[str, Any]) -> dict[str, Any]:
    """A destination config without the keys only walkerOS's runtime reads (warned at load)."""
    keys = config_keys(DestinationConfig)
    return {key: value for key, value in config.items() if key in keys}


def _set_level(logger: logging.Logger, config: dict[str, Any]) -> None:
    level = (config.get("logger") or {}).get("level")
    if isinstance(level, str):
        logger.setLevel(level.upper())
    elif isinstance(level, int):
        logger.setLevel(level)


def _examples(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for kind in ("sources", "transformers", "destinations", "stores"):
        for step_id, ref in (spec.get(kind) or {}).items():
            if ref.get("examples"):
                found[f"{kind}.{step_id}"] = ref["examples"]
    return found


def preview(flow: Flow, raw_event: Any) -> list[dict[str, Any]]:
    """What each destination would do with one event, sending nothing.

    The event goes the way it would from the flow's primary source: its
    ``next`` chain, then each destination's ``before`` chain. One entry per
    message a destination would send (its exact wire form, where the
    destination can render it), or per skip or stop, with the reason; each
    names its destination. A destination that raises gets a ``failed`` line.
    """
    event: Any = flow.collector.prepare(raw_event)
    ingest: dict[str, Any] = {}
    source = flow.primary_source()
    chain = getattr(source, "chain", None)
    if chain is not None:
        try:
            changed = chain.run(event, ingest)
        except StepRejected as refusal:
            return [_skip(refusal.where, event, f"rejected: {refusal.reason}")]
        if changed is None or isinstance(changed, CacheStop):
            return [_skip("transformers", event, "stopped by a transformer of the source chain")]
        event = changed
    branches = event.events if isinstance(event, FanOut) else [event]
    lines: list[dict[str, Any]] = []
    for branch in branches:
        for active in flow.collector.destinations:
            try:
                shown = preview_destination(active, branch, ingest)
            except Exception as error:  # a bug in one destination; the others still show
                lines.append(_failed(active.id, branch, error))
                continue
            lines.extend(named(active.id, line) for line in shown)
    return lines


def _failed(destination_id: str, event: Any, error: Exception) -> dict[str, Any]:
    """The line for a destination whose preview raised: ``failed`` holds the error."""
    return {
        "destination": destination_id,
        "failed": f"{type(error).__name__}: {error}",
        "event": event.get("name"),
        "id": event.get("id"),
    }


def named(destination_id: str, line: dict[str, Any]) -> dict[str, Any]:
    """The line with ``destination`` first: every ``flows push`` line says whose it is.

    A line that names its destination already is kept; a wire message (Segment's)
    gains the key and is otherwise exactly what would be posted.
    """
    if "destination" in line:
        return line
    return {"destination": destination_id, **line}


def preview_destination(
    active: ActiveDestination, event: Any, ingest: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """What one destination would send for an enriched event (its ``before`` chain first)."""
    if active.before is not None:
        try:
            changed = active.before.run(dict(event), {} if ingest is None else ingest)
        except EventRejected as refusal:
            return [_skip(active.id, event, f"rejected: {refusal.reason}")]
        if changed is None:
            return [_skip(active.id, event, "transformer")]
        event = changed
    routed = active.route(event, event["consent"])
    if isinstance(routed, Skipped):
        return [_skip(active.id, event, routed.reason)]
    rendered = active.destination.preview(*routed)
    if isinstance(rendered, Skipped):
        return [_skip(active.id, event, rendered.reason)]
    return list(rendered)


def _skip(destination_id: str, event: Any, reason: str) -> dict[str, Any]:
    return {
        "destination": destination_id,
        "skipped": reason,
        "event": event.get("name"),
        "id": event.get("id"),
    }
