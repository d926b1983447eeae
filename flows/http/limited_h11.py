"""uvicorn's h11 protocol (the pure-Python fallback) with the connection limits.

h11 keeps the state of the request it reads (``their_state``), so the phase is
read from it after each read instead of being told by callbacks.
"""

from __future__ import annotations

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from flows.http.connection_limits import BODY, HEAD, IDLE, LimitedConnection


# mypy reads the mixin as httptools' protocol (see LimitedConnection); at run time it is object
class LimitedH11Protocol(LimitedConnection, H11Protocol):  # type: ignore[misc]
    def _feed(self, data: bytes) -> None:
        super()._feed(data)
        state = self.conn.their_state
        if state is h11.SEND_BODY:
            self._phase = BODY
        elif state is h11.IDLE:  # headers incomplete, or no request begun yet
            self._phase = HEAD if self.conn.trailing_data[0] else IDLE
        else:  # the request was read (DONE), or the connection is failing
            self._phase = IDLE
