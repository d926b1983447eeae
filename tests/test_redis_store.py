"""The ``redis`` store against a real redis-server: get/set/delete/ttl, and the compare-and-set
that shared de-dup relies on, with racing clients."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from pydantic import ValidationError

from collector.registry import STORE_GROUP, load_package
from collector.stores.redis import RedisSettings, RedisStore
from tests.redis_helpers import RedisServer, redis_server


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RedisServer]:
    with redis_server(tmp_path) as running:
        yield running


def _store(server: RedisServer, **settings: object) -> RedisStore:
    return RedisStore(RedisSettings.model_validate({"url": server.url, **settings}))


def test_the_package_name_redis_is_the_store() -> None:
    assert load_package("redis", STORE_GROUP) is RedisStore


def test_get_set_delete_with_json_values_under_the_prefix(server: RedisServer) -> None:
    store = _store(server, prefix="t1:")
    assert store.get("k") is None
    store.set("k", {"a": [1, 2], "b": None})
    assert store.get("k") == {"a": [1, 2], "b": None}
    with server.client() as raw:
        assert raw.get("t1:k") == '{"a":[1,2],"b":null}'
    store.delete("k")
    store.delete("never-set")
    assert store.get("k") is None
    store.shutdown(1)


def test_a_ttl_expires_the_key(server: RedisServer) -> None:
    store = _store(server)
    store.set("short", "v", ttl=0.05)
    store.set("long", "v", ttl=60)
    with server.client() as raw:
        assert 0 < raw.pttl("flows:short") <= 50
        assert 59_000 < raw.pttl("flows:long") <= 60_000
    deadline = time.monotonic() + 5
    while store.get("short") is not None:
        assert time.monotonic() < deadline, "the key did not expire"
        time.sleep(0.01)
    assert store.get("long") == "v"


def test_the_password_and_db_settings_reach_the_server(server: RedisServer) -> None:
    with server.client() as raw:
        raw.config_set("requirepass", "s3cret")
    url = server.url.removesuffix("/0")
    store = RedisStore(RedisSettings.model_validate({"url": url, "password": "s3cret", "db": 3}))
    store.set("k", 1)
    with redis.Redis(port=server.port, password="s3cret", db=3, decode_responses=True) as raw:
        assert raw.get("flows:k") == "1"
        raw.config_set("requirepass", "")


def test_settings_refuse_a_password_or_db_given_twice_and_other_schemes() -> None:
    for bad in (
        {"url": "redis://:a@h:1/0", "password": "b"},
        {"url": "redis://h:1/2", "db": 3},
        {"url": "http://h:1"},
    ):
        with pytest.raises(ValidationError):
            RedisSettings.model_validate(bad)
    assert RedisSettings.model_validate({"url": "rediss://h:6380", "db": 1}).db == 1


def test_changed_many_sets_what_differs_in_order_in_one_script_call(server: RedisServer) -> None:
    store = _store(server)
    store.changed_many([("warm", "up")])  # loads the script: EVALSHA, NOSCRIPT, SCRIPT LOAD
    server.reset_stats()
    first = store.changed_many([("a", "1"), ("b", "1"), ("a", "1")], ttl=100)
    assert first == [True, True, False]  # the same key twice in one call: the second is known
    assert store.changed_many([("a", "1"), ("b", "2")], ttl=100) == [False, True]
    commands = server.commands()
    assert commands.get("evalsha") == 2, commands  # the script's GET/SET count apart
    assert "eval" not in commands, commands
    assert "script|load" not in commands, commands
    with server.client() as raw:
        assert raw.get("flows:b") == "2"
        assert 99 <= raw.ttl("flows:b") <= 100
    assert store.changed_many([]) == []


def test_racing_clients_fire_once_for_one_value_and_never_suppress_a_change(
    server: RedisServer,
) -> None:
    """Eight threads, each its own client (as replicas are), on the same keys at once."""
    stores = [_store(server) for _ in range(8)]
    for store in stores:
        store.init()
    start = threading.Barrier(len(stores))
    same: list[bool] = []
    own: list[bool] = []
    lock = threading.Lock()

    def race(index: int) -> None:
        start.wait(10)
        for round_ in range(20):
            answer = stores[index].changed_many([(f"same-{round_}", "fp")], ttl=60)
            mine = stores[index].changed_many([(f"own-{round_}", f"fp-{index}")], ttl=60)
            with lock:
                same.extend(answer)
                own.extend(mine)

    threads = [threading.Thread(target=race, args=(i,)) for i in range(len(stores))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not any(thread.is_alive() for thread in threads)
    assert len(same) == 8 * 20
    assert sum(same) == 20, "one value racing on a key fired more than once (at most 2 allowed)"
    # Each thread's value differs from whatever another thread left there: always a change.
    assert own == [True] * (8 * 20), "a changed value was suppressed"


def test_an_unreachable_server_raises_a_store_error_without_the_password(tmp_path: Path) -> None:
    from collector.stores.redis import StoreError
    from tests.cli_helpers import free_port

    port = free_port()
    store = RedisStore(
        RedisSettings.model_validate(
            {"url": f"redis://:pw-hidden@127.0.0.1:{port}/0", "connectTimeout": 100}
        )
    )
    with pytest.raises(StoreError) as raised:
        store.changed_many([("k", "v")])
    assert "pw-hidden" not in str(raised.value)
    assert store.where == f"127.0.0.1:{port}"
