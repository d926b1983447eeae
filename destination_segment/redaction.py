"""Keeping secrets (the write key) out of log lines, error reasons and files.

The SDK logs request bodies, which carry the write key, and its errors may
quote them; everything that turns an error or a record into text goes
through here.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from collector.dead_letter import redact


def first_line(error: BaseException, secrets: Iterable[str] = ()) -> str:
    """An error as one short line for a log or a dead-letter reason, secrets replaced."""
    text = str(error) or type(error).__name__
    return redact(text.splitlines()[0][:300], secrets)


class RedactSecret(logging.Filter):
    """Replaces a secret in every record of a logger (the SDK logs request bodies at DEBUG)."""

    def __init__(self, secret: str) -> None:
        super().__init__()
        self.secret = secret

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secret:
            return True
        message = record.getMessage()
        if self.secret in message:
            record.msg = redact(message, [self.secret])
            record.args = None
        return True
