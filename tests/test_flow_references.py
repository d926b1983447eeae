"""A whole flow's references (``$var``, ``$env``, ``$secret``, ``$flow``, ``$contract``,
``$store``, ``$code:``): the 30 walkerOS cases, then secrets, checks and cascades."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from flows.flowfile.checks import FlowCheckError, check_no_code, find_code
from flows.flowfile.references import FlowReferenceError, resolve_deferred
from flows.flowfile.secrets import DEFAULT_SECRETS_DIR, NO_SECRET_SOURCE, SecretSource
from flows.flowfile.settings import resolve_flow_settings
from tests.shared_fixtures import load_fixture

FIXTURE = load_fixture("walkeros-flow-references.json")
CASES: list[dict[str, Any]] = FIXTURE["cases"]
SECRET = "s3cr3t-value-do-not-show"


def _pick(value: Any, dotted: str) -> Any:
    for key in dotted.split("."):
        value = value[key]
    return value


def _flow(**parts: Any) -> dict[str, Any]:
    """A one-flow file ``s`` (server) with ``parts`` as the flow's keys."""
    return {"version": 4, "flows": {"s": {"config": {"platform": "server"}, **parts}}}


def _error(data: dict[str, Any], name: str = "s", **kwargs: Any) -> FlowReferenceError:
    with pytest.raises(FlowReferenceError) as caught:
        resolve_flow_settings(data, name, kwargs.pop("env", {}), **kwargs)
    return caught.value


def test_the_fixture_has_all_thirty_cases() -> None:
    assert len(CASES) == 30


@pytest.mark.parametrize("case", CASES, ids=[case["name"] for case in CASES])
def test_walkeros_case(case: dict[str, Any]) -> None:
    """As upstream's getFlowSettings: the case's env only (not this process's), and no
    secret source, since upstream never reads a secret when it resolves (its
    non-deferred path is the browser's)."""
    data = case["flow_json"]
    options = case.get("options", {})
    name = case.get("flow") or next(iter(data["flows"]))
    before = copy.deepcopy(data)
    kwargs: dict[str, Any] = {
        "deferred": options.get("deferred", False),
        "strict_flow_refs": options.get("strictFlowRefs", True),
        "secrets": NO_SECRET_SOURCE,
    }
    expected = case["result"]
    if not expected["ok"]:
        error = _error(data, name, env=case.get("env", {}), **kwargs)
        # walkerOS's exact text, then where it is used (and a hint) in our style.
        assert str(error).startswith(expected["error"] + " (used at flows.")
        for value in case.get("env", {}).values():
            assert value not in str(error)
        return
    settings = resolve_flow_settings(data, name, case.get("env", {}), **kwargs)
    assert settings.name == name
    assert _pick(settings.flow, case["pick"]) == expected["value"]
    wanted = expected.get("warnings", [])
    assert len(settings.warnings) == len(wanted)
    for got, text in zip(settings.warnings, wanted, strict=True):
        assert got.startswith(text + " (used at flows.")
    assert data == before, "the flow file is not changed"


# -- $secret --------------------------------------------------------------------------------------


def test_a_server_flow_reads_a_secret_from_the_environment(tmp_path: Path) -> None:
    data = _flow(collector={"credentials": "$secret.GCP_KEY"})
    env = {"GCP_KEY": SECRET, "FLOWS_SECRETS_DIR": str(tmp_path)}
    assert resolve_flow_settings(data, "s", env).flow["collector"] == {"credentials": SECRET}


def test_a_secret_is_read_from_the_secrets_directory(tmp_path: Path) -> None:
    data = _flow(collector={"a": "$secret.A", "b": "$secret.B", "c": "$secret.C"})
    (tmp_path / "A").write_text(f"{SECRET}\n")
    (tmp_path / "B").write_bytes(b"two lines\n\n")
    (tmp_path / "C").write_bytes(b" spaced \r\n")
    env = {"FLOWS_SECRETS_DIR": str(tmp_path)}
    collector = resolve_flow_settings(data, "s", env).flow["collector"]
    assert collector == {"a": SECRET, "b": "two lines\n", "c": " spaced "}
    explicit = SecretSource({"A": "from-env"}, tmp_path)
    assert resolve_flow_settings(data, "s", {}, secrets=explicit).flow["collector"]["a"] == (
        "from-env"
    ), "the environment wins over the file"
    empty = SecretSource({"A": ""}, tmp_path)
    assert resolve_flow_settings(data, "s", {}, secrets=empty).flow["collector"]["a"] == SECRET


def test_the_default_secrets_directory_is_the_docker_one() -> None:
    assert SecretSource.from_environment({}).directory == Path("/run/secrets")
    assert Path("/run/secrets") == DEFAULT_SECRETS_DIR
    assert SecretSource.from_environment({"FLOWS_SECRETS_DIR": "/x"}).directory == Path("/x")


@pytest.mark.parametrize("content", [None, "", "\n"], ids=["no-file", "empty", "newline"])
def test_a_missing_or_empty_secret_names_it_and_where_it_is_used(
    tmp_path: Path, content: str | None
) -> None:
    if content is not None:
        (tmp_path / "WRITE_KEY").write_text(content)
    data = _flow(destinations={"d": {"config": {"settings": {"writeKey": "$secret.WRITE_KEY"}}}})
    error = _error(data, env={"WRITE_KEY": "", "FLOWS_SECRETS_DIR": str(tmp_path)})
    where = "flows.s.destinations.d.config.settings.writeKey"
    assert (error.name, error.path) == ("WRITE_KEY", where)
    assert str(error) == (
        f'WalkerOS: required secret "WRITE_KEY" is not set (used at {where}); '
        f"set WRITE_KEY in the environment or write it to {tmp_path / 'WRITE_KEY'} "
        "(the directory is set by FLOWS_SECRETS_DIR)"
    )


def test_no_error_shows_a_secret_value(tmp_path: Path) -> None:
    env = {"TOKEN": SECRET, "FLOWS_SECRETS_DIR": str(tmp_path)}
    (tmp_path / "FILED").write_text(SECRET)
    (tmp_path / "DIR").mkdir()
    web = {"version": 4, "flows": {"w": {"config": {"platform": "web"}}}}
    web["flows"]["w"]["collector"] = {"t": "$secret.TOKEN"}
    refusals = [
        _error(web, "w", env=env),  # a web flow never reads a secret, even when set
        _error(_flow(collector={"t": "$secret.DIR"}), env=env),  # unreadable
        _error(
            _flow(variables={"t": "$secret.TOKEN"}, collector={"h": "Bearer $var.t"}),
            env=env,
            deferred=True,
        ),
        _error(_flow(variables={"t": "$secret.FILED"}, collector={"x": "$var.t.deeper"}), env=env),
        _error(_flow(collector={"t": "$secret.TOKEN", "u": "$env.UNSET_X"}), env=env),
    ]
    texts = [str(error) for error in refusals]
    assert texts[0].startswith('Secret "$secret.TOKEN" cannot be used in a web flow')
    assert texts[1].startswith(f'Secret "DIR" cannot be read: cannot read {tmp_path / "DIR"}: ')
    assert texts[2].startswith('Variable "t" holds a $secret, which cannot be part of a string')
    assert texts[3].startswith('Variable "t.deeper" not found: "t" is a string, not an object')
    assert texts[4].startswith('Environment variable "UNSET_X" not found')
    for text in texts:
        assert SECRET not in text


def test_a_bundle_keeps_secret_markers_and_reads_them_where_it_runs(tmp_path: Path) -> None:
    data = _flow(
        variables={"creds": "$secret.GCP_KEY"},
        collector={"credentials": "$var.creds", "token": "$secret.API_TOKEN", "h": "$env.H:x"},
    )
    env = {"GCP_KEY": SECRET, "API_TOKEN": SECRET, "FLOWS_SECRETS_DIR": str(tmp_path)}
    bundled = resolve_flow_settings(data, "s", env, deferred=True).flow
    assert bundled["collector"] == {
        "credentials": "__WALKEROS_SECRET:GCP_KEY",
        "token": "__WALKEROS_SECRET:API_TOKEN",
        "h": "__WALKEROS_ENV:H:x",
    }
    assert SECRET not in json.dumps(bundled)
    bundle = {"version": 4, "flows": {"s": bundled}}
    again = resolve_flow_settings(bundle, "s", {}, deferred=True).flow
    assert again == bundled, "a bundle of a bundle keeps the markers"
    (tmp_path / "GCP_KEY").write_text("from-file\n")
    run_env = {"API_TOKEN": "tok", "FLOWS_SECRETS_DIR": str(tmp_path)}
    ran = resolve_flow_settings(bundle, "s", run_env).flow
    assert ran["collector"] == {"credentials": "from-file", "token": "tok", "h": "x"}
    assert resolve_deferred(bundled, run_env) == {**bundled, "collector": ran["collector"]}


# -- $code: and $store ---------------------------------------------------------------------------

COMPLETE = load_fixture("walkeros-flows/cli-flow-complete.json")


def test_every_code_string_of_the_complete_server_flow_is_listed_with_advice() -> None:
    flow = resolve_flow_settings(COMPLETE, "server", {}).flow
    where = "flows.server"
    places = [
        f"{where}.sources.http.config.ingest.map.context.map.anonymizedIp.fn",
        f"{where}.transformers.filter.code.push",
        f"{where}.transformers.fingerprint.config.settings.fields.3.fn",
        f"{where}.collector.globals.startedAt",
    ]
    assert find_code(flow, where) == places
    with pytest.raises(FlowCheckError) as caught:
        check_no_code(flow, where)
    lines = caught.value.errors
    assert [line.split(": ", 1)[0] for line in lines] == places
    lead = '"$code:" is JavaScript, which this runtime cannot run; '
    assert lines[0] == (
        f'{places[0]}: {lead}write "fn": "package.module:function", '
        "the import path of a Python function"
    )
    assert lines[1] == (
        f'{places[1]}: {lead}for an inline code step write "push": "package.module:function", '
        "a Python function called with (event, context)"
    )
    assert lines[3] == f"{places[3]}: {lead}write the value itself, or compute it in a Python step"
    assert str(caught.value) == "\n".join(lines)


def test_code_advice_for_conditions_and_other_code_fields() -> None:
    value = {"rule": [{"condition": "$code:() => true"}], "code": {"init": "$code:x"}, "ok": "fn"}
    with pytest.raises(FlowCheckError) as caught:
        check_no_code(value, "p")
    first, second = caught.value.errors
    assert first.startswith('p.rule.0.condition: "$code:" is JavaScript')
    assert 'write "condition": "package.module:function"' in first
    assert second.startswith('p.code.init: "$code:" is JavaScript')
    assert 'takes only "type" and "push"' in second
    check_no_code({"fn": "pkg.mod:fn", "x": "code: $code:"}, "p")  # no error


def test_both_flows_of_the_complete_file_resolve_in_both_modes() -> None:
    for name in COMPLETE["flows"]:
        for deferred in (False, True):
            settings = resolve_flow_settings(COMPLETE, name, {}, deferred=deferred)
            assert settings.warnings == []
            assert "variables" not in settings.flow
    server = resolve_flow_settings(COMPLETE, "server", {"META_ACCESS_TOKEN": "t"}).flow
    meta = server["destinations"]["meta"]
    assert meta["config"]["settings"]["accessToken"] == "t"
    assert meta["config"]["mapping"]["order"]["complete"]["data"]["map"]["currency"]["value"] == (
        "EUR"
    )
    assert meta["examples"] == COMPLETE["flows"]["server"]["destinations"]["meta"]["examples"]
    bundled = resolve_flow_settings(COMPLETE, "server", {}, deferred=True).flow
    assert bundled["destinations"]["meta"]["config"]["settings"]["pixelId"] == (
        "__WALKEROS_ENV:META_PIXEL_ID:123456789012345"
    )


def test_unknown_store_ids_are_all_listed_with_the_defined_ones() -> None:
    data = _flow(
        variables={"s": "$store.cahce"},
        stores={"cache": {"package": "memory"}, "sessions": {"package": "memory"}},
        transformers={"t": {"env": {"store": "$var.s"}, "config": {"x": "$store.cache"}}},
        destinations={"d": {"env": {"s": "$store.nope", "bad": "$store.a-b"}}},
    )
    with pytest.raises(FlowCheckError) as caught:
        resolve_flow_settings(data, "s", {})
    assert caught.value.errors == [
        'flows.s.transformers.t.env.store: Unknown store "$store.cahce". Defined: cache, '
        'sessions; did you mean "$store.cache"?',
        'flows.s.destinations.d.env.s: Unknown store "$store.nope". Defined: cache, sessions',
        'flows.s.destinations.d.env.bad: Unknown store "$store.a-b". Defined: cache, sessions',
    ]
    with pytest.raises(FlowCheckError, match=r'Unknown store "\$store.x". Defined: none$'):
        resolve_flow_settings(_flow(collector={"s": "$store.x"}), "s", {})


def test_a_known_store_reference_stays_a_string_for_the_builder() -> None:
    data = _flow(stores={"cache": {}}, sources={"h": {"env": {"store": "$store.cache"}}})
    flow = resolve_flow_settings(data, "s", {}).flow
    assert flow["sources"]["h"]["env"] == {"store": "$store.cache"}


# -- variables, $flow, $contract -----------------------------------------------------------------


def test_variables_cascade_file_flow_step_and_may_reference_each_other() -> None:
    data = _flow(
        variables={"region": "eu", "host": "api-$var.region"},
        destinations={
            "d": {"variables": {"region": "us"}, "config": {"url": "https://$var.host/v1"}},
            "e": {"config": {"url": "https://$var.host/v1", "n": "$var.port"}},
        },
        collector={"who": "$var.name"},
    )
    data["variables"] = {"name": "shop", "region": "de", "port": 8080}
    flow = resolve_flow_settings(data, "s", {}).flow
    assert flow["destinations"]["d"]["config"]["url"] == "https://api-us/v1"
    assert flow["destinations"]["e"]["config"] == {"url": "https://api-eu/v1", "n": 8080}
    assert flow["collector"] == {"who": "shop"}
    assert "variables" not in flow["destinations"]["d"]


def test_a_variable_loop_is_an_error_at_the_variable() -> None:
    data = _flow(variables={"a": "x$var.b", "b": {"k": "$var.a"}}, collector={"v": "$var.a"})
    error = _error(data)
    assert str(error).startswith(
        "Cyclic $var reference: a -> b -> a (used at flows.s.variables.b.k)"
    )


def test_an_error_inside_a_variable_points_at_the_variable() -> None:
    data = _flow(collector={"v": "$var.url"})
    data["variables"] = {"url": "$env.NOT_SET_ANYWHERE"}
    assert _error(data).path == "variables.url"


def test_unknown_variable_and_flow_names_suggest_a_close_one() -> None:
    data = _flow(variables={"region": "eu"}, collector={"v": "$var.regoin"})
    assert str(_error(data)).endswith('did you mean "region"?')
    error = _error(_flow(), "S")
    assert str(error) == 'Flow "S" not found. Available: s (used at flows); did you mean "s"?'


def test_flow_references_walk_lists_and_see_the_siblings_own_variables() -> None:
    data = {
        "version": 4,
        "variables": {"zone": "a"},
        "flows": {
            "server": {
                "variables": {"zone": "b"},
                "config": {"platform": "server", "hosts": ["h1", {"name": "$var.zone"}]},
            },
            "web": {
                "config": {"platform": "web"},
                "collector": {"h": "$flow.server.hosts.1.name", "all": "$flow.server"},
            },
        },
    }
    collector = resolve_flow_settings(data, "web", {}).flow["collector"]
    assert collector == {
        "h": "b",
        "all": {"platform": "server", "hosts": ["h1", {"name": "b"}]},
    }
    data["flows"]["web"]["collector"] = {"h": "$flow.server.hosts.5"}
    assert str(_error(data, "web")).startswith(
        'Path "hosts.5" not found in "$flow.server": "5" does not exist in "hosts"'
    )
    data["flows"]["web"]["collector"] = {"me": "$flow.web.platform"}
    assert str(_error(data, "web")).startswith("Cyclic $flow reference: web -> web")


def test_soft_flow_refs_warn_for_an_empty_value() -> None:
    data = {
        "version": 4,
        "flows": {
            "server": {"config": {"platform": "server", "url": ""}},
            "web": {"config": {"platform": "web"}, "collector": {"u": "$flow.server.url"}},
        },
    }
    settings = resolve_flow_settings(data, "web", {}, strict_flow_refs=False)
    assert settings.flow["collector"] == {"u": "$flow.server.url"}
    assert settings.warnings == [
        "$flow.server.url is empty. Set flows.server.config.url, or run `walkeros deploy server` "
        "first. (used at flows.web.collector.u)"
    ]
    assert resolve_flow_settings(data, "web", {}).flow["collector"] == {"u": ""}


def test_contract_errors_name_the_contract_path() -> None:
    data = _flow(collector={"c": "$contract.a"})
    data["contract"] = {"a": {"extend": "b"}, "b": {"extend": "a"}}
    error = _error(data)
    assert str(error) == "Circular extend chain detected: a → b → a (used at contract.b.extend)"
    data["contract"] = {"a": {"extend": "nope"}}
    assert str(_error(data)) == 'Contract "nope" not found (used at contract.a.extend)'
    data["contract"] = {"a": {"events": {"product": []}}}
    assert _error(data).path == "contract.a.events.product"


def test_a_contract_is_resolved_with_the_flows_variables_and_env() -> None:
    data = _flow(
        variables={"level": 2},
        transformers={"v": {"config": {"settings": {"contract": ["$contract.web"]}}}},
    )
    data["contract"] = {
        "web": {"events": {"page": {"view": {"minProperties": "$var.level", "$comment": "x"}}}},
        "other": {"schema": {"description": "$env.DESC:kept"}},
    }
    settings = resolve_flow_settings(data, "s", {}).flow["transformers"]["v"]["config"]
    assert settings == {
        "settings": {"contract": [{"events": {"page": {"view": {"minProperties": 2}}}}]}
    }
