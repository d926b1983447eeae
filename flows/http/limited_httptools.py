"""uvicorn's httptools protocol with the connection limits (``flows.http.connection_limits``).

httptools tells us where a request is: its headers are complete, then the whole
message is; both only move the phase, so the parser's own work is untouched.
"""

from __future__ import annotations

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from flows.http.connection_limits import BODY, IDLE, LimitedConnection


class LimitedHttpToolsProtocol(LimitedConnection, HttpToolsProtocol):
    # The base methods are called directly, not through super(): these run for every request.
    _feed = HttpToolsProtocol.data_received

    def on_headers_complete(self) -> None:
        self._phase = BODY
        HttpToolsProtocol.on_headers_complete(self)

    def on_message_complete(self) -> None:
        self._phase = IDLE
        HttpToolsProtocol.on_message_complete(self)
