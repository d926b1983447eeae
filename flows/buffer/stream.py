"""The buffer's Redis Stream: append a request's events in one round trip, trim what
every destination acknowledged.

Both are Lua scripts (EVALSHA, atomic on the server): the append checks the
bound and adds every event of the request, or none; the trim finds the
oldest entry some consumer group still needs (its oldest pending entry, else
its last delivered one) and drops everything older (XTRIM MINID).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import orjson
import redis

from collector.stores.redis import RedisStore
from flows.buffer.settings import BufferSettings

# KEYS[1]: the stream; ARGV[1]: the bound; ARGV[2..]: the entries' data.
# Returns the length after the append, or -1 - length when the entries do not fit.
_APPEND = """
local length = redis.call('XLEN', KEYS[1])
local count = #ARGV - 1
if length + count > tonumber(ARGV[1]) then
  return -1 - length
end
for i = 2, #ARGV do
  redis.call('XADD', KEYS[1], '*', 'e', ARGV[i])
end
return length + count
"""

# KEYS[1]: the stream. Trims entries older than what any group still needs; returns how many.
_TRIM = """
local function parse(id)
  local ms, seq = string.match(id, '(%d+)-(%d+)')
  return tonumber(ms), tonumber(seq)
end
local function older(a, b)
  local am, as = parse(a)
  local bm, bs = parse(b)
  return am < bm or (am == bm and as < bs)
end
local groups = redis.call('XINFO', 'GROUPS', KEYS[1])
local bound = nil
for _, group in ipairs(groups) do
  local fields = {}
  for i = 1, #group, 2 do fields[group[i]] = group[i + 1] end
  local needed = fields['last-delivered-id']
  if tonumber(fields['pending']) > 0 then
    needed = redis.call('XPENDING', KEYS[1], fields['name'])[2]
  end
  if bound == nil or older(needed, bound) then bound = needed end
end
if bound == nil or bound == '0-0' then return 0 end
return redis.call('XTRIM', KEYS[1], 'MINID', bound)
"""

BufferError = redis.RedisError
"""Redis could not be reached or answered an error: nothing was stored."""


class BufferFull(Exception):  # noqa: N818  # an outcome: answer 503
    """The stream holds ``maxLength`` entries not yet acknowledged by every destination."""

    def __init__(self, length: int) -> None:
        super().__init__(f"the buffer holds {length} events, its maxLength")
        self.length = length


@dataclass(slots=True)
class BufferStats:
    """This process's counters (``flows_buffer_*``); plain ints, read at scrape time."""

    appended: int = 0
    acked: int = 0
    claimed: int = 0
    trimmed: int = 0
    full: int = 0
    unreachable: int = 0


class EventBuffer:
    """One flow's stream ``{prefix}buffer:{flow}`` in a redis store."""

    def __init__(self, store: RedisStore, flow: str, settings: BufferSettings) -> None:
        self.store = store
        self.settings = settings
        self.key = f"{store.prefix}buffer:{flow}"
        self.stats = BufferStats()
        self.chains: dict[str, Any] = {}
        """Each source's ``next`` chain by source id: run when an entry is delivered."""
        self._scripts: dict[int, tuple[Any, Any]] = {}
        self._lock = threading.Lock()

    def client(self) -> redis.Redis:
        return self.store.client()

    def reading_client(self) -> redis.Redis:
        """A client of its own for blocking reads: its socket timeout outlasts ``block``."""
        pool = self.client().connection_pool
        options = dict(pool.connection_kwargs)
        options["socket_timeout"] = (
            self.settings.block + self.store.settings.socket_timeout
        ) / 1000
        return redis.Redis(
            connection_pool=redis.ConnectionPool(connection_class=pool.connection_class, **options)
        )

    def _script(self, index: int) -> Any:
        """The registered scripts of this process's client (made again after a fork)."""
        client = self.client()
        scripts = self._scripts.get(id(client))
        if scripts is None:
            with self._lock:
                scripts = (client.register_script(_APPEND), client.register_script(_TRIM))
                self._scripts = {id(client): scripts}
        return scripts[index]

    def append(self, entries: list[bytes]) -> int:
        """Add a request's encoded events, all or none, in one round trip; the new length.

        Raises BufferFull above ``maxLength`` and ``BufferError`` when Redis cannot answer.
        """
        answer = int(self._script(0)(keys=[self.key], args=[self.settings.max_length, *entries]))
        if answer < 0:
            self.stats.full += 1
            raise BufferFull(-1 - answer)
        self.stats.appended += len(entries)
        return answer

    def ensure_groups(self, groups: list[str]) -> None:
        """Create each destination's consumer group (from the stream's start) if missing."""
        client = self.client()
        for group in groups:
            try:
                client.xgroup_create(self.key, group, id="0", mkstream=True)
            except redis.ResponseError as error:
                if "BUSYGROUP" not in str(error):
                    raise

    def trim(self) -> int:
        """Drop the entries every group has acknowledged; how many went."""
        removed = int(self._script(1)(keys=[self.key]))
        self.stats.trimmed += removed
        return removed

    def gauges(self) -> tuple[int, int] | None:
        """(entries in the stream, entries pending in any group); None when Redis is down."""
        try:
            client = self.client()
            length = int(client.xlen(self.key))
            groups = client.xinfo_groups(self.key)
        except redis.RedisError:
            return None
        return length, sum(int(group["pending"]) for group in groups)


def encode(event: dict[str, Any], source: str, ingest: dict[str, Any] | None) -> bytes:
    """A stream entry's data: the prepared event, its source and the request's description."""
    return orjson.dumps({"e": event, "s": source, "i": ingest}, option=orjson.OPT_NON_STR_KEYS)


def decode(data: bytes) -> tuple[dict[str, Any], str, dict[str, Any] | None]:
    entry = orjson.loads(data)
    return entry["e"], entry["s"], entry["i"]
