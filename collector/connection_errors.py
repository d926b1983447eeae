"""Why a connection failed, in words: ``connection refused``, ``name not resolved``, ...

``flows validate --check`` used to print the first line of whatever the HTTP
library raised (urllib3's pool text, cut mid-word). ``connection_reason``
walks the error's causes down to the operating system's error and names it.
"""

from __future__ import annotations

import errno
import socket
import ssl
from collections.abc import Iterator
from urllib.parse import urlsplit

_MAX_CAUSES = 12
"""Causes followed at most: chains are short; a cycle must not loop."""


def host_port(url: str) -> str:
    """``host:port`` of ``url`` (the scheme's default port when it has none)."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{parts.hostname or ''}:{port}"


def connection_reason(error: BaseException, timeout: float) -> str:
    """The reason ``error`` (raised connecting or waiting for an answer) failed, in a few words.

    ``timeout`` (seconds) is quoted when the reason is that it ran out.
    """
    causes = list(_causes(error))
    for cause in causes:
        if isinstance(cause, ssl.SSLCertVerificationError):
            detail = cause.verify_message or "certificate verify failed"
            return f"TLS: certificate verify failed: {detail}"
        if isinstance(cause, ssl.SSLError):
            return f"TLS: {(cause.reason or type(cause).__name__).lower().replace('_', ' ')}"
    for cause in causes:
        if isinstance(cause, socket.gaierror):
            return "name not resolved"
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        if isinstance(cause, ConnectionResetError):
            return "connection reset"
        if isinstance(cause, TimeoutError):
            return f"timed out after {timeout:g} s"
    for cause in reversed(causes):
        if isinstance(cause, OSError) and cause.errno is not None:
            return (cause.strerror or errno.errorcode.get(cause.errno, "error")).lower()
    if any("timed out" in str(cause).lower() for cause in causes):
        return f"timed out after {timeout:g} s"
    return type(error).__name__


def _causes(error: BaseException) -> Iterator[BaseException]:
    """``error``, then what caused it, and so on (``__cause__``, a wrapped error, ``reason``)."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen and len(seen) < _MAX_CAUSES:
        seen.add(id(current))
        yield current
        following = current.__cause__ or current.__context__
        if following is None:
            reason = getattr(current, "reason", None)
            wrapped = current.args[0] if current.args else None
            if isinstance(reason, BaseException):
                following = reason
            elif isinstance(wrapped, BaseException):
                following = wrapped
        current = following
