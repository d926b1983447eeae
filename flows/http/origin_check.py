"""The http source's opt-in origin check (``checkOrigin``): refuse other sites' pages.

CORS refuses nothing: a ``text/plain`` ``sendBeacon`` from any page is
delivered whatever the answer says. This check refuses it, from the
``Origin`` a browser sends (or the origin of its ``Referer``), before the body
is read. Any non-browser client can forge both headers, so it stops other
sites' pages, not scripts; ``auth`` is for those.
"""

from __future__ import annotations

from flows.http.settings import HttpSettings

Headers = list[tuple[bytes, bytes]]

SHOWN_ORIGIN = 100
"""Longest origin repeated in a refusal; a forged header can be as long as the server allows."""
NO_ORIGIN = 'no Origin or Referer header; checkOrigin "strict" refuses such requests'


class OriginCheck:
    """The allowed origins as a set of bytes; per request one header scan and one lookup."""

    __slots__ = ("allowed", "strict")

    def __init__(self, origins: tuple[str, ...], *, strict: bool) -> None:
        self.allowed = frozenset(origin.encode() for origin in origins)
        self.strict = strict

    def refusal(self, headers: Headers) -> str | None:
        """Why to refuse this request with 403, or None to let it through."""
        origin = referer = b""
        for name, value in headers:
            if name == b"origin":
                origin = value
                break
            if name == b"referer":
                referer = value
        if not origin and referer:
            origin = referer_origin(referer)
        if not origin:
            return NO_ORIGIN if self.strict else None
        if origin in self.allowed:
            return None
        shown = origin[:SHOWN_ORIGIN].decode("latin-1")
        return f"origin {shown} is not allowed; add it to cors.origin"


def referer_origin(referer: bytes) -> bytes:
    """``scheme://host[:port]`` of a Referer: up to the first ``/`` after ``://``.

    Anything odd (no ``://``, a ``?`` or ``@`` before the path) gives a value
    that cannot be an allowed origin, so it is refused rather than guessed at.
    """
    start = referer.find(b"://")
    if start < 0:
        return referer
    end = referer.find(b"/", start + 3)
    return referer if end < 0 else referer[:end]


def origin_check_from(settings: HttpSettings) -> OriginCheck | None:
    """The check for ``checkOrigin`` (None when off); the settings ensure a list of origins."""
    if settings.check_origin is False or isinstance(settings.cors, bool):
        return None
    return OriginCheck(settings.cors.origins, strict=settings.check_origin == "strict")
