"""``flows replay DEADLETTER FLOW_FILE [--flow NAME]``: the new form and the old one, progress,
``--dry-run`` and ``--rate``, over real HTTP to a loopback receiver."""

from __future__ import annotations

import io
import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from collector.dead_letter import dead_letter_line
from collector.rate import TokenBucket
from collector.replay import ReplayReport
from flows.cli.main import OLD_REPLAY_FORM
from flows.cli.replay_progress import ReplayProgress
from tests.cli_helpers import run_flows
from tests.http_receiver import Receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


def api(url: str, **more: Any) -> dict[str, Any]:
    settings = {"url": url, "maxRetries": 0, "concurrency": 1, **more}
    return {"api": {"package": "api", "config": {"settings": settings}}}


def two_flows(path: Path, url: str, **more: Any) -> Path:
    """Flows ``a`` (to /a) and ``b`` (to /b): the name chooses where lines go."""
    flows = {name: {"destinations": api(f"{url}/{name}", **more)} for name in ("a", "b")}
    path.write_text(json.dumps({"version": 4, "flows": flows}), encoding="utf-8")
    return path


def dead_letters(path: Path, count: int, *extra: bytes) -> Path:
    path.write_bytes(
        b"".join(dead_letter_line("api", "refused", {"n": n}) for n in range(count))
        + b"".join(extra)
    )
    return path


def test_the_new_form_takes_the_flow_file_second_and_the_name_as_flow(
    receiver: Receiver, tmp_path: Path
) -> None:
    dead = dead_letters(tmp_path / "dead.jsonl", 3)
    flow = two_flows(tmp_path / "flow.json", receiver.url)
    result = run_flows("replay", str(dead), str(flow), "--flow", "b")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"replayed 3 message(s) from {dead}; 0 failed\n"
    assert "warning" not in result.stderr
    assert result.stderr.splitlines()[-1] == (
        "flows: replay: done: 3 line(s) read, 3 replayed, 0 failed"
    )
    assert [request.path for request in receiver.wait_for(3)] == ["/b"] * 3


def test_the_old_form_still_works_with_one_deprecation_line(
    receiver: Receiver, tmp_path: Path
) -> None:
    dead = dead_letters(tmp_path / "dead.jsonl", 2)
    flow = two_flows(tmp_path / "flow.json", receiver.url)
    result = run_flows("replay", str(dead), "--flow", str(flow), "--name", "a")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"replayed 2 message(s) from {dead}; 0 failed\n"
    assert result.stderr.splitlines()[0] == f"flows: warning: {OLD_REPLAY_FORM}"
    assert result.stderr.count("warning") == 1
    assert "use flows replay FILE FLOW_FILE --flow NAME" in OLD_REPLAY_FORM
    assert [request.path for request in receiver.wait_for(2)] == ["/a"] * 2
    wrong = run_flows("replay", str(dead), "--flow", str(flow), "--name", "c")
    assert wrong.returncode == 1
    assert (
        wrong.stderr.splitlines()[1] == "flows: error: --name: no flow named 'c'; the file has a, b"
    )


def test_the_forms_do_not_mix_and_a_flow_file_is_needed(tmp_path: Path) -> None:
    dead = dead_letters(tmp_path / "dead.jsonl", 1)
    flow = two_flows(tmp_path / "flow.json", "http://127.0.0.1:9")
    mixed = run_flows("replay", str(dead), str(flow), "--name", "a")
    assert mixed.returncode == 1
    assert mixed.stderr == (
        "flows: error: --name belongs to the old form; with FLOW_FILE use --flow NAME\n"
    )
    alone = run_flows("replay", str(dead))
    assert alone.returncode == 1
    assert alone.stderr == (
        "flows: error: replay needs a flow file: flows replay FILE FLOW_FILE [--flow NAME]\n"
    )
    unknown = run_flows("replay", str(dead), str(flow), "--flow", "c")
    assert unknown.returncode == 1
    assert unknown.stderr == "flows: error: --flow: no flow named 'c'; the file has a, b\n"


def test_dry_run_checks_every_line_and_sends_nothing(receiver: Receiver, tmp_path: Path) -> None:
    dead = dead_letters(
        tmp_path / "dead.jsonl",
        2,
        b"{not json\n",
        dead_letter_line("gone", "refused", {"n": 9}),
    )
    stale = Path(f"{dead}.failed")
    stale.write_text("older\n", encoding="utf-8")
    flow = two_flows(tmp_path / "flow.json", receiver.url)
    result = run_flows("replay", str(dead), str(flow), "--flow", "a", "--dry-run")
    assert result.returncode == 1
    assert result.stdout == (
        "would replay 2 message(s) to 'api' (api)\n"
        f"dry run: 2 message(s) from {dead} would be replayed; 2 line(s) would fail; "
        "nothing sent\n"
    )
    assert f"{dead}:3: not valid JSON" in result.stderr
    assert f"{dead}:4: destination 'gone' is not in the flow" in result.stderr
    assert "flows: replay: dry run done: 4 line(s) read, 2 would be replayed, 2 failed" in (
        result.stderr
    )
    assert result.stderr.splitlines()[-1] == "flows: error: 2 line(s) would not be replayed"
    assert receiver.requests == []
    assert stale.read_text(encoding="utf-8") == "older\n", "a dry run writes no FILE.failed"
    clean = dead_letters(tmp_path / "clean.jsonl", 2)
    ok = run_flows("replay", str(clean), str(flow), "--flow", "a", "--dry-run")
    assert ok.returncode == 0, ok.stderr
    assert receiver.requests == []


def test_progress_prints_a_line_every_thousand_lines(receiver: Receiver, tmp_path: Path) -> None:
    dead = dead_letters(tmp_path / "dead.jsonl", 2500)
    flow = two_flows(tmp_path / "flow.json", receiver.url, batch={"size": 500, "wait": 10_000})
    result = run_flows("replay", str(dead), str(flow), "--flow", "a")
    assert result.returncode == 0, result.stderr
    progress = [line for line in result.stderr.splitlines() if line.startswith("flows: replay:")]
    assert len(progress) >= 5, progress  # 2500 read + 2500 replayed: every 1000, then the end
    assert progress[-1] == "flows: replay: done: 2500 line(s) read, 2500 replayed, 0 failed"
    assert len(receiver.wait_for(5)) == 5


def test_progress_shows_every_n_lines_or_every_interval() -> None:
    now = [0.0]
    out = io.StringIO()
    progress = ReplayProgress(out, every=3, interval=1.0, clock=lambda: now[0])
    report = ReplayReport(Path("d"), Path("d.failed"))
    for _ in range(7):
        report.read += 1
        progress(report)
    assert out.getvalue().splitlines() == [
        "flows: replay: 3 line(s) read, 0 replayed, 0 failed",
        "flows: replay: 6 line(s) read, 0 replayed, 0 failed",
    ]
    now[0] = 1.5  # a second passed with one more line: shown anyway
    report.failed += 1
    progress(report)
    assert out.getvalue().splitlines()[-1] == "flows: replay: 7 line(s) read, 0 replayed, 1 failed"


def test_token_bucket_sleeps_the_deficit_and_never_spins() -> None:
    now = [0.0]
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        now[0] += seconds

    bucket = TokenBucket(4, clock=lambda: now[0], sleep=sleep)
    for _ in range(5):
        bucket.take()
    assert sleeps == [0.25] * 4, "the first goes at once, then one every 1/rate seconds"
    now[0] += 10  # idle: the bucket holds at most burst (1) token
    bucket.take()
    bucket.take()
    assert sleeps[-1] == 0.25
    assert len(sleeps) == 5
    with pytest.raises(ValueError, match="rate must be more than 0"):
        TokenBucket(0)


def test_rate_limits_messages_per_second(receiver: Receiver, tmp_path: Path) -> None:
    dead = dead_letters(tmp_path / "dead.jsonl", 6)
    flow = two_flows(tmp_path / "flow.json", receiver.url)
    result = run_flows("replay", str(dead), str(flow), "--flow", "a", "--rate", "10")
    assert result.returncode == 0, result.stderr
    arrived = [request.at for request in receiver.wait_for(6)]
    spread = arrived[-1] - arrived[0]
    assert spread >= 0.45, f"6 messages at 10/s are 5 intervals of 0.1 s apart, not {spread:.3f}"
    gaps = [later - earlier for earlier, later in itertools.pairwise(arrived)]
    assert min(gaps) >= 0.08, gaps
    bad = run_flows("replay", str(dead), str(flow), "--rate", "0")
    assert bad.returncode == 2
    assert "--rate: must be more than 0, not 0" in bad.stderr
