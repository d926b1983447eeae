"""The ``http`` source: walkerOS events over HTTP (the ASGI app, its settings and limits).

``flows.http:HttpSource`` is the source's import path; it stays valid.
"""

from flows.http.settings import HttpSettings
from flows.http.source import GIF, CollectorApp, HttpSource

__all__ = ["GIF", "CollectorApp", "HttpSettings", "HttpSource"]
