"""Settings of the Segment destination: walkerOS's camelCase names, checked at load."""

from __future__ import annotations

from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    StrictBool,
    StrictStr,
    field_validator,
)

from collector.dead_letter import DEFAULT_TEMPLATE
from collector.mapping_config import ValueConfig
from collector.store import StoreId
from destination_segment.sdk import SDK_BATCH_PATH

SEGMENT_HOST = "https://api.segment.io"
SEGMENT_EU_HOST = "https://events.eu1.segmentapis.com"
DEDUP_TTL = 30 * 24 * 3600
"""How long a shared de-dup store remembers an identity, in seconds: 30 days."""
DEFAULT_ANONYMOUS_ID: list[ValueConfig] = ["user.session", "user.device", "user.hash"]
"""walkerOS's ids of a visitor without a userId, most specific first: a session id, a device
(cookie) id, then the cookieless hash a fingerprint transformer writes."""


class SegmentSettings(BaseModel):
    """Flow-file settings (``config.settings``) of the ``segment`` destination."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    write_key: SecretStr = Field(alias="writeKey", description="Segment source write key (secret)")
    user_id: ValueConfig | None = Field(
        "user.id", alias="userId", description="Mapping for the Segment userId; null disables"
    )
    anonymous_id: ValueConfig | None = Field(
        DEFAULT_ANONYMOUS_ID,  # pydantic copies a list default for each model
        alias="anonymousId",
        description=(
            "Mapping for the anonymousId; null disables. The default takes the first of "
            "user.session, user.device and user.hash (a fingerprint transformer's) that is set"
        ),
    )
    host: StrictStr = Field(
        SEGMENT_HOST, description=f"Segment API host; {SEGMENT_EU_HOST} for the EU (no /v1)"
    )
    path: StrictStr = Field(SDK_BATCH_PATH, description="Batch path; must end with /v1/batch")
    flush_at: int = Field(100, alias="flushAt", ge=1, le=2500, description="Messages per batch")
    flush_interval: int = Field(
        500, alias="flushInterval", ge=1, description="Longest wait to fill a batch (ms)"
    )
    max_retries: int = Field(10, alias="maxRetries", ge=0, le=100)
    max_total_backoff_duration: int = Field(
        43_200_000,
        alias="maxTotalBackoffDuration",
        ge=0,
        description="Longest time a batch is retried with backoff before it is given up (ms)",
    )
    max_rate_limit_duration: int = Field(
        1_800_000,
        alias="maxRateLimitDuration",
        ge=0,
        description="Longest time a batch waits out 429 Retry-After answers before it is given up (ms)",
    )
    http_request_timeout: int = Field(
        10_000, alias="httpRequestTimeout", ge=1, description="Per-request timeout (ms)"
    )
    disable: StrictBool = Field(False, description="Make every call a no-op")
    identify: ValueConfig | None = Field(None, description="Destination-level identify mapping")
    group: ValueConfig | None = Field(None, description="Destination-level group mapping")
    consent: dict[str, StrictStr] | None = Field(
        None, description="walkerOS consent key -> Segment consent category"
    )
    integrations: dict[str, Any] | None = Field(
        None, description='Segment integrations object, e.g. {"All": true, "Mixpanel": false}'
    )
    max_queue_size: int = Field(
        10_000, alias="maxQueueSize", ge=1, description="SDK queue bound; overflow is counted"
    )
    consumer_threads: int = Field(
        1, alias="consumerThreads", ge=1, le=16, description="Upload threads sharing the queue"
    )
    gzip: StrictBool = Field(False, description="Gzip request bodies")
    dedup_cache_size: int = Field(
        100_000, alias="dedupCacheSize", ge=1, description="Identities remembered for de-dup"
    )
    dedup_store: StoreId | None = Field(
        None,
        alias="dedupStore",
        min_length=1,
        description=(
            "Id of a flow store (e.g. a redis store) holding the identify/group memory, so "
            "replicas and workers share it; none: this process's own memory (dedupCacheSize)"
        ),
    )
    dedup_ttl: int = Field(
        DEDUP_TTL,
        alias="dedupTtl",
        ge=1,
        description="With dedupStore: seconds an identity is remembered after it was sent (30 days)",
    )
    dead_letter_file: StrictStr | None = Field(
        DEFAULT_TEMPLATE,
        alias="deadLetterFile",
        min_length=1,
        description=(
            "JSON-lines file for messages Segment did not accept (4xx, retries exhausted, "
            "shutdown); {destination} is the destination id, a relative path is under "
            "$FLOWS_DEAD_LETTER_DIR (default: the working directory); send them again with "
            "`flows replay`; null: only count and log them"
        ),
    )

    @field_validator("host")
    @classmethod
    def _plain_host(cls, host: str) -> str:
        host = host.rstrip("/")
        if not host.startswith(("http://", "https://")):
            raise ValueError(f"must start with http:// or https://, e.g. {SEGMENT_HOST}")
        if host.endswith(("/v1", SDK_BATCH_PATH)):
            raise ValueError(
                "must be the host only, without /v1 (the SDK adds /v1/batch), "
                f"e.g. {SEGMENT_EU_HOST}"
            )
        return host

    @field_validator("path")
    @classmethod
    def _batch_path(cls, path: str) -> str:
        if not path.endswith(SDK_BATCH_PATH):
            raise ValueError(
                "must end with /v1/batch: segment-analytics-python always posts to "
                "{host}/v1/batch; a prefix such as /proxy/v1/batch is supported"
            )
        return path

    @property
    def sdk_host(self) -> str:
        """The host the SDK should get, with any path prefix before /v1/batch."""
        return self.host + self.path[: -len(SDK_BATCH_PATH)]
