"""``flows run --workers 2`` supervised: a dead worker is replaced, a dead parent takes its
workers with it, a crash loop gives up, and a stop never outlasts the shutdown timeout.

Each test runs the real command as a subprocess on 127.0.0.1 against the in-process
receiver, kills real processes with real signals, and tells which worker answered a
request from /proc (see tests/worker_helpers.py).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from flows.restarts import RestartPolicy, describe_exit
from tests.cli_helpers import ROOT
from tests.worker_helpers import alive, wait_until

WATCHED_CHILD = """
import os, signal, sys, time
from flows.parent_death import watch_parent

parent = os.getpid()
pid = os.fork()
if pid == 0:
    def stop(_sig, _frame):
        with open(sys.argv[1], "w") as out:
            out.write("stopped")
        os._exit(0)
    signal.signal(signal.SIGTERM, stop)
    watch_parent(parent, interval=0.05)
    time.sleep(20)
    os._exit(1)
print(pid, flush=True)
time.sleep(20)
"""


def test_the_fallback_watch_stops_a_worker_whose_parent_died(tmp_path: Path) -> None:
    """Where there is no prctl, a thread sees the parent gone and sends SIGTERM to its process."""
    flag = tmp_path / "stopped"
    parent = subprocess.Popen(
        [sys.executable, "-c", WATCHED_CHILD, str(flag)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    try:
        assert alive(child)
        parent.kill()
        parent.wait(5)
        wait_until(lambda: flag.exists() and flag.read_text() == "stopped", 5, "SIGTERM")
        wait_until(lambda: not alive(child), 5, "the child exited")
    finally:
        if alive(child):
            os.kill(child, signal.SIGKILL)


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
