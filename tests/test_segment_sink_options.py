"""``flows segment-sink`` takes the options of ``python -m destination_segment.receiver``."""

from __future__ import annotations

import re
import select
import signal
import subprocess
import sys

import httpx

from tests.cli_helpers import FLOWS, ROOT, run_flows


def options(help_text: str) -> set[str]:
    """The long options a ``--help`` text lists."""
    return set(re.findall(r"(--[a-z][a-z-]+)", help_text)) - {"--help"}


def test_segment_sink_has_every_option_of_the_receiver() -> None:
    receiver = subprocess.run(
        [sys.executable, "-m", "destination_segment.receiver", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        cwd=ROOT,
    )
    sink = run_flows("segment-sink", "--help")
    assert sink.returncode == 0, sink.stderr
    wanted = {"--host", "--port", "--write-key", "--record", "--max-messages"}
    assert wanted <= options(receiver.stdout)
    assert options(receiver.stdout) <= options(sink.stdout)


def test_max_messages_keeps_only_the_newest() -> None:
    process = subprocess.Popen(
        [*FLOWS, "segment-sink", "--port", "0", "--max-messages", "2"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], 30)
        assert ready, "segment-sink printed nothing"
        url = process.stdout.readline().split("listening on ", 1)[1].split()[0]
        batch = [
            {"type": "track", "event": "x", "userId": "u", "messageId": f"m-{n}"} for n in range(3)
        ]
        answer = httpx.post(url + "/v1/batch", json={"batch": batch}, auth=("wk", ""))
        assert answer.status_code == 200
        kept = httpx.get(url + "/messages").json()
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    ids = [m["messageId"] for m in (kept["messages"] if isinstance(kept, dict) else kept)]
    assert ids == ["m-1", "m-2"]
    assert process.returncode == 0


def test_max_messages_must_be_positive() -> None:
    result = run_flows("segment-sink", "--max-messages", "0")
    assert result.returncode == 2
    assert "--max-messages: must be 1 or more, not 0" in result.stderr
