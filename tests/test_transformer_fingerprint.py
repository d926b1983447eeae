"""The fingerprint transformer against walkerOS's examples, run as walkerOS ran them.

Each fixture case carries the hash walkerOS's code produced (``actual_hash``
/ ``actual_out``); the upstream ``out`` hashes were never checked upstream
and are wrong, so they are not compared.
"""

from __future__ import annotations

import copy
import hashlib
import logging
from importlib.metadata import entry_points
from typing import Any

import pytest
from pydantic import ValidationError

from collector.mapping import MappingConfigError
from collector.transformer import TransformerContext
from collector.transformers.fingerprint import FingerprintSettings, FingerprintTransformer
from tests.shared_fixtures import load_fixture

FIXTURE = load_fixture("walkeros-transformer-fingerprint-examples.json")
CASES = {case["name"]: case for case in FIXTURE["cases"]}
CALLBACK = "tests.mapping_callables:anonymized_ip"


def with_callback(settings: dict[str, Any]) -> dict[str, Any]:
    """The fixture's ``<callback>`` placeholder as our test callable's import path."""
    fields = [
        {**field, "fn": CALLBACK} if isinstance(field, dict) and field.get("fn") else field
        for field in settings["fields"]
    ]
    return {**settings, "fields": fields}


def transformer(settings: dict[str, Any]) -> FingerprintTransformer:
    return FingerprintTransformer(FingerprintSettings.model_validate(settings))


def push(step: FingerprintTransformer, event: dict[str, Any], ingest: dict[str, Any]) -> Any:
    context = TransformerContext(ingest=ingest, logger=logging.getLogger("test"))
    return step.push(event, context)


def test_the_fixture_has_the_six_cases() -> None:
    assert sorted(CASES) == sorted(
        [
            "serverFingerprint",
            "missingFields",
            "ipAnonymization",
            "fullLengthDefault",
            "customOutputEventField",
            "noFields",
        ]
    )


@pytest.mark.parametrize(
    "name",
    [name for name, case in CASES.items() if "actual_out" in case],
)
def test_each_single_run_case_gives_walkeros_actual_event(name: str) -> None:
    case = CASES[name]
    event = case["in"]["event"]
    before = copy.deepcopy(event)
    result = push(transformer(case["settings"]), event, dict(case["in"].get("ingest", {})))
    [[kind, expected]] = case["actual_out"]
    assert kind == "return"
    if case.get("hash_input") == "" or not case["settings"].get("fields"):
        # Our one difference: walkerOS writes sha256("") for every visitor with no request
        # values, merging them all into one identity; we leave the event as it came.
        assert result is None, "None: the event goes on unchanged, without a hash"
        return
    assert result == expected["event"]
    assert event == before, "the event given is never changed in place"
    if "actual_hash" in case:
        assert result["user"]["hash"] == case["actual_hash"]
    if "hash_input" in case:
        digest = hashlib.sha256(case["hash_input"].encode()).hexdigest()
        assert digest.startswith(case["actual_hash"]), "the fixture agrees with itself"


def test_ip_anonymization_runs_give_walkeros_actual_hashes() -> None:
    case = CASES["ipAnonymization"]
    step = transformer(with_callback(case["settings"]))
    hashes = []
    for run in case["runs"]:
        result = push(step, case["in"]["event"], run["ingest"])
        assert result["user"]["hash"] == run["actual_hash"], run["ingest"]["ip"]
        assert result["name"] == case["in"]["event"]["name"]
        assert result["data"] == case["in"]["event"]["data"]
        digest = hashlib.sha256(run["hash_input"].encode()).hexdigest()
        assert digest[:16] == run["actual_hash"]
        hashes.append(result["user"]["hash"])
    # What the upstream test asserts: same /24 alike, another subnet different.
    assert hashes[0] == hashes[1] != hashes[2]


def test_key_with_fn_reads_the_key_as_walkeros_does() -> None:
    """``{key, fn}``: walkerOS's key overwrites the fn result, so nothing is anonymized."""
    variant = CASES["ipAnonymization"]["key_fn_variant"]
    step = transformer(with_callback(variant["settings"]))
    [run] = variant["runs"]
    result = push(step, CASES["ipAnonymization"]["in"]["event"], run["ingest"])
    assert result["user"]["hash"] == run["actual_hash"]


def test_values_are_joined_as_javascript_strings() -> None:
    step = transformer(
        {
            "fields": [
                "event.data.flag",
                "event.data.count",
                "event.data.ratio",
                "event.data.tiny",
                "event.data.nothing",
                "event.data.object",
                "event.data.list",
                "ingest.missing",
            ]
        }
    )
    event = {
        "name": "page view",
        "data": {
            "flag": True,
            "count": 3.0,
            "ratio": 0.5,
            "tiny": 1e-7,
            "nothing": None,
            "object": {"a": 1},
            "list": [1, None, "x"],
        },
    }
    result = push(step, event, {})
    expected = "true30.51e-7[object Object]1,,x"
    assert result["user"]["hash"] == hashlib.sha256(expected.encode()).hexdigest()


def test_the_hash_goes_beside_what_the_user_already_has() -> None:
    step = transformer({"fields": ["ingest.ip"], "length": 4})
    event = {"name": "page view", "user": {"id": "u1", "session": "s1"}}
    result = push(step, event, {"ip": "192.168.1.1"})
    assert result["user"] == {"id": "u1", "session": "s1", "hash": "c5eb"}
    assert event["user"] == {"id": "u1", "session": "s1"}


def test_a_lone_surrogate_is_hashed_as_node_writes_it() -> None:
    step = transformer({"fields": [{"fn": "tests.mapping_callables:lone_surrogate"}]})
    result = push(step, {"name": "page view"}, {})
    expected = hashlib.sha256("a\ufffdb".encode()).hexdigest()
    assert result["user"]["hash"] == expected


def test_a_failing_fn_counts_as_empty(caplog: pytest.LogCaptureFixture) -> None:
    step = transformer({"fields": [{"fn": "tests.mapping_callables:fails"}, "ingest.ip"]})
    result = push(step, {"name": "page view"}, {"ip": "192.168.1.1"})
    assert result["user"]["hash"] == hashlib.sha256(b"192.168.1.1").hexdigest()
    assert "mapping fn tests.mapping_callables:fails failed" in caplog.text


def test_config_errors_name_the_field() -> None:
    with pytest.raises(MappingConfigError) as raised:
        transformer({"fields": ["ingest.ip", {"fn": "tests.mapping_callables:nope"}]})
    assert raised.value.path == "settings.fields.1.fn"
    assert "nope" in raised.value.reason
    for bad in ({"fields": [], "length": 0}, {"fields": [], "lenght": 8}, {"output": ""}):
        with pytest.raises(ValidationError):
            FingerprintSettings.model_validate(bad)


def test_the_entry_point_names_the_class() -> None:
    [found] = [ep for ep in entry_points(group="flows.transformers") if ep.name == "fingerprint"]
    assert found.load() is FingerprintTransformer
    assert FingerprintTransformer.type == "fingerprint"
