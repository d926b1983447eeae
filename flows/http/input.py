"""Turning an HTTP request body or pixel query into raw events, within limits.

Nothing here knows about ASGI: it takes bytes and strings and returns plain
values or a ``BadRequestError`` that says, in one line, what the client must fix.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import orjson

from collector.event import FieldError


class BadRequestError(ValueError):
    """The request as a whole cannot be used; ``status`` is the 4xx to answer."""

    def __init__(self, status: int, reason: str) -> None:
        self.status = status
        self.reason = reason
        super().__init__(reason)


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds that keep one request from costing more than it is worth."""

    max_batch_size: int
    max_depth: int
    max_string_length: int
    max_keys: int


def parse_body(body: bytes, limits: Limits) -> list[Any]:
    """The events in a JSON body: one event, a list, or ``{"batch": [...]}``."""
    if not body.strip():
        raise BadRequestError(400, "empty body: send a walkerOS event as JSON")
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise BadRequestError(400, f"invalid JSON: {_json_reason(error)}") from None
    if isinstance(data, dict) and "batch" in data and "name" not in data:
        data = data["batch"]
        if not isinstance(data, list):
            raise BadRequestError(400, "batch: must be a list of events")
    events = data if isinstance(data, list) else [data]
    if len(events) > limits.max_batch_size:
        raise BadRequestError(
            413, f"batch of {len(events)} events is over maxBatchSize {limits.max_batch_size}"
        )
    return events


def _json_reason(error: orjson.JSONDecodeError) -> str:
    """orjson's reason and position (it always gives both), in words a client can act on."""
    if error.msg == "depth limit exceeded":
        return f"nested too deeply (over {ORJSON_MAX_DEPTH} levels)"
    return f"{error.msg} at position {error.pos}"


ORJSON_MAX_DEPTH = 1024
"""The deepest nesting orjson parses; maxDepth (per event) is far below it."""


def body_within(body: bytes, limits: Limits) -> bool:
    """True when no event in ``body`` can go over a limit, judged from its bytes alone.

    A string has no more characters than the body has bytes, an object or a
    list no more members than the body has commas plus one, and nesting is no
    deeper than the body has brackets. So a small body (one event) skips the
    walk of ``check_limits``; any other is checked event by event.
    """
    return (
        len(body) <= limits.max_string_length
        and body.count(b",") < limits.max_keys
        and body.count(b"{") + body.count(b"[") <= limits.max_depth
    )


def check_limits(event: Any, limits: Limits) -> FieldError | None:
    """The first place where ``event`` goes over a limit, or None.

    The common case (within limits) is one walk over the containers that
    builds no path strings; only a rejected event is walked again to name
    the path. An explicit stack, not recursion: a hostile body cannot make
    this go deeper than ``max_depth`` or overflow Python's stack.
    """
    if _within(event, limits):
        return None
    return _first_violation(event, limits)


def _within(event: Any, limits: Limits) -> bool:
    max_depth, max_keys, max_chars = limits.max_depth, limits.max_keys, limits.max_string_length
    kind = type(event)
    if kind is str:
        return len(event) <= max_chars
    if kind is not dict and kind is not list:
        return True
    stack: list[tuple[Any, int]] = [(event, 0)]
    pop, push = stack.pop, stack.append
    while stack:
        container, depth = pop()
        if depth >= max_depth or len(container) > max_keys:
            return False
        if type(container) is dict:
            for key in container:
                if len(key) > max_chars:
                    return False
            items = container.values()
        else:
            items = container
        for item in items:
            kind = type(item)
            if kind is str:
                if len(item) > max_chars:
                    return False
            elif kind is dict or kind is list:
                push((item, depth + 1))
    return True


def _first_violation(event: Any, limits: Limits) -> FieldError | None:
    """The same checks as ``_within``, naming the path of the first violation."""
    stack: list[tuple[Any, str, int]] = [(event, "", 0)]
    while stack:
        value, path, depth = stack.pop()
        if isinstance(value, str):
            if len(value) > limits.max_string_length:
                return FieldError(
                    path, f"string of {len(value)} characters is over {limits.max_string_length}"
                )
        elif isinstance(value, dict):
            if depth >= limits.max_depth:
                return FieldError(path, f"nested deeper than {limits.max_depth} levels")
            if len(value) > limits.max_keys:
                return FieldError(path, f"{len(value)} keys is over the limit of {limits.max_keys}")
            for key, item in value.items():
                if len(key) > limits.max_string_length:
                    return FieldError(path, "a key is over the string length limit")
                stack.append((item, f"{path}.{key}" if path else key, depth + 1))
        elif isinstance(value, list):
            if depth >= limits.max_depth:
                return FieldError(path, f"nested deeper than {limits.max_depth} levels")
            if len(value) > limits.max_keys:
                return FieldError(
                    path, f"{len(value)} items is over the limit of {limits.max_keys}"
                )
            for index, item in enumerate(value):
                stack.append((item, f"{path}.{index}" if path else str(index), depth + 1))
    return None


def parse_pixel_query(query: str, limits: Limits) -> dict[str, Any]:
    """An event from a pixel query string, walkerOS style.

    ``name=page%20view&data[title]=Home&user[id]=u1`` becomes nested objects;
    ``true``/``false`` and numbers are cast as walkerOS does (so ``timestamp``
    stays a number). A whole event may instead come as JSON in ``e``.
    """
    if len(query) > limits.max_string_length * 4:
        raise BadRequestError(414, "query string is too long")
    pairs = parse_qsl(query, keep_blank_values=True)
    if not pairs:
        raise BadRequestError(400, "no event in the query string: use ?name=entity%20action&...")
    if len(pairs) > limits.max_keys:
        raise BadRequestError(400, f"{len(pairs)} query parameters is over {limits.max_keys}")
    for key, value in pairs:
        if key == "e":
            try:
                event = orjson.loads(value)
            except orjson.JSONDecodeError as error:
                raise BadRequestError(400, f"e: invalid JSON: {_json_reason(error)}") from None
            if not isinstance(event, dict):
                raise BadRequestError(400, "e: must be a JSON object (one event)")
            return event
    result: dict[str, Any] = {}
    for key, value in pairs:
        _assign(result, _query_keys(key, limits), _cast(value))
    return result


def _query_keys(key: str, limits: Limits) -> list[str]:
    """``data[items][0]`` -> ``["data", "items", "0"]``."""
    head, _, rest = key.partition("[")
    keys = [head]
    if rest:
        keys.extend(part.rstrip("]") for part in rest.split("["))
    if len(keys) > limits.max_depth:
        raise BadRequestError(400, f"{key[:60]}: nested deeper than {limits.max_depth} levels")
    if not all(keys):
        raise BadRequestError(400, f"{key[:60]}: empty key in query parameter name")
    return keys


def _assign(target: dict[str, Any], keys: list[str], value: Any) -> None:
    current = target
    for part in keys[:-1]:
        child = current.get(part)
        if not isinstance(child, dict):
            child = {}
            current[part] = child
        current = child
    current[keys[-1]] = value


def _cast(value: str) -> Any:
    if value == "true":
        return True
    if value == "false":
        return False
    if value and (value[0].isdigit() or value[0] == "-") and len(value) < 20:
        try:
            number = float(value) if any(c in value for c in ".eE") else int(value)
        except ValueError:
            return value
        if isinstance(number, float) and not math.isfinite(number):
            return value
        return number
    return value
