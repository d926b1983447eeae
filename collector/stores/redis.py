"""The ``redis`` store: state that several processes or replicas of a flow share.

Declared like any store (``"stores": {"shared": {"package": "redis",
"config": {"settings": {"url": "$env.REDIS_URL"}}}}``). Values are JSON,
keys get the ``prefix``. Besides walkerOS's ``get``/``set``/``delete`` it has
``changed_many``, the compare-and-set the Segment de-dup needs: many keys in
one round trip (a Lua script run with EVALSHA), atomic on the server, so two
replicas racing on one new identity both see one answer.

The client is made on first use in each process (``init`` or the first call):
``flows run --workers`` forks after the flow is built, and a redis-py pool
must not cross a fork. A single Redis (or a primary behind Sentinel) is
assumed: the script touches many keys at once, which Redis Cluster refuses
unless they share a slot.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import orjson
import redis
from pydantic import BaseModel, ConfigDict, Field, SecretStr, StrictStr, model_validator

from collector.store import Store

# KEYS: the keys; ARGV[1]: ttl in seconds (0: none), ARGV[2..]: the fingerprints.
# Each key: unchanged -> 0; else set (with the ttl) -> 1. In order, so a key twice in
# one call answers 1 then 0.
_CHANGED_MANY = """
local ttl = tonumber(ARGV[1])
local out = {}
for i, key in ipairs(KEYS) do
  local value = ARGV[i + 1]
  if redis.call('GET', key) == value then
    out[i] = 0
  else
    if ttl > 0 then
      redis.call('SET', key, value, 'EX', ttl)
    else
      redis.call('SET', key, value)
    end
    out[i] = 1
  end
end
return out
"""

StoreError = redis.RedisError
"""What a call raises when Redis cannot be reached or answers an error."""


class RedisSettings(BaseModel):
    """Where Redis is and how to talk to it."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    url: StrictStr = Field(
        "redis://127.0.0.1:6379/0",
        description="redis://, rediss:// (TLS) or unix://; may carry the password and db",
    )
    password: SecretStr | None = Field(None, description="When the URL carries none (secret)")
    db: int | None = Field(None, ge=0, description="Database number, when the URL gives none")
    prefix: StrictStr = Field("flows:", description="Put before every key")
    socket_timeout: int = Field(
        500, alias="socketTimeout", ge=1, description="Longest wait for an answer (ms)"
    )
    connect_timeout: int = Field(
        500, alias="connectTimeout", ge=1, description="Longest wait to connect (ms)"
    )
    max_connections: int = Field(
        16, alias="maxConnections", ge=1, description="Connections per process (the pool)"
    )
    health_check_interval: int = Field(
        30,
        alias="healthCheckInterval",
        ge=0,
        description="PING a connection idle this long before using it (s); 0: never",
    )

    @model_validator(mode="after")
    def _one_of_each(self) -> RedisSettings:
        try:
            parts = urlsplit(self.url)
        except ValueError as error:
            raise ValueError(f"url: {error}") from None
        if parts.scheme not in ("redis", "rediss", "unix"):
            raise ValueError("url must start with redis://, rediss:// (TLS) or unix://")
        if self.password is not None and parts.password:
            raise ValueError("the password is in the url and in password: give it once")
        if self.db is not None and parts.path.strip("/") and parts.scheme != "unix":
            raise ValueError("the db is in the url and in db: give it once")
        return self


class RedisStore(Store[RedisSettings]):
    """JSON values under prefixed keys in Redis; one client (a pool) per process."""

    type = "redis"
    Settings = RedisSettings

    def __init__(self, settings: RedisSettings | None = None, *, step_id: str | None = None):
        super().__init__(settings or RedisSettings.model_validate({}), step_id=step_id)
        self.prefix = self.settings.prefix
        self._client: redis.Redis | None = None
        self._script: Any = None
        self._pid = 0
        self._lock = threading.Lock()

    @property
    def where(self) -> str:
        """Host and port (or socket path) for messages: never the password."""
        parts = urlsplit(self.settings.url)
        return parts.path if parts.scheme == "unix" else f"{parts.hostname}:{parts.port or 6379}"

    def client(self) -> redis.Redis:
        """This process's client, made on first use (a fork gets its own)."""
        client = self._client
        if client is not None and self._pid == os.getpid():
            return client
        with self._lock:
            if self._client is None or self._pid != os.getpid():
                settings = self.settings
                options: dict[str, Any] = {
                    "socket_timeout": settings.socket_timeout / 1000,
                    "socket_connect_timeout": settings.connect_timeout / 1000,
                    "max_connections": settings.max_connections,
                    "health_check_interval": settings.health_check_interval,
                }
                if settings.password is not None:
                    options["password"] = settings.password.get_secret_value()
                if settings.db is not None:
                    options["db"] = settings.db
                made = redis.Redis.from_url(settings.url, **options)
                self._script = made.register_script(_CHANGED_MANY)
                self._client = made
                self._pid = os.getpid()
            return self._client

    def init(self) -> None:
        self.client()

    def get(self, key: str) -> Any | None:
        raw = self.client().get(self.prefix + key)
        return None if raw is None else orjson.loads(raw)

    def set(self, key: str, value: Any, ttl: float | None = None) -> None:
        data = orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)
        if ttl is None:
            self.client().set(self.prefix + key, data)
        else:  # Redis wants whole milliseconds, at least one
            self.client().set(self.prefix + key, data, px=max(1, round(ttl * 1000)))

    def delete(self, key: str) -> None:
        self.client().delete(self.prefix + key)

    def changed_many(
        self, items: Sequence[tuple[str, str]], ttl: float | None = None
    ) -> list[bool]:
        """For each (key, fingerprint), in order: whether it differs from what is kept.

        Those that differ are kept (with ``ttl`` seconds), in one atomic
        round trip. Raises ``StoreError`` when Redis cannot answer.
        """
        if not items:
            return []
        self.client()
        prefix = self.prefix
        keys = [prefix + key for key, _ in items]
        seconds = 0 if ttl is None else max(1, round(ttl))
        answer = self._script(keys=keys, args=[seconds, *(value for _, value in items)])
        return [bool(flag) for flag in answer]

    def shutdown(self, timeout: float) -> None:
        client, self._client = self._client, None
        if client is not None and self._pid == os.getpid():
            client.close()
