"""The durable buffer: accepted events go to a Redis Stream, destinations read it.

``settings.py`` is the flow setting, ``stream.py`` the stream (append, trim,
the scripts), ``reader.py`` one destination's consumer-group reader.
"""

from flows.buffer.reader import BufferReader
from flows.buffer.settings import BufferSettings, buffer_settings
from flows.buffer.stream import BufferFull, BufferStats, EventBuffer

__all__ = [
    "BufferFull",
    "BufferReader",
    "BufferSettings",
    "BufferStats",
    "EventBuffer",
    "buffer_settings",
]
