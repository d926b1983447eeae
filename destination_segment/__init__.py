"""The Segment destination: walkerOS events to Segment Spec calls through segment-analytics-python."""

from destination_segment.calls import CallPlan, SegmentCall
from destination_segment.destination import SegmentDestination
from destination_segment.settings import SegmentSettings

__all__ = ["CallPlan", "SegmentCall", "SegmentDestination", "SegmentSettings"]
