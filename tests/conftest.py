"""Shared pytest fixtures."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from destination_segment.receiver import SegmentReceiver


@pytest.fixture(autouse=True, scope="session")
def dead_letters_in_a_temp_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Dead-letter files from failure tests go to a temp dir, never into the checkout."""
    directory = tmp_path_factory.mktemp("dead-letter")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FLOWS_DEAD_LETTER_DIR", str(directory))
        yield directory


@pytest.fixture
def segment_receiver() -> Iterator[SegmentReceiver]:
    """A started local Segment receiver on a free port (any write key), stopped after."""
    with SegmentReceiver() as receiver:
        yield receiver
