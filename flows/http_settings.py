"""Settings of the ``http`` source (flow file ``sources.<id>.config.settings``)."""

from __future__ import annotations

import os
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    StrictBool,
    StrictStr,
    field_validator,
)

from collector.mapping_config import ValueConfig

DEFAULT_PORT = 8080
HttpMethod = Literal["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"]


def _default_methods() -> list[HttpMethod]:
    return ["POST", "GET", "OPTIONS"]


def _default_port() -> int:
    """``PORT`` from the environment (as platforms and Docker set it), else 8080."""
    value = os.environ.get("PORT", "")
    return int(value) if value.isdigit() else DEFAULT_PORT


class CorsSettings(BaseModel):
    """Which browser origins may post, and how long a preflight is cached."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    origin: StrictStr | list[StrictStr] = Field(
        "*", description='Allowed origin(s); "*" allows any'
    )
    methods: list[HttpMethod] = Field(
        default_factory=_default_methods,
        description="Access-Control-Allow-Methods of a preflight",
    )
    headers: list[StrictStr] | None = Field(
        None, description="Access-Control-Allow-Headers; default: what the browser asked for"
    )
    credentials: StrictBool = Field(False, description="Send Access-Control-Allow-Credentials")
    max_age: int = Field(600, alias="maxAge", ge=0, description="Preflight cache (seconds)")


class AuthSettings(BaseModel):
    """A shared secret for server-to-server sources; browsers cannot keep one."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    header: StrictStr = Field("X-Flows-Token", description="Request header carrying the token")
    token: SecretStr = Field(description="Expected value; use $env.NAME, never a literal")

    @field_validator("token")
    @classmethod
    def _not_empty(cls, token: SecretStr) -> SecretStr:
        if len(token.get_secret_value()) < 16:
            raise ValueError("must be at least 16 characters")
        return token


class HttpSettings(BaseModel):
    """Where to listen, what to accept, and the limits that keep the server safe."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    port: int = Field(
        default_factory=_default_port, ge=0, le=65535, description="Listen port (PORT, else 8080)"
    )
    host: StrictStr = Field("0.0.0.0", description="Listen address")
    path: StrictStr = Field("/collect", description="Path that takes events (POST; GET: pixel)")
    cors: StrictBool | CorsSettings = Field(True, description="CORS for browsers; false disables")
    max_batch_size: int = Field(
        100, alias="maxBatchSize", ge=1, le=10_000, description="Events per request"
    )
    max_body_size: int = Field(
        1_048_576, alias="maxBodySize", ge=1024, description="Request body limit in bytes"
    )
    max_depth: int = Field(20, alias="maxDepth", ge=2, le=200, description="JSON nesting limit")
    max_string_length: int = Field(
        16_384, alias="maxStringLength", ge=64, description="Characters per string value"
    )
    max_keys: int = Field(
        1000, alias="maxKeys", ge=8, description="Keys per object and items per list"
    )
    ingest: dict[str, ValueConfig] | None = Field(
        None,
        description=(
            "Event path -> mapping value over the request "
            "(ip, userAgent, language, origin, referer, headers.<name>); nothing by default"
        ),
    )
    queue_high_water: float = Field(
        0.8,
        alias="queueHighWater",
        gt=0,
        le=1,
        description="Answer 503 while any destination queue is this full (fraction)",
    )
    retry_after: int = Field(
        1, alias="retryAfter", ge=1, description="Retry-After seconds on 503 (overload)"
    )
    auth: AuthSettings | None = Field(None, description="Require a shared-secret header")
    metrics: StrictBool = Field(True, description="Serve Prometheus metrics at /metrics")
    status: StrictBool = Field(True, description="Serve /health and /ready (as walkerOS does)")

    @field_validator("path")
    @classmethod
    def _absolute_path(cls, path: str) -> str:
        if not path.startswith("/") or path in {"/health", "/ready", "/metrics"}:
            raise ValueError("must start with / and not be /health, /ready or /metrics")
        return path.rstrip("/") or "/"
