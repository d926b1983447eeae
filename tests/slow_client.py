"""Raw-socket clients for tests: a slow uploader, and reading an answer until the close."""

from __future__ import annotations

import select
import socket
import time
from urllib.parse import urlsplit

import orjson


def post_slowly(
    url: str, document: object, pause: float, timeout: float = 20.0
) -> tuple[int, dict[str, object]]:
    """POST ``document`` as JSON with ``pause`` seconds between the headers and the body.

    Returns the status and the parsed JSON answer (empty when the body was not JSON).
    Status 0: the server closed the connection before answering (a reset while the
    body was on its way after an early refusal): nothing of it was accepted.
    """
    parts = urlsplit(url)
    body = orjson.dumps(document)
    head = (
        f"POST {parts.path or '/'} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    with socket.create_connection((parts.hostname, parts.port), timeout=timeout) as sock:
        sock.sendall(head)
        time.sleep(pause)  # the behaviour under test: a body that arrives late
        answered_early, _, _ = select.select([sock], [], [], 0)
        try:
            if not answered_early:  # a server may refuse on the headers alone (401, 503)
                sock.sendall(body)
        except (ConnectionResetError, BrokenPipeError):
            return 0, {}
        answer = read_to_close(sock, timeout)
    if not answer:
        return 0, {}
    status_line, _, rest = answer.partition(b"\r\n")
    _headers, _, payload = rest.partition(b"\r\n\r\n")
    status = int(status_line.split()[1])
    try:
        parsed = orjson.loads(payload)
    except orjson.JSONDecodeError:
        parsed = {}
    return status, parsed if isinstance(parsed, dict) else {}


def read_to_close(sock: socket.socket, within: float) -> bytes:
    """All the server sends until it closes the connection (a reset counts as a close).

    Fails with TimeoutError when the connection is still open after ``within`` seconds.
    """
    deadline = time.monotonic() + within
    chunks = []
    while True:
        sock.settimeout(max(deadline - time.monotonic(), 0.001))
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)
