"""``flows run --workers 2`` supervised: a dead worker is replaced, a dead parent takes its
workers with it, a crash loop gives up, and a stop never outlasts the shutdown timeout.

Each test runs the real command as a subprocess on 127.0.0.1 against the in-process
receiver, kills real processes with real signals, and tells which worker answered a
request from /proc (see tests/worker_helpers.py).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from destination_segment.receiver import SegmentReceiver
from flows.server.restarts import RestartPolicy, describe_exit
from tests.cli_helpers import ROOT, flows_running, free_port, run_flows
from tests.worker_helpers import LogLines, alive, children, serving_pid, wait_until

SLACK = 2.0  # flows/server/supervisor.py STOP_SLACK


def write_flow(tmp_path: Path, segment: dict[str, Any], **destinations: Any) -> Path:
    """A flow with the http source and a Segment destination posting to $SEGMENT_HOST."""
    settings = {"writeKey": "wk-supervised", "host": "$env.SEGMENT_HOST", **segment}
    flow = {
        "version": 4,
        "flows": {
            "default": {
                "sources": {"http": {"package": "http"}},
                "destinations": {
                    "segment": {"package": "segment", "config": {"settings": settings}},
                    **destinations,
                },
            }
        },
    }
    path = tmp_path / "flow.json"
    path.write_text(json.dumps(flow))
    return path


def two_workers(parent: int) -> set[int]:
    def both() -> set[int] | None:
        found = children(parent)
        return found if len(found) == 2 else None

    return wait_until(both, 10, "two worker processes")


def accepted_total(url: str) -> float:
    """``flows_events_accepted_total`` of all workers, as one of them answers it."""
    text = httpx.get(url + "/metrics").text
    line = next(line for line in text.splitlines() if line.startswith("flows_events_accepted_"))
    return float(line.split()[1])


def post_one(url: str, body: dict[str, Any], parent: int) -> int | None:
    """POST on a new connection (the kernel spreads them over the workers); which one answered."""
    with httpx.Client() as client:
        response = client.post(url + "/collect", json=body)
        assert response.status_code == 200, response.text
        return serving_pid(response, children(parent))


def dead_lettered(path: Path) -> set[str]:
    """The messageIds in a dead-letter file (none if it was never written)."""
    if not path.exists():
        return set()
    return {json.loads(line)["message"]["messageId"] for line in path.read_text().splitlines()}


def event(event_id: str) -> dict[str, Any]:
    return {"name": "product view", "id": event_id, "user": {"id": f"u-{event_id}"}}


@dataclass(frozen=True)
class Answered:
    ids: list[str]
    pid: int | None  # the worker that held the connection; None when it could not be told
    at: float


class Load:
    """Bounded traffic: threads posting 5-event batches, each connection used for 10 requests."""

    MAX_SECONDS = 30.0
    MAX_REQUESTS = 20_000

    def __init__(self, url: str, parent: int, senders: int = 2) -> None:
        self.url = url
        self.parent = parent
        self.senders = senders
        self.answered: list[Answered] = []
        self.errors: list[str] = []
        self.statuses: list[int] = []
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._send, args=(n,), daemon=True) for n in range(senders)
        ]

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(15)

    def _send(self, sender: int) -> None:
        deadline = time.monotonic() + self.MAX_SECONDS
        sent = 0
        while not self._stop.is_set() and sent < self.MAX_REQUESTS and time.monotonic() < deadline:
            with httpx.Client(timeout=5) as client:
                pid: int | None = None
                for _ in range(10):
                    ids = [f"s{sender}-{sent}-{n}" for n in range(5)]
                    sent += 1
                    try:
                        response = client.post(self.url, json={"batch": [event(i) for i in ids]})
                    except httpx.TransportError as error:
                        self.errors.append(repr(error))
                        break  # a new connection, to a worker that is alive
                    if response.status_code != 200:
                        self.statuses.append(response.status_code)
                        continue
                    if pid is None:
                        pid = serving_pid(response, children(self.parent))
                    self.answered.append(Answered(ids, pid, time.monotonic()))

    def by(self, pid: int, after: float = 0.0, before: float = float("inf")) -> int:
        return sum(1 for a in list(self.answered) if a.pid == pid and after < a.at < before)

    def last_pid(self) -> int | None:
        return next((a.pid for a in reversed(list(self.answered)) if a.pid), None)


def test_a_killed_worker_is_replaced_while_the_other_serves(
    segment_receiver: SegmentReceiver, tmp_path: Path
) -> None:
    flow = write_flow(tmp_path, {"flushInterval": 100})
    env = {"SEGMENT_HOST": segment_receiver.url}
    with flows_running(flow, "--workers", "2", "--shutdown-timeout", "5", env=env) as (
        process,
        url,
        banner,
    ):
        logs = LogLines(process)
        assert "(2 workers)" in banner, banner + logs.text()
        first = two_workers(process.pid)
        with Load(url + "/collect", process.pid) as load:
            victim = wait_until(load.last_pid, 10, "a request answered by a known worker")
            survivor = (first - {victim}).pop()
            os.kill(victim, signal.SIGKILL)
            killed_at = time.monotonic()
            died = logs.wait_for(
                rf"worker (\d) \(pid {victim}\) was killed by SIGKILL; restarting it in 0\.5 s$", 5
            )
            listening = logs.wait_for(
                rf"worker {died[1]} \(pid (\d+)\) is listening, ([\d.]+) s after pid {victim} died",
                10,
            )
            seen_listening_at = time.monotonic()
            replacement = int(listening[1])
            assert children(process.pid) == {survivor, replacement}
            first_by_replacement = wait_until(
                lambda: next((a.at for a in list(load.answered) if a.pid == replacement), None),
                15,
                "a request answered by the replacement",
            )
            during_restart = load.by(survivor, after=killed_at, before=seen_listening_at)
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=5 + SLACK + 3)
        logs.close()
    assert code == 0, logs.text()
    assert during_restart > 0, "the surviving worker answered nothing while the other restarted"
    assert not load.statuses, f"answers other than 200: {sorted(set(load.statuses))}"
    # Only a request in flight on the killed worker's connection can fail: one per sender.
    assert len(load.errors) <= load.senders, load.errors
    unknown = [a for a in load.answered if a.pid is None]
    assert len(unknown) <= load.senders, "could not tell which worker answered too often"
    must_arrive = {i for a in load.answered if a.pid not in (victim, None) for i in a.ids}
    missing = {f"{i}-track" for i in must_arrive} - segment_receiver.message_ids()
    assert not missing, f"{len(missing)} of {len(must_arrive)} events answered 200 were lost"
    print(
        f"\nSIGKILL -> replacement listening: {float(listening[2]):.2f} s (parent's count), "
        f"{seen_listening_at - killed_at:.2f} s (seen in the log); first answer by it after "
        f"{first_by_replacement - killed_at:.2f} s; {during_restart} requests answered by the "
        f"other worker meanwhile; {len(load.errors)} failed, {len(load.answered)} answered 200"
    )


def test_a_replacement_keeps_the_metrics_totals_and_the_identify_memory(
    segment_receiver: SegmentReceiver, tmp_path: Path
) -> None:
    """It carries on from the dead worker's counters (a drop reads as a counter reset), and
    it uses the de-dup table made before the first fork (a new one would identify again)."""
    identify = {"map": {"userId": "user.id", "traits": {"map": {"plan": "data.plan"}}}}
    flow = write_flow(tmp_path, {"flushInterval": 50, "identify": identify})
    env = {"SEGMENT_HOST": segment_receiver.url}
    with flows_running(flow, "--workers", "2", env=env) as (process, url, _):
        logs = LogLines(process)
        workers = two_workers(process.pid)
        served: dict[int | None, int] = {}
        for index in range(200):  # until both workers have some
            pid = post_one(url, event(f"metric-{index}"), process.pid)
            served[pid] = served.get(pid, 0) + 1
            if workers <= served.keys() and index >= 10:
                break
        total = sum(served.values())
        wait_until(lambda: accepted_total(url) == total, 10, f"/metrics counting {total}")
        victim = min(workers)
        os.kill(victim, signal.SIGKILL)
        listening = logs.wait_for(
            rf"\(pid (\d+)\) is listening, [\d.]+ s after pid {victim} died", 10
        )
        watch_until = time.monotonic() + 1.5  # longer than a worker's 1 s publishing interval
        scrapes = []
        while time.monotonic() < watch_until:
            scrapes.append(accepted_total(url))
        for index in range(200):  # the same user again, until the replacement had one
            again = {**event(f"again-{index}"), "user": {"id": "u-metric-0"}}
            if post_one(url, again, process.pid) == int(listening[1]):
                break
        else:
            raise AssertionError("the replacement answered none of 200 connections")
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    assert served[victim] > 0
    assert set(scrapes) == {total}, f"{total} accepted, /metrics said {sorted(set(scrapes))}"
    identified = [m for m in segment_receiver.messages("identify") if m["userId"] == "u-metric-0"]
    assert len(identified) == 1, "a worker forgot who was identified already"


def test_workers_stop_and_flush_when_the_parent_is_killed(
    segment_receiver: SegmentReceiver, tmp_path: Path
) -> None:
    """What the workers accepted is still queued when the parent dies: only their stop sends it.

    The 30 s flushInterval is cut short by the stop, which uploads what is gathered at once.
    """
    dead = tmp_path / "dead.jsonl"
    flow = write_flow(tmp_path, {"flushInterval": 30_000, "deadLetterFile": str(dead)})
    temp = tmp_path / "temp"  # where the workers' shared metrics directory is made
    temp.mkdir()
    env = {"SEGMENT_HOST": segment_receiver.url, "TMPDIR": str(temp)}
    shutdown_timeout = 5
    workers: set[int] = set()
    try:
        with flows_running(
            flow, "--workers", "2", "--shutdown-timeout", str(shutdown_timeout), env=env
        ) as (process, url, _):
            logs = LogLines(process)
            workers = two_workers(process.pid)
            accepted: list[str] = []
            served_by: set[int | None] = set()
            for index in range(200):  # until both workers have some
                served_by.add(post_one(url, event(f"orphan-{index}"), process.pid))
                accepted.append(f"orphan-{index}")
                if workers <= served_by and index >= 10:
                    break
            assert workers <= served_by, "the kernel gave every connection to one worker"
            assert segment_receiver.messages() == [], "sent before the stop: proves nothing"
            process.kill()
            process.wait(5)
            killed_at = time.monotonic()
            wait_until(
                lambda: not any(alive(pid) for pid in workers),
                shutdown_timeout + 3,
                "both workers exited after their parent was killed",
            )
            stopped_after = time.monotonic() - killed_at
            logs.close()
    finally:
        for pid in workers:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
    delivered = segment_receiver.message_ids()
    missing = {f"{i}-track" for i in accepted} - delivered - dead_lettered(dead)
    assert not missing, f"{len(missing)} of {len(accepted)} accepted neither sent nor dead-lettered"
    assert stopped_after < shutdown_timeout, "the stop waited for the batch to fill"
    assert len(logs.matching(rf"stopped because its parent \(pid {process.pid}\) died")) == 2
    assert list(temp.iterdir()) == [], "the last worker out removed the metrics directory"
    print(f"\nparent SIGKILLed -> both workers flushed and exited in {stopped_after:.2f} s")


def test_a_worker_failing_at_start_up_makes_the_server_give_up(tmp_path: Path) -> None:
    """A destination that cannot initialise: restarts back off, then the server exits 1."""
    unwritable = tmp_path / "no-such-dir" / "events.log"
    log = {"package": "log", "config": {"settings": {"path": str(unwritable)}}}
    flow = write_flow(tmp_path, {}, log=log)
    port = str(free_port())
    started = time.monotonic()
    result = run_flows(
        "run", str(flow), "--host", "127.0.0.1", "--port", port, "--workers", "2",
        env={"SEGMENT_HOST": "http://127.0.0.1:9"},
    )  # fmt: skip
    elapsed = time.monotonic() - started
    assert result.returncode == 1, result.stderr
    assert "serving" not in result.stdout
    lines = result.stderr.splitlines()
    gave_up = [line for line in lines if "5 times in a row; giving up" in line]
    assert len(gave_up) == 1, result.stderr
    assert " before it listened, 5 times in a row; giving up and stopping all workers" in gave_up[0]
    worker = gave_up[0].split("worker ")[1].split(" ")[0]
    delays = [
        line.rsplit("restarting it in ", 1)[1]
        for line in lines
        if f"worker {worker} (pid " in line and "before it listened; restarting" in line
    ]
    assert delays == ["0.5 s", "1 s", "2 s", "4 s"], result.stderr
    assert 7.5 <= elapsed < 20, f"gave up after {elapsed:.1f} s"
    print(f"\ncrash loop: gave up after {elapsed:.1f} s")


def _post_some(url: str, prefix: str, count: int) -> list[str]:
    ids = [f"{prefix}-{n}" for n in range(count)]
    for event_id in ids:  # a new connection each: both workers get some
        assert httpx.post(url + "/collect", json=event(event_id)).status_code == 200
    return ids


def test_a_stop_with_segment_hanging_ends_within_the_shutdown_timeout(
    segment_receiver: SegmentReceiver, tmp_path: Path
) -> None:
    """Uploads hang: the workers dead-letter what they hold at the deadline, the parent exits 0."""
    dead = tmp_path / "dead.jsonl"
    settings = {"flushInterval": 50, "httpRequestTimeout": 60_000, "deadLetterFile": str(dead)}
    flow = write_flow(tmp_path, settings)
    segment_receiver.delay(120)
    env = {"SEGMENT_HOST": segment_receiver.url}
    with flows_running(flow, "--workers", "2", "--shutdown-timeout", "2", env=env) as (
        process,
        url,
        _,
    ):
        logs = LogLines(process)
        accepted = _post_some(url, "hang", 20)
        segment_receiver.wait_for_requests(1)  # an upload is hanging
        stop_at = time.monotonic()
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=2 + SLACK + 5)
        elapsed = time.monotonic() - stop_at
        logs.close()
    assert code == 0, logs.text()
    assert elapsed < 2 + SLACK, f"stopped after {elapsed:.2f} s"
    assert {f"{i}-track" for i in accepted} <= dead_lettered(dead) | segment_receiver.message_ids()
    print(f"\nstop with Segment hanging: {elapsed:.2f} s (shutdown timeout 2 s)")


def test_a_worker_that_does_not_stop_is_killed_after_the_timeout(
    segment_receiver: SegmentReceiver, tmp_path: Path
) -> None:
    """A stopped (SIGSTOP) worker cannot take its SIGTERM: the parent kills it and exits 1."""
    flow = write_flow(tmp_path, {"flushInterval": 50})
    env = {"SEGMENT_HOST": segment_receiver.url}
    stuck = 0
    try:
        with flows_running(flow, "--workers", "2", "--shutdown-timeout", "1", env=env) as (
            process,
            _,
            _,
        ):
            logs = LogLines(process)
            stuck = min(two_workers(process.pid))
            os.kill(stuck, signal.SIGSTOP)
            stop_at = time.monotonic()
            process.send_signal(signal.SIGTERM)
            code = process.wait(timeout=1 + SLACK + 5)
            elapsed = time.monotonic() - stop_at
            logs.close()
        assert code == 1, logs.text()
        assert logs.matching(
            rf"worker \d \(pid {stuck}\) did not stop within 3 s of the stop signal; killing it"
        ), logs.text()
        assert 1 + SLACK <= elapsed < 1 + SLACK + 1.5, f"stopped after {elapsed:.2f} s"
        assert not alive(stuck)
    finally:
        if stuck and alive(stuck):
            os.kill(stuck, signal.SIGKILL)


WATCHED_CHILD = """
import os, signal, sys, time
from flows.server.parent_death import watch_parent

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
