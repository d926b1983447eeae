"""``config.settings.buffer`` of a server flow, checked once at load."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from collector.errors import ConfigError
from collector.store import StoreId


class BufferSettings(BaseModel):
    """Where the buffer lives (a ``redis`` store) and its bounds."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    store: StoreId = Field(description="Id of a redis store of the flow (or $store.ID)")
    max_length: int = Field(
        100_000,
        alias="maxLength",
        ge=1,
        description="Entries not yet acknowledged by every destination; above: 503",
    )
    claim_idle: int = Field(
        10_000,
        alias="claimIdle",
        ge=100,
        description="Pending this long (ms), an entry is claimed by a live reader",
    )
    batch: int = Field(500, ge=1, le=10_000, description="Entries a reader takes at once")
    block: int = Field(
        1000, ge=10, le=60_000, description="Longest wait of a reader for new entries (ms)"
    )


def buffer_settings(settings: dict[str, Any], where: str) -> BufferSettings | None:
    """The flow's buffer (None: none); errors name ``where.buffer...`` and the reason."""
    raw = settings.get("buffer")
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}.buffer", 'must be an object such as {"store": "shared"}')
    try:
        return BufferSettings.model_validate(raw)
    except ValidationError as error:
        first = error.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"{where}.buffer.{loc}", first["msg"]) from None
