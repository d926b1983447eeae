"""A step's ``cache`` (walkerOS EventCacheConfig), compiled once into lookups on a store.

::

    "cache": {"stop": false, "store": "shared", "namespace": "enrich",
              "rules": [{"match": {...}, "key": ["event.name", "ingest.path"],
                         "ttl": 60, "update": {"headers.X-Cache": {"key": "cache.status"}}}]}

Per event the first rule whose ``match`` holds decides; with none, the step
runs uncached. Match and key paths are read from ``{"event": ..., "ingest":
...}`` (a source, which has no event yet, sees only ``ingest``). The key is
walkerOS's: the text of each key path joined by ``:``, after ``namespace:``
when one is set; when every key path is empty the event is not cached. The
value is written with the rule's ``ttl`` (seconds) to the named store (one of
the flow's ``stores``) or, without ``store``, to a memory store of this step
alone. ``update`` changes a result on its way out (never the stored value):
each path is set to a mapping value resolved from ``{"event", "ingest",
"cache": {"status": "HIT" | "MISS"}}``.

The store is advisory: when it fails, the step runs as if uncached (logged,
never raised into the event's path). What a hit means for each kind of step
is in ``collector.cache_steps``.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from pydantic import BaseModel

from collector.errors import ConfigError, suggestion
from collector.js import js_text
from collector.matcher import MatcherConfigError, Predicate, always, compile_matcher
from collector.paths import Getter, PathError, Setter, compile_path, compile_setter
from collector.store import Store, store_id
from collector.stores.memory import MemorySettings, MemoryStore
from collector.values import (
    MappingConfigError,
    MappingContext,
    Resolver,
    compile_value,
    kind_name,
)

logger = logging.getLogger("flows.cache")

Status = Literal["HIT", "MISS"]
_CONFIG_KEYS: Final = frozenset({"stop", "store", "namespace", "rules"})
_RULE_KEYS: Final = frozenset({"match", "key", "ttl", "update"})


class CacheConfigError(ConfigError):
    """A ``cache`` config cannot be compiled; ``path`` says where (``cache.rules.0.ttl``)."""


@dataclass(frozen=True, slots=True)
class CacheRule:
    """One compiled rule: when it applies, what it keys on, how long, what it updates."""

    index: int
    match: Predicate
    key: tuple[Getter, ...]
    ttl: float
    update: tuple[tuple[Setter, Resolver], ...]


@dataclass(slots=True)
class CacheProbe:
    """One event's look at the cache: its key and rule, and the stored value on a hit.

    Taken before the step runs and kept until it has run, so the value is
    remembered under the key the event had when it came in, even if the step
    changes the event or its ingest.
    """

    cache: EventCache
    key: str
    rule: CacheRule
    value: Any | None
    """The stored value (a hit), or None (a miss)."""
    context: dict[str, Any]

    @property
    def hit(self) -> bool:
        return self.value is not None

    def remember(self, value: Any) -> None:
        """Store ``value`` under this probe's key for the rule's ttl."""
        self.cache.write(self.key, value, self.rule.ttl)

    def updated(self, value: Any, status: Status) -> Any:
        """``value`` with the rule's ``update`` applied; a copy, the stored value is unchanged."""
        if not self.rule.update or not isinstance(value, dict):
            return value
        context = {**self.context, "cache": {"status": status}}
        event = self.context.get("event")
        mapping_context = MappingContext(
            event if isinstance(event, Mapping) else {},
            event.get("consent") if isinstance(event, Mapping) else None,
        )
        for set_path, resolve in self.rule.update:
            value = set_path(value, resolve(context, mapping_context))
        return value


class EventCache:
    """A compiled ``cache``: ``probe`` before a step runs, ``CacheProbe.remember`` after."""

    def __init__(
        self,
        rules: tuple[CacheRule, ...],
        store: Store[Any],
        *,
        stop: bool = False,
        namespace: str | None = None,
        store_id: str | None = None,
    ) -> None:
        self.rules = rules
        self.store = store
        self.stop = stop
        self.namespace = namespace
        self.store_id = store_id
        """The flow store it writes to; None: a memory store of this step alone."""
        self._prefix = f"{namespace}:" if namespace else ""
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        self.errors = 0

    def probe(
        self, event: Mapping[str, Any] | None, ingest: Mapping[str, Any] | None
    ) -> CacheProbe | None:
        """The probe of this event, or None when no rule applies or its key is empty."""
        context = _context(event, ingest)
        found = self._key(context)
        if found is None:
            return None
        key, rule = found
        try:
            value = self.store.get(key)
        except Exception as error:
            self._count_error("get", error)
            value = None
        with self._lock:
            if value is None:
                self.misses += 1
            else:
                self.hits += 1
        return CacheProbe(self, key, rule, value, context)

    def lookup(
        self, event: Mapping[str, Any] | None, ingest: Mapping[str, Any] | None
    ) -> Any | None:
        """The value stored for this event, ``update`` applied (status HIT); None on a miss."""
        probe = self.probe(event, ingest)
        if probe is None or probe.value is None:
            return None
        return probe.updated(probe.value, "HIT")

    def remember(
        self, event: Mapping[str, Any] | None, ingest: Mapping[str, Any] | None, value: Any
    ) -> None:
        """Store ``value`` for this event (nothing when no rule applies); prefer a probe's."""
        found = self._key(_context(event, ingest))
        if found is not None:
            key, rule = found
            self.write(key, value, rule.ttl)

    def _key(self, context: dict[str, Any]) -> tuple[str, CacheRule] | None:
        """The first rule that applies and the key it makes; None: none, or an empty key."""
        for rule in self.rules:
            if rule.match(context):
                parts = [js_text(read(context)) for read in rule.key]
                if not any(parts):
                    return None
                return self._prefix + ":".join(parts), rule
        return None

    def write(self, key: str, value: Any, ttl: float) -> None:
        try:
            self.store.set(key, value, ttl)
        except Exception as error:
            self._count_error("set", error)

    def counters(self) -> dict[str, int]:
        """Hits, misses and store errors since load, for metrics."""
        with self._lock:
            return {"hits": self.hits, "misses": self.misses, "errors": self.errors}

    def _count_error(self, operation: str, error: Exception) -> None:
        with self._lock:
            self.errors += 1
        # The key and the error text may hold event data; the type is enough to act on.
        logger.warning(
            "cache store %s: %s failed (%s); running uncached",
            self.store_id or self.store.id,
            operation,
            type(error).__name__,
        )


def _context(event: Mapping[str, Any] | None, ingest: Mapping[str, Any] | None) -> dict[str, Any]:
    """What match, key and update paths read: ``event`` (when there is one) and ``ingest``."""
    context: dict[str, Any] = {"ingest": {} if ingest is None else ingest}
    if event is not None:
        context["event"] = event
    return context


def compile_cache(
    config: Any,
    *,
    path: str = "cache",
    stores: Mapping[str, Store[Any]] | None = None,
    step_id: str = "",
    default_stop: bool = False,
) -> EventCache:
    """Compile a step's ``cache`` config; errors name ``path`` and the reason.

    ``stores`` are the flow's stores by id (``store`` must name one);
    ``default_stop`` is ``stop`` when omitted (walkerOS: True for sources).
    """
    if isinstance(config, BaseModel):  # a flow model holding the cache: compile what was written
        config = config.model_dump(by_alias=True, exclude_unset=True)
    if not isinstance(config, Mapping):
        raise CacheConfigError(path, f"must be an object, got {kind_name(config)}")
    for name in config:
        if name not in _CONFIG_KEYS:
            raise CacheConfigError(
                f"{path}.{name}", f"unknown key{suggestion(str(name), _CONFIG_KEYS)}"
            )
    stop = config.get("stop", default_stop)
    if not isinstance(stop, bool):
        raise CacheConfigError(f"{path}.stop", f"must be a boolean, got {kind_name(stop)}")
    namespace = config.get("namespace")
    if namespace is not None and not isinstance(namespace, str):
        raise CacheConfigError(f"{path}.namespace", f"must be a string, got {kind_name(namespace)}")
    rules = config.get("rules")
    if not isinstance(rules, list) or not rules:
        raise CacheConfigError(f"{path}.rules", "must be a list of at least one rule")
    compiled = tuple(_compile_rule(rule, i, f"{path}.rules.{i}") for i, rule in enumerate(rules))
    named = config.get("store")
    named = store_id(named) if isinstance(named, str) else named
    store = _resolve_store(named, stores or {}, f"{path}.store", step_id)
    return EventCache(compiled, store, stop=stop, namespace=namespace, store_id=named)


def _resolve_store(
    store_id: Any, stores: Mapping[str, Store[Any]], path: str, step_id: str
) -> Store[Any]:
    if store_id is None:
        return MemoryStore(
            MemorySettings.model_validate({}), step_id=f"{step_id}.cache" if step_id else "cache"
        )
    if not isinstance(store_id, str):
        raise CacheConfigError(path, f"must be a store id, got {kind_name(store_id)}")
    if store_id not in stores:
        known = f" (declared: {', '.join(sorted(stores))})" if stores else " (no stores declared)"
        raise CacheConfigError(
            path, f"unknown store {store_id!r}{suggestion(store_id, list(stores))}{known}"
        )
    return stores[store_id]


def _compile_rule(rule: Any, index: int, path: str) -> CacheRule:
    if not isinstance(rule, Mapping):
        raise CacheConfigError(path, f"a rule must be an object, got {kind_name(rule)}")
    for name in rule:
        if name not in _RULE_KEYS:
            raise CacheConfigError(
                f"{path}.{name}", f"unknown key{suggestion(str(name), _RULE_KEYS)}"
            )
    try:
        match = compile_matcher(rule["match"], f"{path}.match") if "match" in rule else always
    except MatcherConfigError as error:
        raise CacheConfigError(error.path, error.reason) from None
    return CacheRule(
        index=index,
        match=match,
        key=_compile_key(rule.get("key"), f"{path}.key"),
        ttl=_ttl(rule.get("ttl"), f"{path}.ttl"),
        update=_compile_update(rule.get("update"), f"{path}.update"),
    )


def _compile_key(keys: Any, path: str) -> tuple[Getter, ...]:
    if not isinstance(keys, list) or not keys:
        raise CacheConfigError(path, "must be a list of at least one dot path")
    getters = []
    for i, key in enumerate(keys):
        if not isinstance(key, str) or not key:
            raise CacheConfigError(f"{path}.{i}", "must be a dot path (a non-empty string)")
        try:
            getters.append(compile_path(key))
        except PathError as error:
            raise CacheConfigError(f"{path}.{i}", str(error)) from None
    return tuple(getters)


def _ttl(ttl: Any, path: str) -> float:
    if ttl is None:
        raise CacheConfigError(path, "is required (seconds)")
    if isinstance(ttl, bool) or not isinstance(ttl, int | float):
        raise CacheConfigError(path, f"must be a number of seconds, got {kind_name(ttl)}")
    if not math.isfinite(ttl) or ttl <= 0:
        raise CacheConfigError(path, "must be > 0")
    return float(ttl)


def _compile_update(update: Any, path: str) -> tuple[tuple[Setter, Resolver], ...]:
    if update is None:
        return ()
    if not isinstance(update, Mapping):
        raise CacheConfigError(path, f"must be an object of path: value, got {kind_name(update)}")
    compiled = []
    for target, value_config in update.items():
        if not isinstance(target, str) or not target or "" in target.split("."):
            raise CacheConfigError(f"{path}.{target}", "must be a dot path")
        try:
            resolver = compile_value(value_config, f"{path}.{target}")
        except MappingConfigError as error:
            raise CacheConfigError(error.path, error.reason) from None
        compiled.append((compile_setter(target), resolver))
    return tuple(compiled)
