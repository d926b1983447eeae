"""The local receiver reading chunked request bodies, as a proxy or a streaming client sends them.

The SDK always sends a Content-Length, so without these tests the chunked
reader (sizes, extensions, trailers, its bound and its errors) never runs.
Malformed framing can only be sent over a raw socket.
"""

from __future__ import annotations

import base64
import socket
from collections.abc import Iterator
from typing import IO

import httpx
import orjson
import pytest

from destination_segment.receiver import SegmentReceiver
from destination_segment.receiver.protocol import MAX_BODY_BYTES

AUTH = "Basic " + base64.b64encode(b"k:").decode()


def _batch(*ids: str) -> bytes:
    return orjson.dumps(
        {"batch": [{"type": "track", "event": "E", "userId": "u", "messageId": i} for i in ids]}
    )


def _head(extra: str = "Transfer-Encoding: chunked\r\n") -> bytes:
    return (
        "POST /v1/batch HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Authorization: {AUTH}\r\n{extra}\r\n"
    ).encode()


def _answer(reader: IO[bytes]) -> tuple[int, dict[str, str], bytes]:
    """One HTTP response read off ``reader`` (a socket file): status, headers, body."""
    status = int(reader.readline().split()[1])
    headers: dict[str, str] = {}
    while (line := reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode().partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, reader.read(int(headers["content-length"]))


@pytest.fixture
def connection(segment_receiver: SegmentReceiver) -> Iterator[socket.socket]:
    with socket.create_connection(("127.0.0.1", segment_receiver.port), timeout=10) as sock:
        yield sock


def test_a_chunked_batch_from_a_streaming_client_is_recorded(
    segment_receiver: SegmentReceiver,
) -> None:
    body = _batch("c1", "c2")

    def pieces() -> Iterator[bytes]:
        yield body[:7]
        yield body[7:30]
        yield body[30:]

    response = httpx.post(
        segment_receiver.url + "/v1/batch",
        content=pieces(),
        headers={"Content-Type": "application/json"},
        auth=("k", ""),
        timeout=10,
    )
    assert response.request.headers["transfer-encoding"] == "chunked"
    assert response.status_code == 200, response.text
    assert segment_receiver.message_ids() == {"c1", "c2"}


def test_chunk_extensions_and_trailers_are_skipped_and_the_connection_is_kept(
    segment_receiver: SegmentReceiver, connection: socket.socket
) -> None:
    body = _batch("x1")
    first, rest = body[:10], body[10:]
    framed = (
        f"{len(first):x};name=value\r\n".encode()
        + first
        + b"\r\n"
        + f"{len(rest):X}\r\n".encode()
        + rest
        + b"\r\n0\r\nX-Checksum: abc\r\nX-Other: 1\r\n\r\n"
    )
    reader = connection.makefile("rb")
    connection.sendall(_head() + framed)
    status, headers, _ = _answer(reader)
    assert status == 200
    assert headers.get("connection") != "close"
    # the trailers were consumed: the next request on the same connection parses
    again = _batch("x2")
    connection.sendall(_head(f"Content-Length: {len(again)}\r\n") + again)
    assert _answer(reader)[0] == 200
    assert segment_receiver.message_ids() == {"x1", "x2"}


@pytest.mark.parametrize(
    ("framing", "status", "reason"),
    [
        (b"zz\r\n{}\r\n0\r\n\r\n", 400, "a chunk size is invalid"),
        (b"10\r\n{}", 400, "the chunked body ended early"),
        (f"{MAX_BODY_BYTES + 1:x}\r\n".encode(), 413, f"the body is over {MAX_BODY_BYTES} bytes"),
    ],
    ids=["bad-size", "ended-early", "over-the-cap"],
)
def test_broken_or_oversized_chunked_bodies_are_refused_and_the_connection_closed(
    segment_receiver: SegmentReceiver,
    connection: socket.socket,
    framing: bytes,
    status: int,
    reason: str,
) -> None:
    reader = connection.makefile("rb")
    connection.sendall(_head() + framing)
    connection.shutdown(socket.SHUT_WR)  # "ended early": the client stops sending
    answered, headers, body = _answer(reader)
    assert (answered, orjson.loads(body)["message"]) == (status, reason)
    assert headers["connection"] == "close"
    assert segment_receiver.messages() == []
    assert segment_receiver.stats["by_status"] == {status: 1}


def test_chunks_adding_up_to_exactly_the_cap_are_read_one_byte_more_is_413(
    segment_receiver: SegmentReceiver,
) -> None:
    """The cap counts all chunks together; at it the body is read (then refused as a
    batch over 500 KB: 400), one byte past it the reading stops (413)."""
    start = _batch("big")
    first = start + b" " * (MAX_BODY_BYTES - 10 - len(start))
    exact = (
        f"{len(first):x}\r\n".encode() + first + b"\r\n" + b"a\r\n" + b" " * 10 + b"\r\n0\r\n\r\n"
    )
    over = f"{len(first):x}\r\n".encode() + first + b"\r\n" + b"b\r\n"  # no more is read
    for framing, status in ((exact, 400), (over, 413)):
        with socket.create_connection(("127.0.0.1", segment_receiver.port), timeout=10) as sock:
            reader = sock.makefile("rb")
            sock.sendall(_head() + framing)
            assert _answer(reader)[0] == status
    assert segment_receiver.stats["by_status"] == {400: 1, 413: 1}
    assert segment_receiver.messages() == []


def test_a_transfer_encoding_other_than_chunked_is_400(
    segment_receiver: SegmentReceiver, connection: socket.socket
) -> None:
    reader = connection.makefile("rb")
    connection.sendall(_head("Transfer-Encoding: gzip\r\n") + b"whatever")
    status, _, body = _answer(reader)
    assert (status, orjson.loads(body)["message"]) == (
        400,
        "only chunked Transfer-Encoding is supported",
    )
