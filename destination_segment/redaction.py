"""Keeping secrets (the write key) out of log lines, error reasons and files.

The SDK logs request bodies, which carry the write key, and its errors may
quote them; everything that turns an error or a record into text goes
through here.
"""

from __future__ import annotations

import logging

from collector.dead_letter import first_line, redact

__all__ = ["RedactSecret", "first_line", "redact"]


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
