"""The de-dup table shared by forked workers: SeenCache's answers, one memory across processes."""

from __future__ import annotations

import os

from hypothesis import given
from hypothesis import strategies as st

from destination_segment.shared_seen import SharedSeenTable

KEYS = st.tuples(st.sampled_from(["u", "a"]), st.text(max_size=8))
OPERATIONS = st.lists(
    st.tuples(st.sampled_from(["changed", "forget"]), KEYS, st.integers(-3, 3)), max_size=60
)


@given(OPERATIONS)
def test_a_changed_identity_is_never_suppressed(operations: list[tuple[str, object, int]]) -> None:
    """Against an unbounded memory: every call that should fire fires (evictions only add calls)."""
    table = SharedSeenTable(max_size=4)  # small: sets fill up and evict
    reference: dict[object, int] = {}
    for operation, key, fingerprint in operations:
        if operation == "forget":
            table.forget(key)
            reference.pop(key, None)
            continue
        should_fire = reference.get(key) != fingerprint
        reference[key] = fingerprint
        fired = table.changed(key, fingerprint)
        assert fired or not should_fire, (key, fingerprint)


@given(OPERATIONS)
def test_with_room_it_answers_as_an_exact_memory(operations: list[tuple[str, object, int]]) -> None:
    table = SharedSeenTable(max_size=1)
    reference: dict[object, int] = {}
    for operation, _key, fingerprint in operations:
        key = ("u", "only")  # one identity: it always has its way in the set
        if operation == "forget":
            table.forget(key)
            reference.pop(key, None)
            continue
        assert table.changed(key, fingerprint) == (reference.get(key) != fingerprint)
        reference[key] = fingerprint


def test_forked_workers_share_one_memory_and_it_is_bounded() -> None:
    table = SharedSeenTable(max_size=100_000)
    assert len(table) == 0
    pid = os.fork()
    if pid == 0:  # a worker: identifies u1
        os._exit(0 if table.changed(("u", "u1"), 7) else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert not table.changed(("u", "u1"), 7), "the other worker already identified u1"
    assert table.changed(("u", "u1"), 8), "new traits fire again"
    assert len(table) == 1
    for index in range(300_000):
        table.changed(("u", str(index)), 1)
    assert len(table) <= 2 * 131_072, "a fixed number of slots, whatever the traffic"
