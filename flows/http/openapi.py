"""The OpenAPI 3.1 description of an ``http`` source, built from its settings.

Teams put the collector behind gateways and generate clients from such a
file, and contract tests (``tests/test_openapi.py`` runs schemathesis against
the real server) keep it honest. The event schema comes from the same pydantic
model that validates events, so the two cannot drift apart.
"""

from __future__ import annotations

from importlib.metadata import version
from typing import Any

from collector.event import EVENT_ADAPTER
from flows.http.settings import HttpSettings

EVENT_NAME_PATTERN = r"^[^ ]+ [\s\S]+$"
"""walkerOS names are "entity action": a space, with something on both sides of the first."""


_REF = "#/components/schemas/{model}"
_SECURITY = "sharedSecret"


def openapi_document(settings: HttpSettings) -> dict[str, Any]:
    """The paths this source answers, with the limits and answers of ``settings``."""
    schemas = _event_schemas(settings)
    paths: dict[str, Any] = {
        settings.path: {
            "post": _post(settings),
            "get": _pixel(settings),
            "options": {
                "summary": "CORS preflight",
                "operationId": "preflight",
                "responses": {"204": {"description": "Allowed methods and headers (CORS)"}},
            },
        }
    }
    if settings.status:
        paths["/health"] = {"get": _health()}
        paths["/ready"] = {"get": _ready()}
    if settings.metrics:
        paths["/metrics"] = {"get": _metrics()}
    for operations in paths.values():
        for operation in operations.values():
            operation["responses"].update(_connection_answers(settings))
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "walkeros-flows http source",
            "version": version("walkeros-flows"),
            "description": (
                "walkerOS events in, Segment (and other destinations) out. "
                "Every error answer is JSON naming the field and the reason. "
                f"Connections: at most {settings.max_connections} open per server process "
                "(more are answered 503 with Retry-After and closed); an idle keep-alive "
                f"connection is closed after {settings.keep_alive_timeout} ms."
            ),
        },
        "paths": paths,
        "components": {"schemas": schemas},
    }
    if settings.auth is not None:
        document["components"]["securitySchemes"] = {
            _SECURITY: {"type": "apiKey", "in": "header", "name": settings.auth.header}
        }
    return document


def _event_schemas(settings: HttpSettings) -> dict[str, Any]:
    schema = EVENT_ADAPTER.json_schema(ref_template=_REF)
    schemas: dict[str, Any] = schema.pop("$defs", {})
    schema["properties"]["name"]["pattern"] = EVENT_NAME_PATTERN
    schemas["Event"] = schema
    schemas["Events"] = {
        "description": "One event, a list of events, or {batch: [events]}",
        "anyOf": [
            {"$ref": _REF.format(model="Event")},
            _event_list(settings),
            {
                "type": "object",
                "properties": {"batch": _event_list(settings)},
                "required": ["batch"],
                "not": {"required": ["name"]},
            },
        ],
    }
    schemas["Accepted"] = {
        "type": "object",
        "properties": {"ok": {"const": True}, "accepted": {"type": "integer", "minimum": 0}},
        "required": ["ok", "accepted"],
    }
    schemas["Error"] = {
        "type": "object",
        "properties": {
            "ok": {"const": False},
            "error": {"type": "string"},
            "accepted": {"type": "integer", "minimum": 0},
            "rejected": {
                "type": "array",
                "description": "Each rejected event by its index in the request",
                "items": {
                    "type": "object",
                    "properties": {
                        "index": {"type": "integer", "minimum": 0},
                        "errors": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "properties": {
                                    "path": {"type": "string"},
                                    "reason": {"type": "string"},
                                },
                                "required": ["path", "reason"],
                            },
                        },
                    },
                    "required": ["index", "errors"],
                },
            },
        },
        "required": ["ok", "error"],
    }
    schemas["Status"] = {
        "type": "object",
        "properties": {"status": {"type": "string"}},
        "required": ["status"],
    }
    return schemas


def _event_list(settings: HttpSettings) -> dict[str, Any]:
    return {
        "type": "array",
        "items": {"$ref": _REF.format(model="Event")},
        "maxItems": settings.max_batch_size,
    }


def _json(model: str, description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": _REF.format(model=model)}}},
    }


def _gif(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"image/gif": {"schema": {"type": "string", "format": "binary"}}},
    }


def _refusals(settings: HttpSettings, answer: Any) -> dict[str, Any]:
    """The answers given before an event is read: origin, no token, overload, shutting down."""
    refusals = {
        "503": {
            **answer("Overloaded or shutting down: retry after Retry-After seconds"),
            "headers": {"Retry-After": {"schema": {"type": "integer", "minimum": 1}}},
        }
    }
    if settings.check_origin:
        neither = "; or neither header" if settings.check_origin == "strict" else ""
        refusals["403"] = answer(f"Origin (else Referer) not in cors.origin (checkOrigin){neither}")
    if settings.auth is not None:
        refusals["401"] = answer(f"Missing or wrong {settings.auth.header} header")
    return refusals


def _connection_answers(settings: HttpSettings) -> dict[str, Any]:
    """What any request may get from the connection limits; the connection is then closed."""
    return {
        "408": _json(
            "Error",
            f"Headers not complete within headersTimeout ({settings.headers_timeout} ms) "
            f"or the request within requestTimeout ({settings.request_timeout} ms); "
            "the connection is closed",
        ),
        "431": _json(
            "Error",
            f"Request line and headers over maxHeaderSize ({settings.max_header_size} bytes); "
            "the connection is closed",
        ),
    }


def _secured(settings: HttpSettings) -> dict[str, Any]:
    return {"security": [{_SECURITY: []}]} if settings.auth is not None else {}


def _post(settings: HttpSettings) -> dict[str, Any]:
    return {
        "summary": "Send walkerOS events",
        "operationId": "collect",
        "description": (
            "Only `name` is required; the collector adds id, timestamp, entity and action. "
            "`text/plain` bodies (navigator.sendBeacon) are read as JSON too. "
            f"Limits: {settings.max_batch_size} events, {settings.max_body_size} bytes, "
            f"nesting {settings.max_depth}, {settings.max_string_length} characters per "
            f"string, {settings.max_keys} keys per object. An invalid event is rejected "
            "by its index; the valid ones beside it are accepted."
        ),
        **_secured(settings),
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": _REF.format(model="Events")}}},
        },
        "responses": {
            "200": _json("Accepted", "Every event was accepted"),
            "400": _json("Error", "Invalid JSON, or some events rejected (named in `rejected`)"),
            "413": _json("Error", "Body over maxBodySize, or batch over maxBatchSize"),
            "415": _json("Error", "Content-Type other than application/json or text/plain"),
            **_refusals(settings, lambda text: _json("Error", text)),
        },
    }


def _pixel(settings: HttpSettings) -> dict[str, Any]:
    return {
        "summary": "Send one event as a tracking pixel",
        "operationId": "pixel",
        "description": (
            "`?name=page%20view&data[title]=Home&user[id]=u1` becomes nested objects; "
            "`true`, `false` and numbers are cast. A whole event may come as JSON in `e` "
            "instead. The answer is always a 1x1 GIF; the status says what happened."
        ),
        **_secured(settings),
        "parameters": [
            {
                "name": "name",
                "in": "query",
                "required": True,
                "description": 'The event name, "entity action"',
                "schema": {"type": "string", "pattern": EVENT_NAME_PATTERN},
            },
        ],
        "responses": {
            "200": _gif("The event was accepted"),
            "400": _gif("No event in the query, or the event is invalid"),
            "414": _gif("Query string too long"),
            **_refusals(settings, _gif),
        },
    }


def _health() -> dict[str, Any]:
    return {
        "summary": "Liveness",
        "operationId": "health",
        "responses": {"200": _json("Status", "The server is up")},
    }


def _ready() -> dict[str, Any]:
    return {
        "summary": "Readiness: destinations started and not shutting down",
        "operationId": "ready",
        "responses": {
            "200": _json("Status", "Ready to take events"),
            "503": _json("Status", "Starting or stopping"),
        },
    }


def _metrics() -> dict[str, Any]:
    return {
        "summary": "Prometheus metrics (all workers)",
        "operationId": "metrics",
        "responses": {
            "200": {
                "description": "Prometheus text format 0.0.4",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            }
        },
    }
