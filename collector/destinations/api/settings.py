"""Settings of the ``api`` destination: walkerOS's names (url, method, headers, timeout,
transform) plus batching, retries, queue bound and dead letters, all checked at load."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Final
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    StrictStr,
    field_validator,
)

from collector.callables import CallableImportError, import_callable
from collector.dead_letter import DEFAULT_TEMPLATE

_TOKEN: Final = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
"""An HTTP token (RFC 9110): what a method or a header name may be."""
_CONTROL: Final = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
"""What a header value may not hold (CR and LF would split the request)."""
DEFAULT_BATCH_SIZE: Final = 1000
"""walkerOS's default size once batching is on."""
DEFAULT_BATCH_WAIT: Final = 30_000
"""ms; walkerOS's default ``age``: a batch waits at most this long for more events."""


class BatchOptions(BaseModel):
    """``{"wait": ms, "size": n}``: up to ``size`` events per request, sent at most ``wait`` ms
    after the first of them arrived."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    wait: float = Field(DEFAULT_BATCH_WAIT, ge=0, description="Longest wait to fill a batch (ms)")
    size: int = Field(DEFAULT_BATCH_SIZE, ge=1, le=100_000, description="Events per request")


class ApiSettings(BaseModel):
    """Flow-file settings (``config.settings``) of the ``api`` destination."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    url: StrictStr | None = Field(
        None, description="Where to send events (http or https); without it nothing is sent"
    )
    method: StrictStr = Field("POST", description="HTTP method")
    headers: dict[StrictStr, SecretStr] | None = Field(
        None,
        description="Request headers, e.g. an API key; their values are kept out of logs",
    )
    timeout: int = Field(5000, gt=0, description="Per-request timeout (ms)")
    transform: StrictStr | None = Field(
        None,
        description=(
            'Import path "module:function" called as function(data_or_event, settings, rule); '
            "it returns the body (text or bytes; anything else is sent as JSON)"
        ),
    )
    batch: BatchOptions | None = Field(
        None,
        description=(
            'A number (wait in ms) or {"wait": ms, "size": n}: send events as a JSON array, '
            "size at a time"
        ),
    )
    max_retries: int = Field(10, alias="maxRetries", ge=0, le=100)
    retry_backoff: int = Field(
        500, alias="retryBackoff", ge=1, description="First retry wait (ms); doubles, up to 60 s"
    )
    max_total_backoff_duration: int = Field(
        600_000,
        alias="maxTotalBackoffDuration",
        ge=0,
        description="Longest time a failing batch is retried with backoff (ms)",
    )
    max_rate_limit_duration: int = Field(
        1_800_000,
        alias="maxRateLimitDuration",
        ge=0,
        description="Longest time a batch waits out Retry-After answers in all (ms)",
    )
    max_queue_size: int = Field(
        10_000, alias="maxQueueSize", ge=1, description="Events queued in memory at most"
    )
    concurrency: int = Field(4, ge=1, le=64, description="Requests in flight at once")
    dead_letter_file: StrictStr | None = Field(
        DEFAULT_TEMPLATE,
        alias="deadLetterFile",
        min_length=1,
        description=(
            "JSON-lines file for events that could not be delivered; {destination} is the "
            "destination id, relative paths are under $FLOWS_DEAD_LETTER_DIR; null: only "
            "count and log them"
        ),
    )

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str | None) -> str | None:
        if url is None:
            return None
        parts = urlsplit(url)
        try:
            parts.port  # noqa: B018  # raises on a port that is not a number in range
        except ValueError:
            raise ValueError("has a port that is not a number from 0 to 65535") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(
                "must be an http:// or https:// URL, e.g. https://api.example.com/events"
            )
        return url

    @field_validator("method")
    @classmethod
    def _method(cls, method: str) -> str:
        if not _TOKEN.fullmatch(method):
            raise ValueError("must be an HTTP method such as POST or PUT")
        return method.upper()

    @field_validator("headers")
    @classmethod
    def _headers(cls, headers: dict[str, SecretStr] | None) -> dict[str, SecretStr] | None:
        for name, value in (headers or {}).items():
            if not _TOKEN.fullmatch(name):
                raise ValueError(f"{name!r} is not a valid header name")
            if _CONTROL.search(value.get_secret_value()):
                raise ValueError(f"the value of {name!r} holds a line break or control character")
        return headers

    @field_validator("transform")
    @classmethod
    def _importable(cls, reference: str | None) -> str | None:
        if reference is not None:
            try:
                import_callable(reference)
            except CallableImportError as error:
                raise ValueError(str(error)) from None
        return reference

    @field_validator("batch", mode="before")
    @classmethod
    def _batch_number(cls, batch: Any) -> Any:
        """A bare number is the wait in ms, as in walkerOS."""
        if type(batch) is int or type(batch) is float:
            return {"wait": batch}
        if batch is not None and not isinstance(batch, dict | BatchOptions):
            raise ValueError('must be a number (wait in ms) or {"wait": ms, "size": n}')
        return batch

    def transform_function(self) -> Callable[..., Any] | None:
        """The ``transform`` callable (imported once, at load)."""
        return None if self.transform is None else import_callable(self.transform)

    def secrets(self) -> list[str]:
        """Header values: kept out of dead-letter reasons and log lines."""
        return [value.get_secret_value() for value in (self.headers or {}).values()]
