"""The contract with segment-analytics-python: every SDK name, method and attribute the
Segment destination uses or overrides, checked against the installed release.

``FastEnqueueClient`` and ``ShutdownSafeConsumer`` override private SDK
methods and read private attributes. A release that renames one would not
break anything loudly: the override would just stop being called (batches
lost at shutdown, double counting, a slower path). So each thing relied on is
one check here, and a broken one says which release changed what; the fix
starts in ``destination_segment/sdk.py``, the only module importing the SDK
(``test_only_the_seam_imports_the_sdk``). The checks run against a ``Sdk`` of
module objects, so the last tests can hand them a doctored SDK and see them fail.
"""

from __future__ import annotations

import ast
import atexit
import dataclasses
import inspect
import json
import queue
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import segment.analytics.client
import segment.analytics.consumer
import segment.analytics.request
import segment.analytics.version

from destination_segment import sdk
from destination_segment.sdk_client import MESSAGE_KEYS, sdk_arguments

ROOT = Path(__file__).resolve().parents[1]
SEAM = "destination_segment/sdk.py"


@dataclasses.dataclass(frozen=True)
class Sdk:
    """The SDK modules the seam imports from."""

    client: Any
    consumer: Any
    request: Any
    version: Any


INSTALLED = Sdk(
    segment.analytics.client,
    segment.analytics.consumer,
    segment.analytics.request,
    segment.analytics.version,
)


class Broken(Exception):  # noqa: N818  # a finding, as the message reads
    """``what`` changed: ``detail`` says how."""

    def __init__(self, what: str, detail: str) -> None:
        super().__init__(what, detail)
        self.what = what
        self.detail = detail


@dataclasses.dataclass(frozen=True)
class Check:
    name: str
    run: Callable[[Sdk], None]


def problem(check: Check, found: Sdk) -> str | None:
    """The failure message of ``check`` against ``found``, or None when it holds."""
    try:
        check.run(found)
    except Broken as broken:
        what, detail = broken.what, broken.detail
    except Exception as error:  # the check itself could not run: as loud a change
        what, detail = check.name, f"checking it raised {type(error).__name__}: {error}"
    else:
        return None
    release = getattr(found.version, "VERSION", None) or version("segment-analytics-python")
    return f"segment-analytics-python {release} changed {what}: {detail}; {SEAM} must follow"


def problems(found: Sdk) -> list[str]:
    return [text for check in CHECKS if (text := problem(check, found)) is not None]


# -- how things are checked ------------------------------------------------------------------


def attribute(owner: Any, owner_name: str, name: str) -> Any:
    if not hasattr(owner, name):
        raise Broken(f"{owner_name}.{name}", "it is gone")
    return getattr(owner, name)


def parameters(function: Callable[..., Any]) -> list[str]:
    return [p for p in inspect.signature(function).parameters if p != "self"]


def has_name(module: str, name: str) -> Check:
    """``module.name`` exists (the seam imports it)."""

    def run(found: Sdk) -> None:
        attribute(getattr(found, module), module, name)

    return Check(f"{module}.{name}", run)


def method(module: str, cls: str, name: str, params: list[str]) -> Check:
    """``cls.name`` exists with exactly these parameters: we override or call it so."""

    def run(found: Sdk) -> None:
        owner = attribute(getattr(found, module), module, cls)
        function = attribute(owner, cls, name)
        if not callable(function):
            raise Broken(f"{cls}.{name}", "it is no longer a method")
        if parameters(function) != params:
            raise Broken(
                f"{cls}.{name}", f"its parameters are now {parameters(function)}, not {params}"
            )

    return Check(f"{cls}.{name}({', '.join(params)})", run)


def accepts(module: str, owner: str | None, name: str, keywords: list[str]) -> Check:
    """``owner.name`` (a function when owner is None) takes each of ``keywords``."""

    def run(found: Sdk) -> None:
        home = getattr(found, module)
        where = home if owner is None else attribute(home, module, owner)
        function = attribute(where, owner or module, name)
        signature = inspect.signature(function)
        taken = set(signature.parameters)
        missing = [k for k in keywords if k not in taken]
        if missing:
            raise Broken(f"{owner or module}.{name}", f"it no longer takes {missing}")

    label = f"{owner or module}.{name} takes {', '.join(keywords)}"
    return Check(label, run)


def calls(module: str, cls: str | None, name: str, needles: list[str]) -> Check:
    """The SDK's own ``name`` still calls what we override (``self.request(`` ...)."""

    def run(found: Sdk) -> None:
        home = getattr(found, module)
        where = home if cls is None else attribute(home, module, cls)
        source = inspect.getsource(attribute(where, cls or module, name))
        for needle in needles:
            if needle not in source:
                raise Broken(
                    f"{cls or module}.{name}", f"it no longer calls {needle!r}, which we override"
                )

    return Check(f"{cls or module}.{name} calls {', '.join(needles)}", run)


def behaves(name: str, run: Callable[[Sdk], None]) -> Check:
    return Check(name, run)


# -- what is relied on -----------------------------------------------------------------------


def _constants(found: Sdk) -> None:
    size = attribute(found.consumer, "consumer", "MAX_MSG_SIZE")
    if size != 32 << 10:
        raise Broken("MAX_MSG_SIZE", f"it is {size}, our errors say 32 KB (32768)")
    limit = attribute(found.consumer, "consumer", "BATCH_SIZE_LIMIT")
    if not isinstance(limit, int) or not 0 < limit <= 500_000:
        raise Broken("BATCH_SIZE_LIMIT", f"it is {limit!r}, not bytes under Segment's 500 KB")
    release = attribute(found.version, "version", "VERSION")
    if not isinstance(release, str):
        raise Broken("version.VERSION", f"it is {release!r}, not a version string")


def _loggers(found: Sdk) -> None:
    """The write-key redaction sits on one logger: every SDK part must log there."""
    client = attribute(found.client, "client", "Client")
    consumer = attribute(found.consumer, "consumer", "Consumer")
    for owner, name in ((client, "Client"), (consumer, "Consumer")):
        logger = attribute(owner, name, "log")
        if getattr(logger, "name", None) != sdk.SDK_LOGGER:
            raise Broken(f"{name}.log", f"it logs on {getattr(logger, 'name', logger)!r}")
    post = inspect.getsource(attribute(found.request, "request", "post"))
    if f'getLogger("{sdk.SDK_LOGGER}")' not in post:
        raise Broken("request.post", f"it no longer logs on {sdk.SDK_LOGGER!r}")


def _post_path(found: Sdk) -> None:
    source = inspect.getsource(attribute(found.request, "request", "post"))
    if f'"{sdk.SDK_BATCH_PATH}"' not in source:
        raise Broken("request.post", f"it no longer posts to {{host}}{sdk.SDK_BATCH_PATH}")


def _consumer_attributes(found: Sdk) -> None:
    """What ShutdownSafeConsumer reads and sets on itself; pause() stops its loop."""
    consumer_class = attribute(found.consumer, "consumer", "Consumer")
    if not issubclass(consumer_class, threading.Thread):
        raise Broken("Consumer", "it is no longer a Thread (we start, join and is_alive it)")
    handed: queue.Queue[Any] = queue.Queue()
    consumer = consumer_class(handed, "key", upload_size=7, upload_interval=0.25)
    for name, wanted in (
        ("queue", handed),
        ("upload_size", 7),
        ("upload_interval", 0.25),
        ("running", True),
        ("on_error", None),
    ):
        if getattr(consumer, name, "<missing>") != wanted:
            raise Broken(
                f"Consumer.{name}",
                f"a new Consumer has {name}={getattr(consumer, name, '<missing>')!r}",
            )
    consumer.pause()
    if consumer.running:
        raise Broken("Consumer.pause", "it no longer clears running")


def _client_attributes(found: Sdk) -> None:
    """What FastEnqueueClient and SegmentClient read; thread=0 starts no consumer."""
    client_class = attribute(found.client, "client", "Client")
    before = threading.active_count()
    client = client_class(write_key="key", send=True, thread=0, max_queue_size=0)
    atexit.unregister(client.join)  # as SegmentClient does; it has no consumers to join
    if threading.active_count() != before:
        raise Broken("Client(thread=0)", "it starts a consumer thread")
    if not isinstance(getattr(client, "queue", None), queue.Queue):
        raise Broken("Client.queue", "it is no longer a queue.Queue (we put, drain and join it)")
    for name in ("send", "sync_mode", "log", "join"):
        attribute(client, "Client", name)


def _messages(found: Sdk) -> None:
    """The SDK's methods return (queued, message) with our keys in our order and the library."""
    client = attribute(found.client, "client", "Client")(
        write_key="key", send=False, sync_mode=True
    )
    fields = {
        "track": {"event": "e"},
        "group": {"groupId": "g"},
        "page": {"name": "n"},
        "screen": {"name": "n"},
    }
    for kind, keys in MESSAGE_KEYS.items():
        params = {"userId": "u", "messageId": "m", **fields.get(kind, {})}
        result = attribute(client, "Client", kind)(**sdk_arguments(params))
        if not (isinstance(result, tuple) and len(result) == 2 and isinstance(result[1], dict)):
            raise Broken(
                f"Client.{kind}", f"it returns {type(result).__name__}, not (queued, message)"
            )
        message = result[1]
        if tuple(message) != keys:
            raise Broken(
                f"Client.{kind}",
                f"its message keys are now {list(message)}, not {list(keys)} (sdk_client.MESSAGE_KEYS)",
            )
        if message["context"].get("library") != sdk.LIBRARY:
            raise Broken(
                "Client._enqueue", f"context.library is {message['context'].get('library')!r}"
            )


def _refusals(found: Sdk) -> None:
    """CallRejected and MessageTooLargeError stand in for what the SDK raises."""
    client = attribute(found.client, "client", "Client")(write_key="key", send=False)
    try:
        client.track(user_id="u", event=None)
    except AssertionError:
        pass
    else:
        raise Broken("Client.track", "a bad field no longer raises AssertionError")
    try:
        client.track(user_id="u", event="e", properties={"x": "a" * (40 << 10)})
    except RuntimeError as error:
        if error.args[:2] != ("Message exceeds %skb limit. (%s)", "32"):
            raise Broken(
                "Client._enqueue", f"the size error's arguments are now {error.args[:2]}"
            ) from None
    else:
        raise Broken("Client._enqueue", "a message over 32 KB no longer raises RuntimeError")


def _encoder(found: Sdk) -> None:
    """SDK_ENCODER's length is the SDK's byte count: ASCII JSON, datetimes as isoformat."""
    encoder_class = attribute(found.request, "request", "DatetimeSerializer")
    when = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    if not issubclass(encoder_class, json.JSONEncoder):
        raise Broken("request.DatetimeSerializer", "it is no longer a json.JSONEncoder")
    encoded = encoder_class().encode({"t": when, "s": "ü"})
    if encoded != '{"t": "2024-05-01T12:00:00+00:00", "s": "\\u00fc"}':
        raise Broken("request.DatetimeSerializer", f"it now encodes as {encoded}")


CHECKS = [
    has_name("client", "Client"),
    has_name("consumer", "Consumer"),
    has_name("consumer", "MAX_MSG_SIZE"),
    has_name("consumer", "BATCH_SIZE_LIMIT"),
    has_name("request", "post"),
    has_name("request", "DatetimeSerializer"),
    has_name("version", "VERSION"),
    behaves("constants", _constants),
    behaves("the SDK logs on one logger", _loggers),
    behaves("post appends /v1/batch", _post_path),
    # ShutdownSafeConsumer: what it overrides, and that the SDK still calls it.
    method("consumer", "Consumer", "upload", []),
    method("consumer", "Consumer", "request", ["batch"]),
    method("consumer", "Consumer", "next", []),
    method("consumer", "Consumer", "_requeue", ["batch"]),
    method("consumer", "Consumer", "pause", []),
    calls("consumer", "Consumer", "run", ["self.upload()"]),
    calls(
        "consumer",
        "Consumer",
        "upload",
        [
            "self.next()",
            "self.request(batch)",
            "self._requeue(batch)",
            "self.on_error(",
            "task_done()",
        ],
    ),
    calls("consumer", "Consumer", "_requeue", ["self.on_error("]),
    accepts(
        "consumer",
        "Consumer",
        "__init__",
        [
            "queue",
            "write_key",
            "host",
            "on_error",
            "upload_size",
            "upload_interval",
            "gzip",
            "retries",
            "timeout",
            "max_total_backoff_duration",
            "max_rate_limit_duration",
        ],
    ),
    behaves("Consumer attributes", _consumer_attributes),
    # FastEnqueueClient: what it overrides and calls, and what SegmentClient sets up.
    method("client", "Client", "_enqueue", ["msg"]),
    *(calls("client", "Client", kind, ["self._enqueue("]) for kind in MESSAGE_KEYS),
    *(
        accepts("client", "Client", kind, [*sdk_arguments({k: 1 for k in keys if k != "type"})])
        for kind, keys in MESSAGE_KEYS.items()
    ),
    accepts(
        "client",
        "Client",
        "__init__",
        [
            "write_key",
            "host",
            "on_error",
            "gzip",
            "upload_size",
            "upload_interval",
            "max_retries",
            "timeout",
            "max_queue_size",
            "send",
            "thread",
            "sync_mode",
        ],
    ),
    calls("client", "Client", "__init__", ["atexit.register(self.join)"]),
    calls("client", "Client", "join", ["self.consumers"]),
    behaves("Client attributes", _client_attributes),
    behaves("Client methods' messages", _messages),
    behaves("Client refusals", _refusals),
    # replay, check and the consumer's batch sizes.
    accepts("request", None, "post", ["write_key", "host", "gzip", "timeout"]),
    behaves("DatetimeSerializer", _encoder),
]


@pytest.mark.parametrize("check", CHECKS, ids=[check.name for check in CHECKS])
def test_the_installed_sdk_keeps_the_contract(check: Check) -> None:
    found = problem(check, INSTALLED)
    assert found is None, found


def test_post_takes_the_batch_as_a_keyword() -> None:
    kinds = {p.kind for p in inspect.signature(segment.analytics.request.post).parameters.values()}
    assert inspect.Parameter.VAR_KEYWORD in kinds, "post(..., batch=[...]) is how we post"


def test_the_seam_hands_out_the_sdk_s_own_objects() -> None:
    assert sdk.Client is segment.analytics.client.Client
    assert sdk.Consumer is segment.analytics.consumer.Consumer
    assert sdk.post is segment.analytics.request.post
    assert sdk.DatetimeSerializer is segment.analytics.request.DatetimeSerializer
    assert (sdk.MAX_MSG_SIZE, sdk.BATCH_SIZE_LIMIT) == (
        segment.analytics.consumer.MAX_MSG_SIZE,
        segment.analytics.consumer.BATCH_SIZE_LIMIT,
    )
    assert sdk.VERSION == segment.analytics.version.VERSION == version("segment-analytics-python")
    assert sdk.sdk_logger().name == sdk.SDK_LOGGER


def sdk_imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = (
            [alias.name for alias in node.names]
            if isinstance(node, ast.Import)
            else [node.module or ""]
            if isinstance(node, ast.ImportFrom)
            else []
        )
        found += [name for name in names if name == "segment" or name.startswith("segment.")]
    return found


def test_only_the_seam_imports_the_sdk() -> None:
    importers = {
        path.relative_to(ROOT).as_posix()
        for package in ("collector", "destination_segment", "flows")
        for path in (ROOT / package).rglob("*.py")
        if sdk_imports(path)
    }
    assert importers == {SEAM}


# -- the checks fail, and say so ---------------------------------------------------------------


def without(cls: type, name: str, **replacing: Any) -> type:
    """A copy of ``cls`` without ``name`` (and with ``replacing``), as a release might ship it."""
    body = {k: v for k, v in vars(cls).items() if k not in (name, "__dict__", "__weakref__")}
    return type(cls.__name__, cls.__bases__, {**body, **replacing})


def module_with(module: Any, **replacing: Any) -> SimpleNamespace:
    return SimpleNamespace(**{**vars(module), **replacing})


def test_a_renamed_override_fails_loudly() -> None:
    renamed = without(segment.analytics.consumer.Consumer, "request")
    doctored = dataclasses.replace(
        INSTALLED, consumer=module_with(segment.analytics.consumer, Consumer=renamed)
    )
    release = segment.analytics.version.VERSION
    found = problems(doctored)
    assert (
        f"segment-analytics-python {release} changed Consumer.request: it is gone; "
        "destination_segment/sdk.py must follow"
    ) in found
    assert problems(INSTALLED) == []


class _Drifted:
    def upload(self) -> bool:
        """An upload that sends through a renamed method: our request override is bypassed."""
        batch = self.next()
        self._send(batch)
        return True

    def next(self) -> list[Any]:
        return []

    def _send(self, batch: list[Any]) -> None:
        pass


def test_an_sdk_that_stops_calling_an_override_fails_loudly() -> None:
    drifted = without(segment.analytics.consumer.Consumer, "upload", upload=_Drifted.upload)
    doctored = dataclasses.replace(
        INSTALLED, consumer=module_with(segment.analytics.consumer, Consumer=drifted)
    )
    assert any(
        "changed Consumer.upload: it no longer calls 'self.request(batch)', which we override"
        in text
        for text in problems(doctored)
    )


def test_a_changed_signature_or_constant_fails_loudly() -> None:
    def post(write_key: str, host: str | None = None, **kwargs: Any) -> None:
        """A post that lost its gzip and timeout parameters."""

    doctored = dataclasses.replace(
        INSTALLED,
        request=module_with(segment.analytics.request, post=post),
        consumer=module_with(segment.analytics.consumer, MAX_MSG_SIZE=64 << 10),
    )
    found = problems(doctored)
    assert any("changed request.post: it no longer takes ['gzip', 'timeout']" in t for t in found)
    assert any("changed MAX_MSG_SIZE: it is 65536, our errors say 32 KB" in t for t in found)
    assert all(t.endswith("destination_segment/sdk.py must follow") for t in found)
