"""FastEnqueueClient queues exactly what the SDK's own Client would, for any call."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from destination_segment.sdk import Client, DatetimeSerializer
from destination_segment.sdk_client import (
    MESSAGE_KEYS,
    FastEnqueueClient,
    json_copy,
    sdk_arguments,
)
from tests.cli_helpers import EXAMPLES

JSON_LEAVES = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
)
JSON = st.recursive(
    JSON_LEAVES,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
ODD = st.sampled_from([Decimal("1.5"), datetime(2024, 5, 1, tzinfo=UTC), {1: "int key"}, {3, 4}])
VALUE = JSON | ODD | st.dictionaries(st.text(max_size=5), JSON | ODD, max_size=3)
TIMESTAMP = st.sampled_from(
    [
        datetime(2024, 5, 1, 12, 30, 15, 123456, tzinfo=UTC),
        datetime(2024, 5, 1, 12, 30, 15, tzinfo=timezone(timedelta(hours=2))),
        datetime(2023, 1, 1, 0, 0, 0),  # naive: the SDK guesses the zone
    ]
)
IDS = st.none() | st.text(min_size=1, max_size=10) | st.integers(0, 10**6)


def _queued(client: Client, kind: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    queued, message = getattr(client, kind)(**copy.deepcopy(kwargs))
    assert queued
    assert client.queue.get_nowait() is message
    return message  # type: ignore[no-any-return]


def _client(cls: type[Client], queue_size: int = 10) -> Any:
    """A client that queues and never sends (no consumer thread)."""
    client = cls("key", thread=0, max_queue_size=queue_size)
    client.consumers = []  # the SDK's atexit join expects the list thread=0 does not make
    return client


def _clients() -> tuple[Client, FastEnqueueClient]:
    return _client(Client), _client(FastEnqueueClient)


@settings(max_examples=300, deadline=None)
@given(
    kind=st.sampled_from(["track", "page", "identify", "group", "screen"]),
    data=VALUE,
    context=st.dictionaries(st.text(max_size=6), VALUE, max_size=3),
    integrations=st.dictionaries(st.text(max_size=6), st.booleans(), max_size=2),
    user_id=IDS,
    anonymous_id=IDS,
    timestamp=TIMESTAMP,
)
def test_the_same_message_as_the_sdk(
    kind: str,
    data: Any,
    context: dict[str, Any],
    integrations: dict[str, bool],
    user_id: Any,
    anonymous_id: Any,
    timestamp: datetime,
) -> None:
    if not (user_id or anonymous_id):
        user_id = "u1"  # the SDK requires one
    payload = {"properties": data} if kind in ("track", "page", "screen") else {"traits": data}
    if not isinstance(data, dict):
        payload = {}
    extra = {"event": "Viewed"} if kind == "track" else {}
    extra |= {"group_id": "g1"} if kind == "group" else {}
    kwargs = {
        **payload,
        **extra,
        "context": context,
        "integrations": integrations,
        "user_id": user_id,
        "anonymous_id": anonymous_id,
        "timestamp": timestamp,
        "message_id": "m-1",
    }
    sdk, fast = _clients()
    expected = _queued(sdk, kind, kwargs)
    got = _queued(fast, kind, kwargs)
    encoded = _encoded(got)
    assert _nan_as_null(encoded) == _nan_as_null(_encoded(expected))  # keys, order, values
    size = fast.message_sizes.get(id(got))
    assert size is None or encoded == _nan_as_null(encoded)  # the fast path writes no NaN
    plain = _is_plain([payload, context]) and timestamp.tzinfo is not None
    plain = plain and all(v is None or isinstance(v, str) for v in (user_id, anonymous_id))
    # The fast path took exactly the plain messages, and recorded at least their
    # size; the SDK's own path took the others.
    assert (size is not None) == plain
    assert size is None or size >= len(encoded.encode())


def _encoded(message: Any) -> str:
    return json.dumps(message, cls=DatetimeSerializer)


def _nan_as_null(encoded: str) -> str:
    """The one difference on purpose: NaN and Infinity (not JSON) become null."""
    return _encoded(json.loads(encoded, parse_constant=lambda _constant: None))


def _is_plain(value: Any) -> bool:
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_plain(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return all(_is_plain(v) for v in value)
    if isinstance(value, int) and not isinstance(value, bool):
        return -(2**63) <= value < 2**64  # orjson's range; past it the SDK takes the message
    return value is None or isinstance(value, str | float | bool)


def test_plain_messages_take_the_fast_path_and_record_their_size() -> None:
    _sdk, fast = _clients()
    kwargs = {
        "event": "Order Completed",
        "properties": {"total": 9.5, "products": [{"id": "p1", "price": 3}], "ok": True},
        "context": {"consent": {"categoryPreferences": {"Analytics": True}}},
        "integrations": {"All": True},
        "user_id": "u1",
        "timestamp": datetime(2024, 5, 1, tzinfo=UTC),
        "message_id": "e1-track",
    }
    message = _queued(fast, "track", kwargs)
    exact = len(json.dumps(message, cls=DatetimeSerializer))
    assert exact <= fast.message_sizes[id(message)] <= exact * 1.2
    assert message["context"]["library"]["name"] == "analytics-python"
    assert "library" not in kwargs["context"]  # the caller's dict is not touched


def test_other_messages_go_through_the_sdk_unchanged() -> None:
    _sdk, fast = _clients()
    message = _queued(fast, "track", {"event": "E", "user_id": "u1", "properties": {"x": {1, 2}}})
    assert message["properties"] == {"x": [1, 2]}  # the SDK's clean turned the set into a list
    assert isinstance(message["messageId"], str)
    assert message["messageId"]  # the SDK made one (uuid4)
    assert id(message) not in fast.message_sizes


def test_a_message_over_32_kb_is_refused_with_the_sdks_error() -> None:
    _sdk, fast = _clients()
    with pytest.raises(RuntimeError, match="exceeds"):
        fast.track(
            event="E",
            user_id="u1",
            properties={"x": "y" * 40_000},
            message_id="m",
            timestamp=datetime(2024, 5, 1, tzinfo=UTC),
        )
    assert fast.queue.empty()
    assert not fast.message_sizes


def test_a_message_whose_bound_passes_32_kb_is_measured_exactly() -> None:
    _sdk, fast = _clients()
    text = "e:," * 7_000  # 21 KB, bounded at twice that
    queued, message = fast.track(
        event="E",
        user_id="u1",
        properties={"x": text},
        message_id="m",
        timestamp=datetime(2024, 5, 1, tzinfo=UTC),
    )
    assert queued
    assert fast.message_sizes[id(message)] == len(json.dumps(message, cls=DatetimeSerializer))


def test_a_full_queue_answers_false_and_forgets_the_size() -> None:
    fast = _client(FastEnqueueClient, queue_size=1)
    when = datetime(2024, 5, 1, tzinfo=UTC)
    assert fast.track(event="E", user_id="u1", message_id="m1", timestamp=when)[0]
    queued, _message = fast.track(event="E", user_id="u1", message_id="m2", timestamp=when)
    assert not queued
    assert len(fast.message_sizes) == 1


UNICODE_JSON = st.recursive(
    JSON_LEAVES | st.text(alphabet=st.characters(codec="utf-8"), max_size=12) | st.just("\x7f"),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=500)
@given(UNICODE_JSON)
def test_json_copy_is_an_equal_deep_copy_with_a_size_bound(value: Any) -> None:
    copied = json_copy({"value": value})
    if copied is None:  # orjson refused it (an integer past 64 bits): the SDK's path
        return
    message, bound = copied
    assert _encoded(message) == _nan_as_null(_encoded({"value": value}))
    if isinstance(value, dict | list) and value:
        assert message["value"] is not value
    assert bound >= len(_encoded(message).encode())


def test_nan_and_infinity_become_null_rather_than_poison_the_batch() -> None:
    _sdk, fast = _clients()
    params = {
        "userId": "u1",
        "event": "E",
        "properties": {"ratio": float("nan"), "limit": float("inf")},
        "timestamp": datetime(2024, 5, 1, tzinfo=UTC),
        "messageId": "m",
    }
    queued, message = fast.enqueue_call("track", params)
    assert queued
    assert message["properties"] == {"ratio": None, "limit": None}
    preview = FastEnqueueClient("key", send=False, sync_mode=True)
    assert preview.render("track", params) == message  # flows push shows what is sent


def test_the_size_bound_is_close_for_an_ordinary_message() -> None:
    message = json.loads((EXAMPLES / "events" / "order-complete.json").read_text())
    copied = json_copy(message)
    assert copied is not None
    exact = len(_encoded(copied[0]))
    assert exact <= copied[1] <= exact * 1.2


JSON_OBJECT = st.dictionaries(st.text(max_size=6), JSON, max_size=3)
ODD_OBJECT = st.dictionaries(st.text(max_size=6), VALUE, max_size=3)
OBJECT = st.one_of(JSON_OBJECT, JSON_OBJECT, JSON_OBJECT, st.none(), st.just([]), ODD_OBJECT)
FIELD = {  # mostly what the destination sends, sometimes what the SDK refuses or fixes
    "userId": st.sampled_from(["u1", "u1", "u1", None, "", 42]),
    "anonymousId": st.sampled_from(["a1", None, None, 0]),
    "timestamp": st.one_of(TIMESTAMP, TIMESTAMP, st.none()),
    "messageId": st.sampled_from(["m-1", "m-1", "m-1", None]),
    "context": OBJECT,
    "integrations": OBJECT,
    "properties": OBJECT,
    "traits": OBJECT,
    "event": st.sampled_from(["Order Completed", "Order Completed", None, 7]),
    "groupId": st.sampled_from(["g1", "g1", None, 3]),
    "name": st.sampled_from(["Home", "Home", None, 0, 5]),
    "category": st.sampled_from(["Docs", None, ""]),
}


@st.composite
def calls(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    """A call type and its fields; now and then a field the method does not take."""
    kind = draw(st.sampled_from(sorted(MESSAGE_KEYS)))
    names = [name for name in MESSAGE_KEYS[kind] if name != "type"]
    if draw(st.integers(0, 9)) == 0:
        names.append(draw(st.sampled_from(sorted(FIELD))))
    return kind, {name: draw(FIELD[name]) for name in names}


def _outcome(enqueue: Any) -> tuple[str, Any]:
    """What an enqueue did: the queued message's JSON, or the error it raised."""
    try:
        queued, message = enqueue()
    except Exception as error:
        return "raised", type(error).__name__
    return "queued" if queued else "refused", _nan_as_null(_encoded(message))


@settings(max_examples=400, deadline=None)
@given(calls())
def test_enqueue_call_does_what_the_sdk_method_does(call: tuple[str, dict[str, Any]]) -> None:
    kind, params = call
    sdk, fast = _clients()
    expected = _outcome(lambda: getattr(sdk, kind)(**sdk_arguments(copy.deepcopy(params))))
    got = _outcome(lambda: fast.enqueue_call(kind, copy.deepcopy(params)))
    event(f"{got[0]}, fast path: {bool(fast.message_sizes)}")
    # Left to the SDK, these are a random uuid4 and the time of the call.
    made = {k: None for k in ("messageId", "timestamp") if params[k] is None}
    if made and expected[0] == "queued":
        expected = (expected[0], json.loads(expected[1]) | made)
        got = (got[0], json.loads(got[1]) | made)
    assert got == expected


def test_enqueue_call_takes_the_destinations_calls_on_the_fast_path() -> None:
    _sdk, fast = _clients()
    params = {
        "userId": "u1",
        "event": "Order Completed",
        "properties": {"total": 9.5},
        "timestamp": datetime(2024, 5, 1, tzinfo=UTC),
        "context": {"consent": {"categoryPreferences": {"Analytics": True}}},
        "integrations": {"All": True},
        "messageId": "e1-track",
    }
    queued, message = fast.enqueue_call("track", params)
    assert queued
    assert id(message) in fast.message_sizes  # measured here, not by the SDK's own path
    assert list(message) == list(MESSAGE_KEYS["track"])


@settings(max_examples=200, deadline=None)
@given(calls())
def test_render_shows_what_enqueue_call_queues(call: tuple[str, dict[str, Any]]) -> None:
    kind, params = call
    _sdk, fast = _clients()
    preview = FastEnqueueClient("key", send=False, sync_mode=True)
    queued = _outcome(lambda: fast.enqueue_call(kind, copy.deepcopy(params)))
    rendered = _outcome(lambda: (True, preview.render(kind, copy.deepcopy(params))))
    made = {k: None for k in ("messageId", "timestamp") if params[k] is None}
    if made and queued[0] == "queued":
        queued = (queued[0], json.loads(queued[1]) | made)
        rendered = (rendered[0], json.loads(rendered[1]) | made)
    assert rendered == queued
