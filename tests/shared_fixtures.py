"""Locate the reference fixtures in ``shared/`` beside the checkout."""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path
from typing import Any

SHARED_FIXTURES = Path(
    os.environ.get("FLOWS_SHARED_FIXTURES")
    or Path(__file__).resolve().parents[2] / "shared" / "fixtures"
)
"""``shared/fixtures`` beside the checkout; ``make mutate`` runs the tests from a copy inside
the checkout (``mutants/``), so it names the same folder with FLOWS_SHARED_FIXTURES."""


@cache
def load_fixture(name: str) -> Any:
    """Parse one fixture file; a missing ``shared/`` is a clear failure, not a skip."""
    path = SHARED_FIXTURES / name
    if not path.is_file():
        raise FileNotFoundError(
            f"shared fixture {path} is missing: the tests expect the shared/ folder "
            "beside the checkout (as CI provides it)"
        )
    return json.loads(path.read_text(encoding="utf-8"))
