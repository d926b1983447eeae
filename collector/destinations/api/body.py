"""What the ``api`` destination sends for an event, as walkerOS's api destination sends it.

Each event contributes its mapped data, or the whole event when the mapping
resolves none. Unbatched, the body is that value as JSON (or, with
``transform``, what ``transform(value, settings, rule)`` returns: text and
bytes verbatim, anything else as JSON). Batched, the body is a JSON array of
those values (``transform`` applied to each; its text results become JSON
strings), as walkerOS's ``pushBatch`` builds it. Each event's part is encoded
on ``push``, so a value JSON cannot hold is refused before the answer.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

import orjson

from collector.destination import EventRejected, PushContext
from collector.paths import UNDEFINED

JSON_OPTIONS: Final = orjson.OPT_NON_STR_KEYS
"""As ``JSON.stringify``: compact, keys in order, NaN and Infinity as null."""


class BodyBuilder:
    """Encodes each event's part at push time and joins parts into a request body."""

    def __init__(
        self, settings: Any, transform: Callable[..., Any] | None, *, batched: bool
    ) -> None:
        self.settings = settings
        self.transform = transform
        self.batched = batched

    def part(self, event: Mapping[str, Any], context: PushContext) -> bytes:
        """This event's bytes: the whole body (unbatched) or one array item (batched).

        Raises EventRejected when JSON cannot hold the value: sending it again
        would fail the same way.
        """
        value = context.data if context.data is not UNDEFINED else event
        if self.transform is not None:
            # A transform that raises is a bug, not bad input: the collector writes the
            # event to the events dead-letter file and counts it as failed.
            value = self.transform(value, self.settings, context.rule)
            if not self.batched:
                if isinstance(value, str):
                    return value.encode()
                if isinstance(value, bytes | bytearray | memoryview):
                    return bytes(value)
            elif isinstance(value, bytes | bytearray | memoryview):
                value = _text(bytes(value))
        try:
            return orjson.dumps(value, option=JSON_OPTIONS)
        except (orjson.JSONEncodeError, TypeError) as error:
            raise EventRejected(f"cannot be sent as JSON: {error}") from None

    def body(self, parts: list[bytes]) -> bytes:
        """The request body for ``parts``: a JSON array when batched, else the one part."""
        if not self.batched:
            return parts[0]
        return b"[" + b",".join(parts) + b"]"

    def as_message(self, part: bytes) -> Any:
        """A part as the dead-letter file records it: its JSON value, else its text."""
        if self.batched or self.transform is None:
            return orjson.loads(part)
        return _text(part, strict=False)

    def part_from_message(self, message: Any) -> bytes:
        """The part ``as_message`` made ``message`` of (a dead-letter line's), for a replay.

        Raises EventRejected when JSON cannot hold it.
        """
        if not self.batched and self.transform is not None and isinstance(message, str):
            return message.encode()  # the body text, as the transform returned it
        try:
            return orjson.dumps(message, option=JSON_OPTIONS)
        except (orjson.JSONEncodeError, TypeError) as error:
            raise EventRejected(f"cannot be sent as JSON: {error}") from None


def _text(data: bytes, strict: bool = True) -> str:
    try:
        return data.decode()
    except UnicodeDecodeError:
        if not strict:
            return data.decode(errors="replace")
        raise EventRejected("transform returned bytes that are not UTF-8 text") from None
