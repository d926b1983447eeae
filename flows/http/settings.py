"""Settings of the ``http`` source (flow file ``sources.<id>.config.settings``)."""

from __future__ import annotations

import os
import re
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    StrictBool,
    StrictStr,
    ValidationInfo,
    field_validator,
)

from collector.mapping_config import ValueConfig

DEFAULT_PORT = 8080
MAX_TIMEOUT = 3_600_000
"""An hour, in ms: a longer connection timeout is a mistake (seconds written as ms?)."""
HttpMethod = Literal["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"]


def _default_methods() -> list[HttpMethod]:
    return ["POST", "GET", "OPTIONS"]


def _default_port() -> int:
    """``PORT`` from the environment (as platforms and Docker set it), else 8080."""
    value = os.environ.get("PORT", "")
    return int(value) if value.isdigit() else DEFAULT_PORT


_ORIGIN = re.compile(
    r"[a-z][a-z0-9+.-]*://(?:[a-z0-9-]+(?:\.[a-z0-9-]+)*|\[[0-9a-f:.]+\])(?::[0-9]{1,5})?"
)
"""``scheme://host[:port]``, lowercase: what a browser sends as ``Origin`` (IDNs as xn--)."""
_DEFAULT_PORTS = ("http://", ":80"), ("https://", ":443")
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
"""An HTTP header name (RFC 9110 token)."""


def _origin(value: str) -> str:
    """An allowed origin, lowercased: browsers send scheme and host in lowercase."""
    origin = value.lower()
    if origin in ("*", "null"):
        return origin
    if not _ORIGIN.fullmatch(origin):
        raise ValueError(
            "not an origin: write scheme://host[:port] as browsers send it, "
            "with no path and no trailing slash"
        )
    for scheme, port in _DEFAULT_PORTS:
        if origin.startswith(scheme) and origin.endswith(port):
            raise ValueError(f"leave out the default port {port}: browsers never send it")
    return origin


def _header_name(value: str) -> str:
    if not _TOKEN.fullmatch(value):
        raise ValueError("not a header name (letters, digits and !#$%&'*+.^_`|~-)")
    return value


Origin = Annotated[StrictStr, AfterValidator(_origin)]
HeaderName = Annotated[StrictStr, AfterValidator(_header_name)]


class CorsSettings(BaseModel):
    """Which browser origins may read answers, and how long a preflight is cached."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    origin: Origin | list[Origin] = Field(
        "*",
        description=(
            'Allowed origin(s), scheme://host[:port], matched exactly; "*" allows any '
            "(not with credentials)"
        ),
    )
    methods: list[HttpMethod] = Field(
        default_factory=_default_methods,
        description="Access-Control-Allow-Methods of a preflight",
    )
    headers: list[HeaderName] | None = Field(
        None,
        description=(
            "Access-Control-Allow-Headers; default: what the browser asked for, or with "
            "credentials Content-Type, traceparent, tracestate and the auth header"
        ),
    )
    credentials: StrictBool = Field(
        False,
        description="Send Access-Control-Allow-Credentials (needs a list of origins)",
    )
    max_age: int = Field(600, alias="maxAge", ge=0, description="Preflight cache (seconds)")

    @property
    def origins(self) -> tuple[str, ...]:
        """The allowed origins as a tuple, whether written as one string or a list."""
        return (self.origin,) if isinstance(self.origin, str) else tuple(self.origin)

    @property
    def any_origin(self) -> bool:
        return "*" in self.origins

    @field_validator("credentials")
    @classmethod
    def _credentials_need_listed_origins(cls, credentials: bool, info: ValidationInfo) -> bool:
        """Credentials for any origin would let every site read answers made with cookies."""
        origin = info.data.get("origin")
        if not credentials or origin is None:
            return credentials
        origins = [origin] if isinstance(origin, str) else origin
        if "*" in origins:
            raise ValueError(
                'cannot be true with origin "*" (any site could read answers sent with '
                'the user\'s cookies); list the origins, e.g. "origin": ["https://shop.example"]'
            )
        if "null" in origins:
            raise ValueError(
                'cannot be true with origin "null" (sandboxed frames and local files of any '
                'site send it); remove "null" from origin'
            )
        return credentials


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


class EventPath(BaseModel):
    """A walkerOS express ``paths`` entry: a path and the methods it takes."""

    model_config = ConfigDict(extra="forbid")

    path: StrictStr
    methods: list[Literal["GET", "POST", "OPTIONS"]] | None = None


class HttpSettings(BaseModel):
    """Where to listen, what to accept, and the limits that keep the server safe."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    port: int = Field(
        default_factory=_default_port, ge=0, le=65535, description="Listen port (PORT, else 8080)"
    )
    host: StrictStr = Field("0.0.0.0", description="Listen address")
    path: StrictStr = Field("/collect", description="Path that takes events (POST; GET: pixel)")
    cors: StrictBool | CorsSettings = Field(True, description="CORS for browsers; false disables")
    check_origin: StrictBool | Literal["strict"] = Field(
        False,
        alias="checkOrigin",
        description=(
            "Refuse (403) posts and pixels whose Origin, else Referer, is not in cors.origin; "
            '"strict" also refuses requests with neither header'
        ),
    )
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
    health_check: StrictBool | None = Field(
        None,
        alias="healthCheck",
        description="walkerOS express's name for status: serve /health and /ready",
    )
    paths: list[StrictStr | EventPath] = Field(
        default_factory=list,
        description="More paths that take events, besides path (walkerOS express paths)",
    )
    max_header_size: int = Field(
        16_384,
        alias="maxHeaderSize",
        ge=1024,
        le=1_048_576,
        description="Request line and headers limit in bytes; over it: 431, connection closed",
    )
    request_timeout: int = Field(
        30_000,
        alias="requestTimeout",
        ge=1,
        le=MAX_TIMEOUT,
        description="ms to receive a whole request (headers and body); then 408, closed",
    )
    headers_timeout: int = Field(
        10_000,
        alias="headersTimeout",
        ge=1,
        le=MAX_TIMEOUT,
        description="ms from a request's first byte (or the connection's opening) to its headers",
    )
    keep_alive_timeout: int = Field(
        5000,
        alias="keepAliveTimeout",
        ge=1,
        le=MAX_TIMEOUT,
        description="ms an idle keep-alive connection stays open",
    )
    max_connections: int = Field(
        1024,
        alias="maxConnections",
        ge=1,
        le=1_000_000,
        description="Open connections per server process; more are answered 503 and closed",
    )

    @field_validator("headers_timeout")
    @classmethod
    def _headers_within_request(cls, headers_timeout: int, info: ValidationInfo) -> int:
        """As in Node: the headers are part of the request, so their deadline comes first."""
        request_timeout = info.data.get("request_timeout")
        if request_timeout is not None and headers_timeout > request_timeout:
            raise ValueError(f"must not be longer than requestTimeout ({request_timeout} ms)")
        return headers_timeout

    @field_validator("check_origin")
    @classmethod
    def _check_needs_listed_origins(
        cls, check: bool | Literal["strict"], info: ValidationInfo
    ) -> bool | Literal["strict"]:
        """The check compares against cors.origin, so it needs real origins there."""
        cors = info.data.get("cors")
        if check is False or cors is None:
            return check
        if isinstance(cors, bool) or cors.any_origin:
            raise ValueError(
                "needs the allowed origins listed in cors.origin, e.g. "
                '"cors": {"origin": ["https://shop.example"]}'
            )
        return check

    @field_validator("path")
    @classmethod
    def _absolute_path(cls, path: str) -> str:
        if not path.startswith("/") or path in {"/health", "/ready", "/metrics"}:
            raise ValueError("must start with / and not be /health, /ready or /metrics")
        return path.rstrip("/") or "/"
