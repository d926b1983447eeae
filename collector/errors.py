"""One error vocabulary for configuration: a JSON path and a reason, and one did-you-mean.

Every problem found while loading a flow (a mapping, a destination, a chain,
a cache rule) is a ``ConfigError`` naming where it is in the flow file and
what to change, so the command line prints them all the same way.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Final

SUGGESTION_CUTOFF: Final = 0.6
"""difflib's own default: catches swaps ("mpa" for "map"), not unrelated keys."""


class ConfigError(ValueError):
    """A config cannot be used; ``path`` says where (``mapping.page.view.data``), ``reason`` why."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}" if path else reason)


def did_you_mean(name: str, choices: Iterable[str]) -> str | None:
    """The choice closest to ``name`` (ignoring case), or None when nothing is close."""
    by_lower: dict[str, str] = {}
    for choice in choices:
        by_lower.setdefault(choice.lower(), choice)
    matches = difflib.get_close_matches(name.lower(), by_lower, n=1, cutoff=SUGGESTION_CUTOFF)
    return by_lower[matches[0]] if matches else None


def suggestion(name: str, choices: Iterable[str]) -> str:
    """``'; did you mean "map"?'`` for a near miss, else the empty string (to append)."""
    close = did_you_mean(name, sorted(choices))
    return f'; did you mean "{close}"?' if close else ""
