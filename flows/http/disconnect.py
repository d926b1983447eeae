"""A client that went away before its request was read: nothing to answer, nothing to log.

The body reader raises ``ClientGoneError`` when it gets ``http.disconnect``; the
server wraps the app once in ``quiet_when_gone``, so the request ends there
instead of reaching uvicorn, which would log it as an application error.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

App = Callable[[MutableMapping[str, Any], Any, Any], Awaitable[None]]


class ClientGoneError(Exception):
    """The connection closed (or was cut by a timeout) before the body was complete."""


def quiet_when_gone(app: App) -> App:
    async def guarded(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        try:  # noqa: SIM105 (free in 3.11; contextlib.suppress costs an object per request)
            await app(scope, receive, send)
        except ClientGoneError:
            pass

    return guarded
