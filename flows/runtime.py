"""Turning a resolved flow into running parts: a Collector, its destinations, its sources."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from collector.collector import (
    ActiveDestination,
    Collector,
    CollectorConfig,
    DestinationSetupError,
    build_destination,
)
from collector.destination import Skipped
from flows.config import FlowError, ResolvedFlow


@dataclass(slots=True)
class Flow:
    """A built flow: the collector (with destinations) and the configured sources."""

    name: str
    collector: Collector
    sources: dict[str, Any] = field(default_factory=dict)

    def destination(self, destination_id: str) -> ActiveDestination:
        for active in self.collector.destinations:
            if active.id == destination_id:
                return active
        raise KeyError(destination_id)


def build_flow(resolved: ResolvedFlow) -> Flow:
    """Create the collector, destinations and sources of a resolved flow."""
    spec = resolved.spec
    destinations: list[ActiveDestination] = []
    errors: list[str] = []
    for destination_id, ref in (spec.get("destinations") or {}).items():
        path = f"{resolved.path}.destinations.{destination_id}"
        cls = resolved.packages[f"destinations.{destination_id}"]
        try:
            destinations.append(
                build_destination(destination_id, cls, ref.get("config", {}), path=path)
            )
        except DestinationSetupError as error:
            errors.append(str(error))
    sources: dict[str, Any] = {}
    for source_id, ref in (spec.get("sources") or {}).items():
        source_cls: Any = resolved.packages[f"sources.{source_id}"]
        settings = source_cls.Settings.model_validate(ref.get("config", {}).get("settings", {}))
        sources[source_id] = source_cls(settings, source_id=source_id)
    if errors:
        raise FlowError(errors)
    collector = Collector(CollectorConfig.model_validate(spec.get("collector") or {}), destinations)
    return Flow(resolved.name, collector, sources)


def preview(flow: Flow, raw_event: Any) -> list[dict[str, Any]]:
    """What each destination would do with one event, sending nothing.

    One entry per message a destination would send (its exact wire form, where
    the destination can render it) or per skip, with the reason.
    """
    event = flow.collector.prepare(raw_event)
    consent = event["consent"]
    lines: list[dict[str, Any]] = []
    for active in flow.collector.destinations:
        routed = active.route(event, consent)
        if isinstance(routed, Skipped):
            lines.append(_skip(active.id, event, routed.reason))
            continue
        render = getattr(active.destination, "preview", None)
        if render is None:
            continue
        rendered = render(*routed)
        if isinstance(rendered, Skipped):
            lines.append(_skip(active.id, event, rendered.reason))
        else:
            lines.extend(rendered)
    return lines


def _skip(destination_id: str, event: Any, reason: str) -> dict[str, Any]:
    return {
        "destination": destination_id,
        "skipped": reason,
        "event": event.get("name"),
        "id": event.get("id"),
    }
