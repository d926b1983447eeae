"""The OpenAPI description of the http source, held to the real server by schemathesis.

schemathesis generates requests from ``examples/openapi.json`` (valid and
invalid ones) and sends them over real sockets to ``flows run`` of the demo
flow; every answer must be one the document names, with the documented body,
and valid requests must be accepted while invalid ones are refused.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig

from destination_segment.receiver import SegmentReceiver
from flows.flowfile.config import read_flow_file, resolve_flow
from flows.graph import build_flow
from flows.http.openapi import openapi_document
from flows.http.settings import HttpSettings
from tests.cli_helpers import DEMO_FLOW, EXAMPLES, flows_running, run_flows

COMMITTED = EXAMPLES / "openapi.json"
#: An invalid request may also be refused as too large (413, 414) or, without its token, 401.
CHECKS = {"negative_data_rejection": {"expected-statuses": [400, 401, 413, 414, 415]}}
TOKEN = "openapi-test-token-0123456789"
PROTECTED = {"path": "/collect", "maxBatchSize": 100, "auth": {"token": TOKEN}}


#: The protected run is about the token; the demo run checks that invalid data is refused.
#: (With the token added to every request, a case meant to lack it would be valid.)
TOKEN_CHECKS = {**CHECKS, "negative_data_rejection": {"enabled": False}}


def contract(document: dict[str, Any], checks: dict[str, Any] = CHECKS) -> Any:
    """The schemathesis schema of ``document``, with our refusal statuses allowed."""
    return schemathesis.openapi.from_dict(
        document, config=SchemathesisConfig.from_dict({"checks": checks})
    )


def examples(count: int) -> Any:
    """Hypothesis settings: the same ``count`` requests on every CI run (raise it to explore)."""
    return settings(
        max_examples=count,
        derandomize=True,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )


@contextmanager
def serving(flow: Path, env: dict[str, str] | None = None) -> Iterator[str]:
    """``flows run`` of ``flow`` posting to a local receiver; yields its base URL.

    Its output is read all along: the demo's log destination prints every event,
    and a full pipe would stall the server.
    """
    with (
        SegmentReceiver() as receiver,
        flows_running(flow, env={**(env or {}), "SEGMENT_HOST": receiver.url}) as (
            process,
            url,
            _,
        ),
    ):
        for stream in (process.stdout, process.stderr):
            threading.Thread(target=stream.read, daemon=True).start()  # type: ignore[union-attr]
        yield url


schema = contract(json.loads(COMMITTED.read_text()))
protected_schema = contract(
    openapi_document(HttpSettings.model_validate(PROTECTED)), TOKEN_CHECKS
).include(path="/collect")


@pytest.fixture(scope="module")
def demo_server() -> Iterator[str]:
    with serving(DEMO_FLOW) as url:
        yield url


@pytest.fixture(scope="module")
def protected_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The demo flow with its http source behind a token (from the environment)."""
    flow = read_flow_file(str(DEMO_FLOW))
    source = flow["flows"]["default"]["sources"]["http"]["config"]
    source["settings"] = {**PROTECTED, "auth": {"token": "$env.FLOWS_TEST_TOKEN"}}
    path = tmp_path_factory.mktemp("protected") / "flow.json"
    path.write_text(json.dumps(flow), encoding="utf-8")
    with serving(path, {"FLOWS_TEST_TOKEN": TOKEN}) as url:
        yield url


@schema.parametrize()
@examples(30)
def test_the_server_answers_as_its_openapi_document_says(case: Any, demo_server: str) -> None:
    case.call_and_validate(base_url=demo_server)


@protected_schema.parametrize()
@examples(10)
def test_a_protected_source_refuses_requests_without_its_token(
    case: Any, protected_server: str
) -> None:
    """schemathesis' ignored_auth check sends each request without and with a wrong token."""
    case.call_and_validate(base_url=protected_server, headers={"X-Flows-Token": TOKEN})


def test_the_committed_document_is_the_demo_flows(tmp_path: Any) -> None:
    flow = build_flow(resolve_flow(read_flow_file(str(DEMO_FLOW)), env={}))
    http = flow.sources["http"].settings  # type: ignore[attr-defined]
    assert json.loads(COMMITTED.read_text()) == json.loads(json.dumps(openapi_document(http))), (
        "flows/examples/openapi.json is stale: run "
        "`flows openapi flows/examples/shop.flow.json -o flows/examples/openapi.json`"
    )
    written = tmp_path / "openapi.json"
    result = run_flows("openapi", str(DEMO_FLOW), "-o", str(written))
    assert result.returncode == 0, result.stderr
    assert json.loads(written.read_text()) == json.loads(COMMITTED.read_text())


def test_a_token_protected_source_declares_its_header() -> None:
    http = HttpSettings.model_validate(
        {"auth": {"header": "X-Team-Token", "token": "0123456789abcdef0123"}}
    )
    document = openapi_document(http)
    scheme = document["components"]["securitySchemes"]["sharedSecret"]
    assert scheme == {"type": "apiKey", "in": "header", "name": "X-Team-Token"}
    collect = document["paths"]["/collect"]
    assert collect["post"]["security"] == [{"sharedSecret": []}]
    assert "401" in collect["post"]["responses"]
    assert "0123456789abcdef0123" not in json.dumps(document), "the token is never published"
