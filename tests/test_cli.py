"""Every ``flows`` command end to end, as a subprocess."""

from __future__ import annotations

import json
import signal
import threading
import time
from pathlib import Path

import httpx
import jsonschema_rs
import pytest

from destination_segment.receiver import SegmentReceiver
from tests.cli_helpers import DEMO_FLOW, EXAMPLES, flows_running, free_port, run_flows

SECRET = "sk-cli-secret-5e6f7a8b"


def test_help_on_every_command() -> None:
    for command in ("validate", "bundle", "push", "run", "schema", "segment-sink", "replay"):
        result = run_flows(command, "--help")
        assert result.returncode == 0, result.stderr
        assert "usage: flows" in result.stdout


def test_validate_ok_and_errors_are_one_line_each(tmp_path: Path) -> None:
    ok = run_flows("validate", str(DEMO_FLOW))
    assert ok.returncode == 0, ok.stderr
    assert "2 destinations (segment, log)" in ok.stdout
    data = json.loads(DEMO_FLOW.read_text())
    settings = data["flows"]["default"]["destinations"]["segment"]["config"]["settings"]
    settings["flushAt"] = "soon"
    settings["flushIntervall"] = 5
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    result = run_flows("validate", str(bad))
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert all(line.startswith("flows: error: ") for line in lines)
    assert any("settings.flushAt:" in line for line in lines)
    assert any('did you mean "flushInterval"' in line for line in lines)
    assert "Traceback" not in result.stderr
    missing = run_flows("validate", str(tmp_path / "nope.json"))
    assert missing.returncode == 1
    assert "no such file" in missing.stderr


def test_validate_check_tells_a_working_receiver_from_a_dead_one() -> None:
    with SegmentReceiver() as receiver:
        ok = run_flows("validate", str(DEMO_FLOW), "--check", env={"SEGMENT_HOST": receiver.url})
        assert ok.returncode == 0, ok.stderr
        assert "segment: ok:" in ok.stdout
        assert receiver.messages() == []
    dead = run_flows(
        "validate",
        str(DEMO_FLOW),
        "--check",
        env={"SEGMENT_HOST": f"http://127.0.0.1:{free_port()}"},
    )
    assert dead.returncode == 1
    assert "segment: FAILED: cannot connect" in dead.stdout


def test_bundle_keeps_secrets_out(tmp_path: Path) -> None:
    out = tmp_path / "flow.bundle.json"
    result = run_flows("bundle", str(DEMO_FLOW), "-o", str(out), env={"SEGMENT_WRITE_KEY": SECRET})
    assert result.returncode == 0, result.stderr
    text = out.read_text()
    assert SECRET not in text
    assert SECRET not in result.stdout + result.stderr
    bundle = json.loads(text)
    assert bundle["bundle"]["flow"] == "default"
    assert "walkeros-flows" in bundle["bundle"]["packages"]
    validated = run_flows("validate", str(out), env={"SEGMENT_WRITE_KEY": SECRET})
    assert validated.returncode == 0, validated.stderr


def test_validate_refuses_a_bundle_pinned_to_other_versions(tmp_path: Path) -> None:
    out = tmp_path / "flow.bundle.json"
    assert run_flows("bundle", str(DEMO_FLOW), "-o", str(out)).returncode == 0
    bundle = json.loads(out.read_text())
    bundle["bundle"]["packages"]["walkeros-flows"] = "0.0.0"
    out.write_text(json.dumps(bundle))
    result = run_flows("validate", str(out))
    assert result.returncode == 1
    assert "rebuild the bundle with `flows bundle`" in result.stderr


def test_bundle_refuses_an_invalid_flow(tmp_path: Path) -> None:
    data = json.loads(DEMO_FLOW.read_text())
    data["flows"]["default"]["destinations"]["segment"]["package"] = "nope"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    result = run_flows("bundle", str(bad), "-o", str(tmp_path / "out.json"))
    assert result.returncode == 1
    assert not (tmp_path / "out.json").exists()


def test_push_prints_the_exact_messages_and_skip_reasons(tmp_path: Path) -> None:
    result = run_flows(
        "push",
        str(DEMO_FLOW),
        "--event",
        str(EXAMPLES / "events" / "journey.json"),
        env={"SEGMENT_WRITE_KEY": SECRET},
    )
    assert result.returncode == 0, result.stderr
    assert SECRET not in result.stdout + result.stderr
    every = [json.loads(line) for line in result.stdout.splitlines()]
    logged = [m for m in every if m.get("destination") == "log"]
    assert [m["event"] for m in logged] == [
        "page view",
        "product view",
        "user login",
        "order complete",
    ]
    assert [m["destination"] for m in every] == ["segment", "log"] * 4, "every line names its own"
    lines = [m for m in every if m["destination"] == "segment"]
    assert [m["type"] for m in lines] == ["page", "track", "identify", "track"]
    for message in lines:
        assert next(iter(message)) == "destination", "the name first, then the exact message"
        assert message["context"]["library"]["name"] == "analytics-python"
        assert message["messageId"].startswith("17000000")
    anonymous = tmp_path / "anonymous.json"
    anonymous.write_text(
        json.dumps([{"name": "product view"}, {"name": "debug noise", "user": {"id": "u"}}])
    )
    skipped = run_flows("push", str(DEMO_FLOW), "--event", str(anonymous))
    assert skipped.returncode == 0, skipped.stderr
    reasons = [
        (line["destination"], line["skipped"])
        for line in map(json.loads, skipped.stdout.splitlines())
        if "skipped" in line
    ]
    assert reasons == [("segment", "no identity"), ("segment", "ignore")]


def test_push_names_each_destination_and_a_raising_one_fails_the_command(tmp_path: Path) -> None:
    flow = tmp_path / "two.flow.json"
    flow.write_text(
        json.dumps(
            {
                "version": 4,
                "flows": {
                    "default": {
                        "sources": {"http": {"package": "http"}},
                        "destinations": {
                            "broken": {
                                "package": "tests.user_destinations:BrokenPreviewDestination"
                            },
                            "log": {
                                "package": "log",
                                "config": {"data": {"map": {"title": "data.title"}}},
                            },
                        },
                    }
                },
            }
        )
    )
    result = run_flows("push", str(flow), "--event", str(EXAMPLES / "events" / "page-view.json"))
    assert result.returncode == 1, "a destination that raises fails the command"
    assert [json.loads(line) for line in result.stdout.splitlines()] == [
        {
            "destination": "broken",
            "failed": "KeyError: 'sku'",
            "event": "page view",
            "id": "1700000000000-page-view",
        },
        {"destination": "log", "event": "page view", "data": {"title": "Documentation"}},
    ], "the other destination is still shown"
    assert (
        "flows: error: event 0: destination broken failed on 'page view': KeyError: 'sku'"
        in result.stderr
    )
    assert "Traceback" not in result.stderr


def test_push_reports_invalid_events_with_paths(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"name": "ping"}, {"name": "page view", "user": {"id": "u"}}]))
    result = run_flows("push", str(DEMO_FLOW), "--event", str(bad))
    assert result.returncode == 1
    assert "event 0: name:" in result.stderr
    shown = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["destination"] for line in shown] == ["segment", "log"], (
        "the valid event is still shown, once per destination"
    )


def test_schema_is_valid_json_schema() -> None:
    """The schema passes its metaschema, the example flows pass it, and broken ones do not."""
    result = run_flows("schema")
    assert result.returncode == 0
    schema = json.loads(result.stdout)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema_rs.meta.validate(schema)  # raises, naming the keyword, when it is not
    validator = jsonschema_rs.validator_for(schema)
    flows = sorted(EXAMPLES.glob("*.flow.json"))
    assert flows
    for flow_file in flows:
        document = json.loads(flow_file.read_text())
        assert not [error.message for error in validator.iter_errors(document)], flow_file.name
    broken = json.loads(DEMO_FLOW.read_text())
    broken["flows"]["default"]["destinations"]["segment"]["config"]["settings"]["flushAt"] = "x"
    assert not validator.is_valid(broken), "a wrong settings type must not pass the schema"
    assert not validator.is_valid({**json.loads(DEMO_FLOW.read_text()), "flowz": {}})


def _send_until_refused(url: str, accepted: list[str], sent_enough: threading.Event) -> None:
    """Post small batches until the server stops answering; record ids answered 200."""
    with httpx.Client(timeout=10) as client:
        for index in range(100_000):
            ids = [f"r{index}-{n}" for n in range(5)]
            batch = [
                {"name": "product view", "id": event_id, "user": {"id": f"u{n}"}}
                for n, event_id in enumerate(ids)
            ]
            try:
                response = client.post(url, json={"batch": batch})
            except httpx.TransportError:
                return
            if response.status_code == 200:
                accepted.extend(ids)
            if len(accepted) >= 200:
                sent_enough.set()


@pytest.mark.parametrize("workers", [1, 2])
def test_run_serves_until_sigterm_and_loses_nothing_answered_200(workers: int) -> None:
    with SegmentReceiver() as receiver:
        env = {"SEGMENT_HOST": receiver.url, "SEGMENT_WRITE_KEY": SECRET}
        with flows_running(DEMO_FLOW, "--workers", str(workers), env=env) as (
            process,
            url,
            banner,
        ):
            assert url.removeprefix("http://") in banner, banner
            accepted: list[str] = []
            sent_enough = threading.Event()
            sender = threading.Thread(
                target=_send_until_refused, args=(url + "/collect", accepted, sent_enough)
            )
            sender.start()
            assert sent_enough.wait(30), "the server accepted too little traffic"
            process.send_signal(signal.SIGTERM)  # while the sender is still posting
            code = process.wait(timeout=30)
            sender.join(30)
            _, stderr = process.communicate(timeout=5)
        assert code == 0, stderr
        received = receiver.wait_for(len(accepted))
        delivered = {m["messageId"] for m in received}
        missing = {f"{event_id}-track" for event_id in accepted} - delivered
        assert not missing, f"{len(missing)} events answered 200 were not delivered"
        assert SECRET not in stderr


def test_workers_share_one_metrics_view() -> None:
    """With --workers 2, any worker's /metrics counts the events of both."""
    with (
        SegmentReceiver() as receiver,
        flows_running(DEMO_FLOW, "--workers", "2", env={"SEGMENT_HOST": receiver.url}) as (
            process,
            url,
            banner,
        ),
    ):
        assert "(2 workers)" in banner
        for index in range(40):  # a new connection each: the kernel spreads them
            event = {"name": "product view", "id": f"m{index}", "user": {"id": "u"}}
            assert httpx.post(url + "/collect", json=event).status_code == 200
        receiver.wait_for(40)
        deadline = time.monotonic() + 10
        text = ""
        while time.monotonic() < deadline:  # the other worker publishes each second
            text = httpx.get(url + "/metrics").text
            if "flows_events_accepted_total 40.0" in text:
                break
            time.sleep(0.1)
        assert "flows_events_accepted_total 40.0" in text, text
        assert (
            'flows_destination_messages_total{destination="segment",outcome="enqueued"} 40.0'
            in text
        )
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0


def test_workers_identify_a_user_once() -> None:
    """With --workers 2, the identify de-dup memory is one for both workers, not one each."""
    with (
        SegmentReceiver() as receiver,
        flows_running(DEMO_FLOW, "--workers", "2", env={"SEGMENT_HOST": receiver.url}) as (
            process,
            url,
            _,
        ),
    ):
        login = json.loads((EXAMPLES / "events" / "journey.json").read_text())[2]
        assert login["name"] == "user login"
        assert httpx.post(url + "/collect", json=login).status_code == 200
        receiver.wait_for(1)  # the first identify is out before the others race it
        for index in range(40):  # a new connection each: the kernel spreads them
            again = {**login, "id": f"login-{index}"}
            assert httpx.post(url + "/collect", json=again).status_code == 200
        changed = {**login, "id": "login-new-plan", "data": {**login["data"], "plan": "pro"}}
        assert httpx.post(url + "/collect", json=changed).status_code == 200
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        identifies = receiver.messages("identify")
        assert [m["messageId"] for m in identifies] == [
            f"{login['id']}-identify",
            "login-new-plan-identify",
        ], "once on first sight, again only when the traits changed"
