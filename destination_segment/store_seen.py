"""identify/group de-dup kept in a flow store (``dedupStore``), shared by replicas and workers.

The calls of all events of one request are decided together: the http
source opens a request (``Collector.request``), the destination holds each
event's staged messages, and at the end asks the store once for every
identity of the request (``changed_many``: one EVALSHA on Redis, a
compare-and-set, so two replicas racing on a new identity fire at most
twice and a change is never suppressed). A store that cannot answer makes
every call fire (Segment takes identify and group again without harm),
counted in ``errors`` and logged at most once per ``WARN_EVERY`` seconds.

Fingerprints here are a stable digest (blake2b of the sorted JSON), not
Python's ``hash``, which is salted per process and so differs per replica.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Hashable, Sequence
from typing import Any

import orjson

from collector.store import Store

WARN_EVERY = 30.0
"""Seconds between two warnings that the de-dup store is unreachable."""


def stable_fingerprint(traits: Any) -> str:
    """The same text for the same traits in any process and any key order."""
    if traits is None:
        return "-"
    data = orjson.dumps(traits, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
    return hashlib.blake2b(data, digest_size=12).hexdigest()


class DeferredSeen:
    """The ``SeenMemory`` the call plan asks while building: every call is kept for now.

    The real answer comes from ``StoreSeen.decide`` once the request's events
    are all built; ``forget`` does nothing, as nothing was remembered yet.
    """

    __slots__ = ()

    def changed(self, key: Hashable, fingerprint: Any) -> bool:
        return True

    def forget(self, key: Hashable) -> None:
        return None

    def __len__(self) -> int:
        return 0


class StoreSeen:
    """Decides identify/group calls against a store, many in one round trip."""

    def __init__(
        self, store: Store[Any], namespace: str, ttl: float, logger: logging.Logger
    ) -> None:
        self.store = store
        self.namespace = namespace
        self.ttl = ttl
        self.logger = logger
        self.errors = 0
        """Round trips the store could not answer (their calls all fired)."""
        self._lock = threading.Lock()
        self._warned_at = -WARN_EVERY
        self._unwarned = 0
        batch = getattr(store, "changed_many", None)
        self._changed_many = batch if callable(batch) else self._one_by_one

    def key(self, kind: str, dedup_key: Hashable) -> str:
        """``dedup:DESTINATION:identify:["u","jane"]``: unambiguous whatever the ids hold."""
        return f"{self.namespace}{kind}:{orjson.dumps(dedup_key).decode()}"

    def decide(self, items: Sequence[tuple[str, str]]) -> list[bool]:
        """Whether each (key, fingerprint) changed (and is now kept); all True on a store error."""
        if not items:
            return []
        try:
            return self._changed_many(items, self.ttl)
        except Exception as error:
            self._failed(error)
            return [True] * len(items)

    def forget(self, key: str) -> None:
        """Drop a key whose call could not be queued, so its next call fires again."""
        try:
            self.store.delete(key)
        except Exception as error:
            self._failed(error)

    def _one_by_one(self, items: Sequence[tuple[str, str]], ttl: float) -> list[bool]:
        """For a store without ``changed_many`` (memory): the same answers, not atomic."""
        answers = []
        for key, value in items:
            if self.store.get(key) == value:
                answers.append(False)
            else:
                self.store.set(key, value, ttl)
                answers.append(True)
        return answers

    def _failed(self, error: Exception) -> None:
        with self._lock:
            self.errors += 1
            self._unwarned += 1
            now = time.monotonic()
            if now - self._warned_at < WARN_EVERY:
                return
            self._warned_at = now
            count, self._unwarned = self._unwarned, 0
        where = getattr(self.store, "where", "")
        self.logger.warning(
            "de-dup store %r%s could not answer (%s); identify/group sent without de-dup "
            "(%d time(s) since the last warning)",
            self.store.id,
            f" at {where}" if where else "",
            type(error).__name__,
            count,
        )
