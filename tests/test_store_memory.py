"""The memory store: TTL on a clock it is given, the entry and size bounds, thread safety."""

from __future__ import annotations

import threading
from importlib.metadata import entry_points
from typing import Any

import pytest
from pydantic import ValidationError

from collector.stores.memory import MemorySettings, MemoryStore


class Clock:
    """A clock the test moves by hand: expiry without sleeping."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make(clock: Clock | None = None, **settings: Any) -> MemoryStore:
    return MemoryStore(MemorySettings.model_validate(settings), clock=clock or Clock())


def test_get_set_delete_keep_values_as_given() -> None:
    store = make()
    value = {"name": "page view", "data": [1, 2]}
    store.set("k", value)
    assert store.get("k") is value
    assert store.get("missing") is None
    store.delete("k")
    store.delete("never there")
    assert store.get("k") is None
    assert store.counters()["deletes"] == 1


def test_an_entry_expires_after_its_ttl_on_the_given_clock() -> None:
    clock = Clock()
    store = make(clock)
    store.set("short", "a", ttl=5)
    store.set("forever", "b")
    clock.now += 4.999
    assert store.get("short") == "a"
    clock.now += 0.001
    assert store.get("short") is None
    clock.now += 10**9
    assert store.get("forever") == "b"
    assert store.counters()["evictions_ttl"] == 1
    assert len(store) == 1


def test_setting_a_key_again_replaces_value_and_ttl() -> None:
    clock = Clock()
    store = make(clock)
    store.set("k", 1, ttl=1)
    store.set("k", 2, ttl=100)
    clock.now += 50
    assert store.get("k") == 2
    store.set("k", 3, ttl=None)
    clock.now += 10**6
    assert store.get("k") == 3


def test_a_zero_ttl_is_expired_at_once() -> None:
    store = make()
    store.set("k", 1, ttl=0)
    assert store.get("k") is None


def test_entries_never_exceed_max_entries_and_the_least_recent_go_first() -> None:
    store = make(maxEntries=10, lowWaterMark=0.5)
    for i in range(10):
        store.set(f"k{i}", i)
    assert store.get("k0") == 0  # read: k0 is now the most recently used
    store.set("new", "x")
    assert len(store) == 6  # evicted down to 5 in one pass, then the new key
    assert store.get("k0") == 0
    assert store.get("new") == "x"
    assert [store.get(f"k{i}") for i in range(1, 10)] == [None] * 5 + [6, 7, 8, 9]
    assert store.counters()["evictions_entries"] == 5
    for i in range(1000):
        store.set(f"more{i}", i)
        assert len(store) <= 10


def test_expired_entries_are_evicted_before_live_ones() -> None:
    clock = Clock()
    store = make(clock, maxEntries=4)
    store.set("live-old", 1)
    store.set("dies-1", 2, ttl=1)
    store.set("dies-2", 3, ttl=1)
    store.set("live", 4)
    clock.now += 2
    store.set("new", 5)
    assert [store.get(k) for k in ("live-old", "live", "new")] == [1, 4, 5]
    counters = store.counters()
    assert counters["evictions_ttl"] == 2
    assert counters["evictions_entries"] == 0


def test_a_store_of_one_keeps_the_newest() -> None:
    store = make(maxEntries=1)
    store.set("a", 1)
    store.set("b", 2)
    assert (store.get("a"), store.get("b"), len(store)) == (None, 2, 1)


def test_max_size_bounds_the_estimated_bytes() -> None:
    store = make(maxSize=30)
    store.set("a", "x" * 10)  # 11 bytes
    store.set("b", "y" * 10)  # 22
    store.set("c", "z" * 10)  # 33 > 30: "a" goes
    assert (store.get("a"), store.get("b"), store.get("c")) == (None, "y" * 10, "z" * 10)
    store.set("d", {"n": 1})  # key 1 + '{"n":1}' 7 = 8: 30 with b and c: fits
    assert store.get("b") == "y" * 10
    store.set("huge", "h" * 100)
    assert store.get("huge") is None
    assert store.get("c") == "z" * 10  # a value over the budget flushes nothing
    assert store.counters()["too_large"] == 1
    assert store.counters()["evictions_size"] == 1


def test_settings_take_walkeros_names_and_refuse_nonsense() -> None:
    settings = MemorySettings.model_validate({"maxEntries": 5, "maxSize": 100})
    assert (settings.max_entries, settings.max_size, settings.low_water_mark) == (5, 100, 0.8)
    assert MemorySettings.model_validate({}).max_entries == 10000
    for bad in ({"maxEntries": 0}, {"lowWaterMark": 0}, {"maxEntrys": 3}):
        with pytest.raises(ValidationError):
            MemorySettings.model_validate(bad)


def test_many_threads_share_one_store_without_losing_counts_or_the_bound() -> None:
    store = make(maxEntries=50)
    threads, rounds = 8, 2000
    errors: list[BaseException] = []
    start = threading.Barrier(threads)

    def work(worker: int) -> None:
        try:
            start.wait(timeout=10)
            for i in range(rounds):
                key = f"k{(worker * 7 + i) % 120}"
                store.set(key, (worker, i), ttl=None if i % 3 else 60)
                found = store.get(key)
                assert found is None or isinstance(found, tuple)
                if i % 5 == 0:
                    store.delete(key)
                assert len(store) <= 50
        except BaseException as error:
            errors.append(error)

    pool = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in pool)
    assert errors == []
    counters = store.counters()
    assert counters["writes"] == threads * rounds
    assert counters["hits"] + counters["misses"] == threads * rounds
    assert len(store) <= 50


def test_shutdown_forgets_everything() -> None:
    store = make()
    store.set("k", 1)
    store.shutdown(1.0)
    assert store.get("k") is None


def test_the_store_is_registered_as_memory() -> None:
    (entry,) = [e for e in entry_points(group="flows.stores") if e.name == "memory"]
    assert entry.load() is MemoryStore
    assert MemoryStore.type == "memory"
    assert MemoryStore.kind == "store"
    assert MemoryStore(step_id="shared").id == "shared"
