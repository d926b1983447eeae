"""The write key and other $env secrets never show up anywhere an operator can read.

One run exercises the error paths (Segment failing and refusing, invalid and
oversized input, a wrong token, debug logging), then every output is grepped:
stdout, stderr, metrics, dead-letter files, bundles, push output, errors.
"""

from __future__ import annotations

import base64
import json
import signal
from pathlib import Path

import httpx

from destination_segment.receiver import SegmentReceiver
from tests.cli_helpers import DEMO_FLOW, EXAMPLES, flows_running, free_port, run_flows

WRITE_KEY = "wk-live-7d1e0c9b8a6f5e4d"
TOKEN = "tok-server-2b3c4d5e6f7a8b9c"


def _secret_forms() -> list[str]:
    """The secrets as they could leak: plain, and as a Basic auth header would carry them."""
    basic = base64.b64encode(f"{WRITE_KEY}:".encode()).decode()
    return [WRITE_KEY, TOKEN, basic]


def _assert_clean(where: str, text: str) -> None:
    for secret in _secret_forms():
        assert secret not in text, f"a secret leaked into {where}"


def _flow_with_token(tmp_path: Path) -> Path:
    data = json.loads(DEMO_FLOW.read_text())
    flow = data["flows"]["default"]
    flow["sources"]["http"]["config"]["settings"]["auth"] = {"token": "$env.FLOWS_TOKEN"}
    flow["destinations"]["segment"]["config"]["settings"].update(
        {"flushInterval": 20, "maxRetries": 1, "httpRequestTimeout": 2000}
    )
    path = tmp_path / "flow.json"
    path.write_text(json.dumps(data))
    return path


def test_no_secret_in_any_output_after_every_error_path(tmp_path: Path) -> None:
    flow = _flow_with_token(tmp_path)
    dead_letters = tmp_path / "dead-letter"
    env = {
        "SEGMENT_WRITE_KEY": WRITE_KEY,
        "FLOWS_TOKEN": TOKEN,
        "FLOWS_DEAD_LETTER_DIR": str(dead_letters),
    }
    with SegmentReceiver() as receiver:
        receiver.fail(400, count=1)  # the first batch is refused: dead-lettered
        server_env = {**env, "SEGMENT_HOST": receiver.url}
        with flows_running(flow, "-v", env=server_env) as (process, url, banner):
            assert "serving" in banner
            auth = {"x-flows-token": TOKEN}
            event = {"name": "product view", "id": "s1", "user": {"id": "u1"}}
            with httpx.Client(timeout=10) as client:
                assert client.post(url + "/collect", json=event, headers=auth).status_code == 200
                receiver.wait_for_requests(1)
                receiver.fail(500, count=2)
                second = {**event, "id": "s2"}
                assert client.post(url + "/collect", json=second, headers=auth).status_code == 200
                refused = client.post(url + "/collect", json=event, headers={"x-flows-token": "x"})
                assert refused.status_code == 401
                bad = client.post(url + "/collect", json=[{"name": "x"}], headers=auth)
                assert bad.status_code == 400
                big = client.post(url + "/collect", content=b"x" * 2_000_000, headers=auth)
                assert big.status_code == 413
                receiver.wait_for_requests(3)  # 400, then 500 twice (maxRetries 1)
                metrics = client.get(url + "/metrics").text
            process.send_signal(signal.SIGTERM)
            stdout, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
    assert "making request" in stderr, "debug logging of the SDK was on"
    _assert_clean("server stdout", stdout)
    _assert_clean("server stderr (debug logs)", stderr)
    _assert_clean("metrics", metrics)
    written = list(dead_letters.rglob("*.jsonl"))
    assert written, "the refused batch was dead-lettered"
    for path in written:
        _assert_clean(f"dead-letter file {path.name}", path.read_text())

    bundle = tmp_path / "bundle.json"
    bundled = run_flows("bundle", str(flow), "-o", str(bundle), env=env)
    assert bundled.returncode == 0, bundled.stderr
    _assert_clean("bundle", bundle.read_text() + bundled.stdout + bundled.stderr)

    journey = str(EXAMPLES / "events" / "journey.json")
    pushed = run_flows("push", str(flow), "--event", journey, env=env)
    assert pushed.returncode == 0, pushed.stderr
    _assert_clean("push output", pushed.stdout + pushed.stderr)

    data = json.loads(flow.read_text())
    data["flows"]["default"]["destinations"]["segment"]["config"]["settings"]["flushAt"] = "x"
    data["flows"]["default"]["sources"]["http"]["config"]["settings"]["auth"]["header"] = 5
    invalid = tmp_path / "invalid.json"
    invalid.write_text(json.dumps(data))
    failed = run_flows("validate", str(invalid), env=env)
    assert failed.returncode == 1
    _assert_clean("validation errors", failed.stdout + failed.stderr)

    dead_host = {**env, "SEGMENT_HOST": f"http://127.0.0.1:{free_port()}"}
    checked = run_flows("validate", str(flow), "--check", env=dead_host)
    assert checked.returncode == 1
    _assert_clean("connection check", checked.stdout + checked.stderr)


def test_a_literal_secret_in_a_flow_file_is_not_echoed_by_errors(tmp_path: Path) -> None:
    data = json.loads(DEMO_FLOW.read_text())
    settings = data["flows"]["default"]["destinations"]["segment"]["config"]["settings"]
    settings["writeKey"] = WRITE_KEY
    settings["hostt"] = "typo"
    path = tmp_path / "literal.json"
    path.write_text(json.dumps(data))
    result = run_flows("validate", str(path))
    assert result.returncode == 1
    assert "hostt" in result.stderr
    _assert_clean("validation errors", result.stdout + result.stderr)


def test_a_bundle_keeps_secret_markers_and_runs_with_secrets_from_env_and_files(
    tmp_path: Path,
) -> None:
    data = json.loads(DEMO_FLOW.read_text())
    flow = data["flows"]["default"]
    flow["sources"]["http"]["config"]["settings"]["auth"] = {"token": "$secret.FLOWS_TOKEN"}
    segment = flow["destinations"]["segment"]["config"]["settings"]
    segment.update({"writeKey": "$secret.SEGMENT_WRITE_KEY", "flushAt": 1})
    source = tmp_path / "flow.json"
    source.write_text(json.dumps(data))
    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir()
    build_env = {
        "SEGMENT_WRITE_KEY": WRITE_KEY,
        "FLOWS_TOKEN": TOKEN,
        "FLOWS_SECRETS_DIR": str(secrets_dir),
    }

    bundle = tmp_path / "bundle.json"
    bundled = run_flows("bundle", str(source), "-o", str(bundle), env=build_env)
    assert bundled.returncode == 0, bundled.stderr
    _assert_clean("bundle", bundle.read_text() + bundled.stdout + bundled.stderr)
    written = json.loads(bundle.read_text())["flows"]["default"]
    assert written["sources"]["http"]["config"]["settings"]["auth"]["token"] == (
        "__WALKEROS_SECRET:FLOWS_TOKEN"
    )
    assert written["destinations"]["segment"]["config"]["settings"]["writeKey"] == (
        "__WALKEROS_SECRET:SEGMENT_WRITE_KEY"
    )

    # Where it runs: the token from the environment, the write key from a mounted file.
    (secrets_dir / "SEGMENT_WRITE_KEY").write_text(WRITE_KEY + "\n")
    with SegmentReceiver(write_key=WRITE_KEY) as receiver:
        run_env = {
            "FLOWS_TOKEN": TOKEN,
            "FLOWS_SECRETS_DIR": str(secrets_dir),
            "SEGMENT_HOST": receiver.url,
        }
        with flows_running(bundle, env=run_env) as (process, url, banner):
            assert "serving" in banner
            event = {"name": "product view", "id": "b1", "user": {"id": "u1"}}
            with httpx.Client(timeout=10) as client:
                refused = client.post(url + "/collect", json=event)
                assert refused.status_code == 401
                answer = client.post(url + "/collect", json=event, headers={"x-flows-token": TOKEN})
                assert answer.status_code == 200
            (message,) = receiver.wait_for(1)
            assert message["event"] == "Product Viewed"
            process.send_signal(signal.SIGTERM)
            stdout, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
    _assert_clean("bundle run output", stdout + stderr)

    (secrets_dir / "SEGMENT_WRITE_KEY").unlink()
    missing = run_flows("validate", str(bundle), env={"FLOWS_TOKEN": TOKEN, **_no_key(secrets_dir)})
    assert missing.returncode == 1
    assert 'required secret "SEGMENT_WRITE_KEY" is not set' in missing.stderr
    assert "flows.default.destinations.segment.config.settings.writeKey" in missing.stderr
    _assert_clean("missing secret error", missing.stdout + missing.stderr)


def _no_key(secrets_dir: Path) -> dict[str, str]:
    """An environment where SEGMENT_WRITE_KEY is unset (empty counts as unset)."""
    return {"SEGMENT_WRITE_KEY": "", "FLOWS_SECRETS_DIR": str(secrets_dir)}
