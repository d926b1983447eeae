"""How fast this machine runs Python right now: a fixed loop to read absolute figures against."""

from __future__ import annotations

import timeit

TYPICAL_US = (6.0, 8.0)
"""What the loop takes on a typical current x86 core."""


def reference_us() -> float:
    """Microseconds for ``sum(range(1000))``, best of five rounds (~0.1 s in all)."""
    best = min(timeit.repeat("sum(range(1000))", number=2000, repeat=5))
    return best / 2000 * 1e6
