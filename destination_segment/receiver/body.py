"""Reading a request body off the connection, plain or chunked, bounded by MAX_BODY_BYTES.

Every error here leaves the connection mid-body, so each one asks to close it.
"""

from __future__ import annotations

from email.message import Message
from io import BufferedIOBase

from destination_segment.receiver.protocol import MAX_BODY_BYTES, RequestError


def read_body(headers: Message, rfile: BufferedIOBase) -> bytes:
    """The raw body, bounded by MAX_BODY_BYTES (plain or chunked)."""
    encoding = headers.get("Transfer-Encoding")
    if encoding is not None:
        if encoding.strip().lower() != "chunked":
            raise RequestError(400, "only chunked Transfer-Encoding is supported", close=True)
        return read_chunked(rfile)
    header = headers.get("Content-Length")
    if header is None:
        return b""
    try:
        length = int(header)
        if length < 0:
            raise ValueError(header)
    except ValueError:
        raise RequestError(400, "the Content-Length header is invalid", close=True) from None
    if length > MAX_BODY_BYTES:
        raise RequestError(413, f"the body is over {MAX_BODY_BYTES} bytes", close=True)
    data = rfile.read(length)
    if len(data) != length:
        raise RequestError(400, "the body ended before Content-Length", close=True)
    return data


def read_chunked(rfile: BufferedIOBase) -> bytes:
    """A ``Transfer-Encoding: chunked`` body, its trailers skipped."""
    chunks: list[bytes] = []
    total = 0
    while True:
        line = rfile.readline(1024)
        try:
            size = int(line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise RequestError(400, "a chunk size is invalid", close=True) from None
        if size == 0:
            while rfile.readline(8192) not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return b"".join(chunks)
        total += size
        if total > MAX_BODY_BYTES:
            raise RequestError(413, f"the body is over {MAX_BODY_BYTES} bytes", close=True)
        chunk = rfile.read(size)
        if len(chunk) != size:
            raise RequestError(400, "the chunked body ended early", close=True)
        chunks.append(chunk)
        rfile.readline(8)
