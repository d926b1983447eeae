"""Inline ``code`` transformers as flow files name them (``"push": "tests.user_transformers:..."``)."""

from __future__ import annotations

from typing import Any, Literal

from collector.destination import EventRejected
from collector.transformer import TransformerContext


def drop_internal(event: dict[str, Any], context: TransformerContext) -> dict[str, Any] | bool:
    """walkerOS's filter example: internal and debug events stop here."""
    name = str(event.get("name", ""))
    return False if name.startswith(("internal ", "debug ")) else event


def tag(event: dict[str, Any], context: TransformerContext) -> dict[str, Any]:
    """Appends the step id to ``globals.steps``: a changed copy, so the order is visible."""
    steps = [*event.get("globals", {}).get("steps", "").split(","), context.id]
    return {
        **event,
        "globals": {**event.get("globals", {}), "steps": ",".join(filter(None, steps))},
    }


def record_ingest(event: dict[str, Any], context: TransformerContext) -> None:
    """Copies what the request looked like into the event's custom fields (None: unchanged)."""
    context.ingest["seen_by"] = context.id
    return


def ingest_to_custom(event: dict[str, Any], context: TransformerContext) -> dict[str, Any]:
    wanted = {key: context.ingest.get(key) for key in ("method", "path", "userAgent", "seen_by")}
    return {**event, "custom": {**event.get("custom", {}), **wanted}}


def refuse_tests(event: dict[str, Any], context: TransformerContext) -> Literal[False] | None:
    if event.get("entity") == "test":
        raise EventRejected("test events are not allowed here")
    return None


def explode(event: dict[str, Any], context: TransformerContext) -> None:
    raise KeyError("sku")
