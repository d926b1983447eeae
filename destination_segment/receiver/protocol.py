"""The Segment Tracking API as the receiver checks it: pure functions, no sockets.

Limits, endpoints, Basic auth with the write key, gzip bodies and the batch and
single-call message shapes. Anything a client got wrong raises RequestError,
which the handler turns into a Segment-style JSON error.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import zlib
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any, Final

import orjson

#: Segment rejects a single message whose JSON is over 32 KB.
MAX_MESSAGE_BYTES: Final = 32768
#: Segment rejects a batch body over 500 KB (measured after gzip decoding).
MAX_BATCH_BYTES: Final = 512000
#: Hard cap on what is read from the wire or inflated from gzip: a gzip bomb or a
#: runaway client gets a 413 instead of the receiver's memory.
MAX_BODY_BYTES: Final = 5 * 1024 * 1024

SPEC_TYPES: Final = ("track", "identify", "group", "page", "screen", "alias")
BATCH_PATH: Final = "/v1/batch"
SINGLE_PATHS: Final = {f"/v1/{kind}": kind for kind in SPEC_TYPES}


class RequestError(Exception):
    """An answer other than 200 for a tracking request; nothing is recorded."""

    def __init__(self, status: int, message: str, *, close: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.close = close


def brief(value: object, limit: int = 60) -> str:
    """A client-supplied value, shortened, so error messages stay small."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def error_code(status: int) -> str:
    """A snake_case ``code`` for a status, as Segment's JSON errors carry one."""
    known = {
        400: "invalid_request",
        401: "unauthorized",
        404: "not_found",
        405: "method_not_allowed",
        413: "payload_too_large",
        429: "too_many_requests",
    }
    if status in known:
        return known[status]
    try:
        return HTTPStatus(status).phrase.lower().replace(" ", "_").replace("-", "_")
    except ValueError:
        return "server_error" if status >= 500 else "error"


def now_iso() -> str:
    """Segment's ``receivedAt`` style: UTC, milliseconds, ``Z``."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def check_write_key(header: str | None, expected: str | None) -> None:
    """Basic auth with the write key as user name; the key itself is never echoed.

    ``header`` is the Authorization header; ``expected`` None accepts any non-empty key.
    """
    if not header:
        raise RequestError(401, "no write key: send Authorization: Basic base64(<write key> + ':')")
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "basic":
        raise RequestError(401, "only Basic authentication with the write key is supported")
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise RequestError(401, "the Basic credentials are not valid base64") from None
    key = decoded.partition(":")[0]
    if not key:
        raise RequestError(401, "the write key is empty")
    if expected is not None and not hmac.compare_digest(key.encode(), expected.encode()):
        raise RequestError(401, "the write key is not valid for this receiver")


def decode_body(body: bytes, content_encoding: str | None) -> bytes:
    """The body as sent, or inflated when ``content_encoding`` (the header) is gzip."""
    encoding = (content_encoding or "identity").strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding in ("gzip", "x-gzip"):
        return gunzip(body, MAX_BODY_BYTES)
    raise RequestError(415, f"Content-Encoding {brief(encoding)} is not supported; use gzip")


def gunzip(data: bytes, limit: int) -> bytes:
    """Inflate every gzip member of ``data``, never producing more than ``limit`` bytes."""
    out = bytearray()
    while data:
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            out += inflater.decompress(data, limit - len(out) + 1)
        except zlib.error as error:
            raise RequestError(400, f"the gzip body cannot be decoded: {error}") from None
        if len(out) > limit or inflater.unconsumed_tail:
            raise RequestError(413, f"the gzip body inflates to more than {limit} bytes")
        if not inflater.eof:
            raise RequestError(400, "the gzip body is truncated")
        data = inflater.unused_data
    return bytes(out)


def check_size(message: dict[str, Any], where: str) -> None:
    """Segment's 32 KB per-message limit, on the compact UTF-8 JSON encoding.

    The SDK measures ``json.dumps`` with spaces and ASCII escapes, which is never
    smaller, so anything the SDK lets through passes here too.
    """
    size = len(orjson.dumps(message))
    if size > MAX_MESSAGE_BYTES:
        raise RequestError(
            400, f"{where} is {size} bytes as JSON; the limit is {MAX_MESSAGE_BYTES} (32 KB)"
        )


def parse_messages(kind: str | None, raw: bytes) -> tuple[list[dict[str, Any]], Any]:
    """The messages of a batch (``kind`` None) or single-call body, and its ``sentAt``."""
    if kind is None and len(raw) > MAX_BATCH_BYTES:
        raise RequestError(
            400, f"the batch is {len(raw)} bytes; the limit is {MAX_BATCH_BYTES} (500 KB)"
        )
    try:
        payload = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise RequestError(400, f"the body is not valid JSON: {error}") from None
    if not isinstance(payload, dict):
        raise RequestError(400, "the body must be a JSON object")
    if kind is not None:
        # A single call may carry the key in its body; it is a credential, not data.
        payload.pop("writeKey", None)
        payload.setdefault("type", kind)
        check_size(payload, "the message")
        return [payload], payload.get("sentAt")
    batch = payload.get("batch")
    if not isinstance(batch, list):
        raise RequestError(400, 'the body must have a "batch" array')
    for index, message in enumerate(batch):
        if not isinstance(message, dict):
            raise RequestError(400, f"batch[{index}] is not a JSON object")
        check_size(message, f"batch[{index}]")
    return batch, payload.get("sentAt")
