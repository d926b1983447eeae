"""``flows test``: run every step's ``examples`` (in -> out) and say which hold.

walkerOS step examples are a step's executable contract. Each runs through
its step alone, on a flow built exactly as ``flows run`` builds it:

- a source example's ``in`` is a request (``{method, path, headers, body}``);
  ``out`` is the event the source makes of the body (before the collector
  adds ``id``, ``timestamp`` and the rest);
- a transformer example's ``in`` is an event, ``out`` the event after the
  step, or ``false`` when the step stops it (a strict refusal counts as
  ``false``); ``ingest`` (our addition) is the request it came with;
- a destination example's ``in`` is an event, ``out`` what the destination
  would send (the lines ``flows push`` prints for it), in order; keys an
  expected message leaves out are not compared (``context.library`` names the
  SDK's version, which is not the flow's business); ``[]`` or ``false`` (as
  walkerOS writes it) says the event sends nothing: skipped for consent, an
  ``ignore`` rule, no identity;
- ``"chain": true`` on a source or transformer example runs the step and the
  chain after it (``next``), as the event would go on to the destinations.
"""

from __future__ import annotations

import copy
import difflib
import json
from dataclasses import dataclass
from typing import Any

from collector.chain import Chain, StepRejected
from collector.destination import EventRejected
from collector.event import EventValidationError, validate_event
from collector.route import is_static
from collector.transformer import TransformerContext
from flows.graph import Flow, preview_destination

PASS = "pass"
FAIL = "fail"
SKIP = "skip"


@dataclass(slots=True)
class ExampleResult:
    """One example's outcome; ``detail`` is a diff or the reason on a failure or skip."""

    step: str
    example: str
    status: str
    detail: str = ""


def run_examples(flow: Flow) -> list[ExampleResult]:
    """Every example of every step of ``flow``, in file order."""
    results: list[ExampleResult] = []
    for step, examples in flow.examples.items():
        kind, _, step_id = step.partition(".")
        for name, example in examples.items():
            try:
                results.append(_run(flow, kind, step_id, step, name, example))
            except Exception as error:  # a step that crashes is a failing example, not a crash
                results.append(
                    ExampleResult(step, name, FAIL, f"raised {type(error).__name__}: {error}")
                )
    return results


def _run(
    flow: Flow, kind: str, step_id: str, step: str, name: str, example: dict[str, Any]
) -> ExampleResult:
    given = copy.deepcopy(example.get("in"))
    expected = example.get("out")
    chained = bool(example.get("chain"))
    if kind == "sources":
        actual = _source_out(flow, step_id, given, chained)
    elif kind == "transformers":
        ingest = dict(example.get("ingest") or {})
        actual = _transformer_out(flow, step_id, given, chained, ingest)
    elif kind == "destinations":
        actual = _destination_out(flow, step_id, given)
    else:
        return ExampleResult(step, name, SKIP, f"examples of {kind} are not run")
    actual = _plain(actual)
    if kind == "destinations":
        if expected is False or expected == []:  # walkerOS: this event sends nothing
            expected = []
            actual = [line for line in actual if "skipped" not in line]
        actual = _only_named(_plain(expected), actual)
    return _compare(step, name, _plain(expected), actual)


def _source_out(flow: Flow, source_id: str, request: Any, chained: bool) -> Any:
    body = request.get("body") if isinstance(request, dict) else request
    try:
        event: Any = validate_event(body)
    except EventValidationError as error:
        return {"rejected": [f"{e.path}: {e.reason}" for e in error.errors]}
    source = flow.sources[source_id]
    if chained and source.chain is not None:
        return _run_chain(source.chain, dict(event), _ingest_of(request))
    return dict(event)


def _transformer_out(
    flow: Flow, transformer_id: str, event: Any, chained: bool, ingest: dict[str, Any]
) -> Any:
    step = flow.transformers[transformer_id]
    if chained:
        return _run_chain(Chain([step, *_following(flow, transformer_id)]), event, ingest)
    context = TransformerContext(ingest, step.logger, step.id, step.stores)
    try:
        result = step.push(event, context)
    except EventRejected:
        return False
    if result is False:
        return False
    return event if result is None or result is True else result


def _following(flow: Flow, transformer_id: str) -> list[Any]:
    """The steps the chain runs after ``transformer_id`` (its ``next`` links)."""
    from collector.chain import chain_ids

    links = flow.links
    following = links.get(transformer_id)
    routed = [link for link in links.values() if link is not None and not is_static(link)]
    if routed:
        raise ValueError("chain examples run over chains of step ids, not route objects")
    ids = chain_ids(following, links, f"transformers.{transformer_id}.next")
    return [flow.transformers[i] for i in ids if i != transformer_id]


def _run_chain(chain: Chain, event: Any, ingest: dict[str, Any]) -> Any:
    try:
        result = chain.run(event, ingest)
    except StepRejected:
        return False
    return False if result is None else result


def _destination_out(flow: Flow, destination_id: str, event: Any) -> Any:
    prepared = flow.collector.prepare(event)
    return preview_destination(flow.destination(destination_id), prepared)


def _ingest_of(request: Any) -> dict[str, Any]:
    if not isinstance(request, dict):
        return {}
    headers = request.get("headers") or {}
    return {
        "method": request.get("method", "POST"),
        "path": request.get("path", ""),
        "headers": headers,
        "userAgent": headers.get("user-agent"),
    }


def _only_named(expected: Any, actual: Any) -> Any:
    """``actual`` without the object keys ``expected`` leaves out (at every depth)."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        return {
            key: _only_named(expected[key], value) if key in expected else value
            for key, value in actual.items()
            if key in expected
        }
    if isinstance(expected, list) and isinstance(actual, list) and len(expected) == len(actual):
        return [_only_named(want, got) for want, got in zip(expected, actual, strict=True)]
    return actual


def _plain(value: Any) -> Any:
    """JSON's view of a value (tuples are lists), so equal documents compare equal."""
    return json.loads(json.dumps(value, default=str))


def _compare(step: str, name: str, expected: Any, actual: Any) -> ExampleResult:
    if expected == actual:
        return ExampleResult(step, name, PASS)
    want = json.dumps(expected, indent=1, sort_keys=True).splitlines()
    got = json.dumps(actual, indent=1, sort_keys=True).splitlines()
    diff = "\n".join(difflib.unified_diff(want, got, "expected out", "actual", lineterm="", n=2))
    return ExampleResult(step, name, FAIL, diff)


def render_table(results: list[ExampleResult]) -> str:
    """A table a person reads: step, example, result; each failure's diff below it."""
    if not results:
        return "no step examples in this flow"
    width_step = max(len("step"), *(len(r.step) for r in results))
    width_name = max(len("example"), *(len(r.example) for r in results))
    lines = [f"{'step':<{width_step}}  {'example':<{width_name}}  result"]
    for result in results:
        lines.append(
            f"{result.step:<{width_step}}  {result.example:<{width_name}}  {result.status}"
        )
        if result.detail:
            lines += [f"    {line}" for line in result.detail.splitlines()]
    passed = sum(r.status == PASS for r in results)
    failed = sum(r.status == FAIL for r in results)
    lines.append(f"{passed} passed, {failed} failed, {len(results) - passed - failed} skipped")
    return "\n".join(lines)
