"""Shared pytest fixtures."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from destination_segment.receiver import SegmentReceiver


@pytest.fixture
def segment_receiver() -> Iterator[SegmentReceiver]:
    """A started local Segment receiver on a free port (any write key), stopped after."""
    with SegmentReceiver() as receiver:
        yield receiver
