"""The SDK's Client with a cheaper enqueue for the messages this destination makes.

``Client._enqueue`` of segment-analytics-python 2.4 copies every message with
``clean`` (an ABC ``isinstance`` per value), encodes it to JSON to check the
32 KB limit, and the consumer encodes it once more to size its batch: about
half of the SDK's cost per message, on the thread that serves requests.

For a message made only of JSON types (str, int, float, bool, None, dict
with str keys, list, tuple), an aware timestamp, a str messageId and str ids,
which is every message the destination builds, ``FastEnqueueClient`` produces
the same dict, in the same key order: from the SDK method's own input
(``_enqueue``), or straight from the call's fields (``enqueue_call``, which
also skips the method's argument shuffling). One orjson encoding gives both
the copy (decoded again) and a bound above the SDK's size (``json_copy``);
only a message whose bound passes 32 KB is encoded the SDK's way to decide;
the size is left in ``message_sizes`` for the consumer
(``ShutdownSafeConsumer``), so a batch never passes the SDK's byte limit
(it may close a little earlier). Anything else (other value types, a naive or
missing timestamp, ``send=False``, ``sync_mode``) goes through the SDK's method
and ``_enqueue`` unchanged; a message over 32 KB is refused with the SDK's
error. One difference is on purpose: a NaN or Infinity becomes null (see
``json_copy``). ``tests/test_sdk_client.py`` checks the two give equal
messages and that the bound holds.
"""

from __future__ import annotations

import logging
import queue
from datetime import datetime
from typing import Any, TypeGuard

import orjson

from destination_segment.sdk import LIBRARY, MAX_MSG_SIZE, Client, DatetimeSerializer

SDK_ENCODER = DatetimeSerializer()
"""The encoder ``json.dumps(item, cls=DatetimeSerializer)`` builds on every call, built once.

Its output is ASCII (``ensure_ascii``), so its length is the SDK's byte count.
"""

_SNAKE = {
    "userId": "user_id",
    "anonymousId": "anonymous_id",
    "groupId": "group_id",
    "messageId": "message_id",
}

MESSAGE_KEYS: dict[str, tuple[str, ...]] = {
    "track": (
        "integrations", "anonymousId", "properties", "timestamp", "context",
        "userId", "type", "event", "messageId",
    ),
    "identify": (
        "integrations", "anonymousId", "timestamp", "context", "type", "userId", "traits",
        "messageId",
    ),
    "group": (
        "integrations", "anonymousId", "timestamp", "groupId", "context", "userId", "traits",
        "type", "messageId",
    ),
    "page": (
        "integrations", "anonymousId", "properties", "timestamp", "category", "context",
        "userId", "type", "name", "messageId",
    ),
}  # fmt: skip
"""The keys of each call's message, in the order the SDK's methods build them."""
MESSAGE_KEYS["screen"] = MESSAGE_KEYS["page"]

_FIELDS = {kind: frozenset(keys) - {"type"} for kind, keys in MESSAGE_KEYS.items()}
"""The fields each SDK method takes (as keyword arguments, in snake_case)."""
_TEXTS = {"track": "event", "group": "groupId"}
"""The field a call requires as text (optional ``name``/``category`` are checked apart)."""

_AS_IS, _OBJECT, _CONTEXT, _TYPE, _TIMESTAMP = range(5)


def _slot(key: str) -> int:
    """How a message key's value is made from the call's fields."""
    if key == "context":
        return _CONTEXT
    if key in ("integrations", "properties", "traits"):  # the SDK defaults these to {}
        return _OBJECT
    if key == "type":
        return _TYPE
    if key == "timestamp":
        return _TIMESTAMP
    return _AS_IS


_SLOTS = {kind: tuple((key, _slot(key)) for key in keys) for kind, keys in MESSAGE_KEYS.items()}
"""Each message key with how its value is made, worked out once."""


def sdk_arguments(params: dict[str, Any]) -> dict[str, Any]:
    """The SDK method's keyword arguments for message fields (camelCase -> snake_case)."""
    kwargs: dict[str, Any] = {}
    for key, value in params.items():
        if value is None:
            continue
        if key == "context" and isinstance(value, dict):  # the SDK adds context.library
            value = {k: (dict(v) if isinstance(v, dict) else v) for k, v in value.items()}
        kwargs[_SNAKE.get(key, key)] = value
    return kwargs


class FastEnqueueClient(Client):  # type: ignore[misc]  # the SDK is untyped
    """``Client`` whose enqueue is equal to the SDK's and cheaper for plain JSON messages."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.message_sizes: dict[int, int] = {}
        """Encoded size (or a bound above it) of each queued message, by ``id``; the consumer pops it."""

    def enqueue_call(self, kind: str, params: dict[str, Any]) -> tuple[bool, dict[str, Any]]:
        """What ``getattr(self, kind)(**sdk_arguments(params))`` does, in one pass.

        ``params`` are the message's fields (camelCase). Whatever the fast path
        does not take goes to that SDK method, with its checks and errors.
        """
        copied = self._copied(kind, params) if self.send and not self.sync_mode else None
        if copied is None:
            return getattr(self, kind)(**sdk_arguments(params))  # type: ignore[no-any-return]
        return self._queue(*copied)

    def stage(self, kind: str, params: dict[str, Any]) -> tuple[dict[str, Any], int]:
        """The message ``enqueue_call`` would queue and its size, queueing nothing yet.

        Raises what ``enqueue_call`` would (a message over 32 KB, a bad id), so
        every message of an event can be checked before any is queued (``put``).
        """
        copied = self._copied(kind, params) if self.send and not self.sync_mode else None
        if copied is None:  # only the SDK's own method knows this message: let it build it
            message = preview_client()._sdk_message(kind, params)
            return message, len(SDK_ENCODER.encode(message))
        message, bound = copied
        return message, _checked_size(message, bound)

    def put(self, message: dict[str, Any], size: int) -> bool:
        """Queue a message ``stage`` made; False when the queue is full."""
        key = id(message)
        self.message_sizes[key] = size
        try:
            self.queue.put(message, block=False)
        except queue.Full:
            self.message_sizes.pop(key, None)
            self.log.warning("analytics-python queue is full")
            return False
        if self.log.isEnabledFor(logging.DEBUG):
            self.log.debug("enqueued %s: %s", message["type"], message)
        return True

    def render(self, kind: str, params: dict[str, Any]) -> dict[str, Any]:
        """The message ``enqueue_call`` would queue for these fields, queueing nothing.

        For a client made with ``send=False``: the SDK's own path then returns
        its message without queueing it. Raises what ``enqueue_call`` would.
        """
        copied = self._copied(kind, params)
        if copied is None:
            return self._sdk_message(kind, params)
        message, bound = copied
        _checked_size(message, bound)
        return message

    def _sdk_message(self, kind: str, params: dict[str, Any]) -> dict[str, Any]:
        """The message the SDK's own ``kind`` method builds (queued only when ``send``)."""
        _queued, message = getattr(self, kind)(**sdk_arguments(params))
        return message  # type: ignore[no-any-return]

    def _copied(self, kind: str, params: dict[str, Any]) -> tuple[dict[str, Any], int] | None:
        message = self._built(kind, params)
        return None if message is None else json_copy(message)

    def _enqueue(self, msg: dict[str, Any]) -> tuple[bool, dict[str, Any]]:
        message = self._prepared(msg)
        copied = None if message is None else json_copy(message)
        if copied is None:
            return super()._enqueue(msg)  # type: ignore[no-any-return]
        return self._queue(*copied)

    def _queue(self, message: dict[str, Any], bound: int) -> tuple[bool, dict[str, Any]]:
        """Queue a message the fast path copied; ``bound`` is above its encoded size."""
        return self.put(message, _checked_size(message, bound)), message

    def _built(self, kind: str, params: dict[str, Any]) -> dict[str, Any] | None:
        """The message the SDK's ``kind`` method would queue for ``params`` (not yet copied),
        or None."""
        fields = _FIELDS.get(kind)
        if fields is None or not params.keys() <= fields:
            return None
        text = _TEXTS.get(kind)
        user_id = params.get("userId")
        anonymous_id = params.get("anonymousId")
        timestamp = params.get("timestamp")
        if (
            not (user_id or anonymous_id)
            or not _plain_envelope(timestamp, params.get("messageId"), user_id, anonymous_id)
            or (text is not None and type(params.get(text)) is not str)
            or not _is_id(params.get("name"))
            or not _is_id(params.get("category"))
        ):
            return None
        message: dict[str, Any] = {}
        for key, slot in _SLOTS[kind]:
            if slot == _AS_IS:
                message[key] = params.get(key)
            elif slot == _TYPE:
                message[key] = kind
            elif slot == _TIMESTAMP:
                message[key] = timestamp.isoformat(timespec="milliseconds")
            else:
                value = params.get(key) or {}
                if type(value) is not dict:
                    return None
                message[key] = {**value, "library": LIBRARY} if slot == _CONTEXT else value
        return message

    def _prepared(self, msg: dict[str, Any]) -> dict[str, Any] | None:
        """The message the SDK would queue (not yet copied), or None where only the SDK knows.

        ``msg`` itself is left untouched, for the SDK if the copy fails.
        """
        if not self.send or self.sync_mode:
            return None
        timestamp = msg["timestamp"]
        if (
            not _plain_envelope(
                timestamp, msg.get("messageId"), msg.get("userId"), msg.get("anonymousId")
            )
            or type(msg["type"]) is not str
            or type(msg["integrations"]) is not dict
            or type(msg["context"]) is not dict
        ):
            return None
        message = dict(msg)
        message["timestamp"] = timestamp.isoformat(timespec="milliseconds")
        message["context"] = {**msg["context"], "library": LIBRARY}
        message.setdefault("userId", None)
        message.setdefault("anonymousId", None)
        return message


_ASCII = bytes(range(128))


_EXACT_TYPES = (
    orjson.OPT_PASSTHROUGH_SUBCLASS
    | orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_DATACLASS
)
"""orjson refuses what ``clean`` would turn into something else (subclasses, datetimes,
dataclasses): such messages go to the SDK."""


def json_copy(message: dict[str, Any]) -> tuple[dict[str, Any], int] | None:
    """A deep copy of ``message`` through orjson, and a bound above the SDK's encoded size.

    None when orjson refuses a value (a type ``clean`` would convert, an integer
    past 64 bits, a key that is not text). The copy equals what ``clean`` makes,
    with one difference on purpose: a float NaN or Infinity becomes null, where
    the SDK would write ``NaN``, which is not JSON and makes Segment refuse the
    whole batch it is in.
    """
    try:
        encoded = orjson.dumps(message, option=_EXACT_TYPES)
    except orjson.JSONEncodeError:
        return None
    return orjson.loads(encoded), _size_bound(encoded)


def _size_bound(encoded: bytes) -> int:
    """At least the SDK's encoded size of ``orjson.loads(encoded)``.

    The SDK encodes with ``json.dumps``: ``", "`` and ``": "`` separators,
    non-ASCII and DEL escaped, ``1e+16`` where orjson writes ``1e16``. Each
    difference is counted as if every comma, colon, ``e``, DEL and non-ASCII
    byte of orjson's output were one, which over-counts only.
    """
    separators_and_exponents = len(encoded) - len(encoded.translate(None, b",:e"))
    bound = len(encoded) + separators_and_exponents + 5 * encoded.count(b"\x7f")
    if not encoded.isascii():
        bound += 2 * len(encoded.translate(None, _ASCII))  # 2 bytes -> 6, 3 -> 6, 4 -> 12
    return bound


def _plain_envelope(
    timestamp: Any, message_id: Any, user_id: Any, anonymous_id: Any
) -> TypeGuard[datetime]:
    """What the fast path needs of every message: an aware timestamp, a text messageId,
    text (or no) ids. Anything else is the SDK's to convert or refuse."""
    return (
        type(timestamp) is datetime
        and timestamp.utcoffset() is not None
        and type(message_id) is str
        and _is_id(user_id)
        and _is_id(anonymous_id)
    )


class MessageTooLargeError(RuntimeError):
    """The SDK's error for a message over 32 KB (same arguments), with the size measured."""

    def __init__(self, message: dict[str, Any], size: int) -> None:
        super().__init__(
            "Message exceeds %skb limit. (%s)", str(MAX_MSG_SIZE // 1024), str(message)
        )
        self.size = size


def _checked_size(message: dict[str, Any], bound: int) -> int:
    """``bound``, or the exact size where the bound passes 32 KB; past 32 KB, the SDK's error."""
    if bound <= MAX_MSG_SIZE:
        return bound
    size = len(SDK_ENCODER.encode(message))
    if size > MAX_MSG_SIZE:
        raise MessageTooLargeError(message, size)
    return size


_preview: FastEnqueueClient | None = None


def preview_client() -> FastEnqueueClient:
    """A client that builds messages exactly as a real one would and never sends them."""
    global _preview
    if _preview is None:
        _preview = FastEnqueueClient(write_key="preview", send=False, sync_mode=True)
    return _preview


def _is_id(value: Any) -> bool:
    return value is None or type(value) is str
