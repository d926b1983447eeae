"""The Segment destination: walkerOS events to Segment Spec calls through segment-analytics-python.

The names below load on first use, so importing a submodule that needs none
of them (``sink_command``, which every ``flows`` start loads for its
``segment-sink`` command) does not import the SDK.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from destination_segment.calls import CallPlan, SegmentCall
    from destination_segment.destination import SegmentDestination
    from destination_segment.settings import SegmentSettings

__all__ = ["CallPlan", "SegmentCall", "SegmentDestination", "SegmentSettings"]

_HOMES = {
    "CallPlan": "destination_segment.calls",
    "SegmentCall": "destination_segment.calls",
    "SegmentDestination": "destination_segment.destination",
    "SegmentSettings": "destination_segment.settings",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(home), name)
