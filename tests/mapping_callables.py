"""Callables that test flows name by import path (``tests.mapping_callables:double``)."""

from __future__ import annotations

from typing import Any

from collector.mapping import MappingContext


def double(value: Any, context: MappingContext) -> Any:
    """A ``fn``: numbers doubled; anything else is no value (None)."""
    return value * 2 if type(value) is int else None


def seen(value: Any, context: MappingContext) -> Any:
    """A ``fn`` that shows what it was handed: the value and the consent it could see."""
    return {"value": value, "consent": dict(context.consent or {})}


def fails(value: Any, context: MappingContext) -> Any:
    """A ``fn``, ``condition`` or ``validate`` that raises, as a buggy one would."""
    raise ValueError("boom")


def is_flagged(value: Any, context: MappingContext) -> bool:
    """A ``condition`` on the value it is given."""
    return isinstance(value, dict) and value.get("flag") is True


def is_product(event: Any, context: MappingContext) -> bool:
    """A rule ``condition``: called with the event."""
    return isinstance(event, dict) and event.get("data", {}).get("kind") == "product"


def positive(result: Any, context: MappingContext) -> bool:
    """A ``validate`` on the resolved result."""
    return type(result) is int and result > 0


def event_name(value: Any, context: MappingContext) -> Any:
    """A ``fn`` that reads the event it is mapped for, not the value."""
    return context.event.get("name") if isinstance(context.event, dict) else None


def event_type(value: Any, context: MappingContext) -> str:
    """A ``fn`` that tells what the mapping context holds as its event."""
    return type(context.event).__name__


def anonymized_ip(source: Any, context: MappingContext) -> str:
    """A fingerprint ``fn`` (walkerOS's ipAnonymization example): ``ingest.ip`` with its
    last IPv4 octet zeroed, so every visitor of a /24 with the same browser hashes alike.

    It gets the whole ``{event, ingest}`` source, as walkerOS's ``fn`` does.
    """
    ingest = source.get("ingest") if isinstance(source, dict) else None
    ip = ingest.get("ip") if isinstance(ingest, dict) else None
    text = "" if ip is None else str(ip)
    head, dot, last = text.rpartition(".")
    return f"{head}.0" if dot and last.isascii() and last.isdigit() else text


def lone_surrogate(source: Any, context: MappingContext) -> str:
    """A ``fn`` returning text that is not valid Unicode (a lone surrogate)."""
    return "a\ud800b"


def transformed(data: Any, config: Any, rule: Any) -> str:
    """An api destination ``transform`` (walkerOS's test: ``() => "transformed"``)."""
    return "transformed"


def wrapped(data: Any, config: Any, rule: Any) -> str:
    """An api ``transform`` that shows what it was given: the data and the rule's key."""
    return (
        f"wrapped:{data.get('id') if isinstance(data, dict) else data}:{rule.key if rule else '-'}"
    )


def transform_fails(data: Any, config: Any, rule: Any) -> str:
    """An api ``transform`` with a bug."""
    raise KeyError("sku")
