"""CORS for the http source: headers computed once from the settings.

Only the request's ``Origin`` (and, in a preflight, the headers it asks for)
is looked at per request; everything else is bytes prepared at load. CORS
only tells a browser what a page may read back; it refuses nothing (see
``flows.http.origin_check`` for that).
"""

from __future__ import annotations

from flows.http.settings import CorsSettings

Headers = list[tuple[bytes, bytes]]

TRACE_HEADERS = ("traceparent", "tracestate")
"""W3C trace context: walkerOS's api destination sends ``traceparent`` with every fetch."""
MAX_ECHOED_HEADERS = 512
"""Longest ``Access-Control-Request-Headers`` echoed back; a longer one gets the default list."""

_VARY_ORIGIN = (b"vary", b"Origin")
_VARY_REQUEST_HEADERS = (b"vary", b"Access-Control-Request-Headers")


class Cors:
    """CORS headers computed once from the settings; only the origin is per request.

    Origins match byte for byte against the configured list, which is
    lowercased at load because browsers send scheme and host in lowercase.
    ``null`` never gets credentials.
    """

    def __init__(self, settings: CorsSettings, auth_header: str | None = None) -> None:
        self.any = settings.any_origin
        self.origins = frozenset(o.encode() for o in settings.origins)
        self.credentials = settings.credentials
        self.max_age = str(settings.max_age).encode()
        self.methods = ", ".join(settings.methods).encode()
        self.allow_headers = ", ".join(settings.headers).encode() if settings.headers else None
        defaults = ["Content-Type", *TRACE_HEADERS, *([auth_header] if auth_header else [])]
        self.default_headers = ", ".join(defaults).encode()
        # Without a list and without credentials, a preflight gets what it asked for.
        self.echo = self.allow_headers is None and not self.credentials

    def headers(self, headers: Headers) -> Headers:
        """``Access-Control-Allow-Origin`` (and credentials) for this request's ``Origin``."""
        if self.any:  # never with credentials: the settings refuse that
            return [(b"access-control-allow-origin", b"*")]
        origin = next((v for n, v in headers if n == b"origin"), None)
        if origin is None or origin not in self.origins:
            return [_VARY_ORIGIN]
        out = [(b"access-control-allow-origin", origin), _VARY_ORIGIN]
        if self.credentials and origin != b"null":
            out.append((b"access-control-allow-credentials", b"true"))
        return out

    def preflight(self, headers: Headers) -> Headers:
        """Methods, headers and cache time of a preflight answer."""
        out = [
            (b"access-control-allow-methods", self.methods),
            (b"access-control-allow-headers", self.allow_headers or self.default_headers),
            (b"access-control-max-age", self.max_age),
        ]
        if self.echo:
            requested = next(
                (v for n, v in headers if n == b"access-control-request-headers"), None
            )
            if requested and len(requested) <= MAX_ECHOED_HEADERS:
                out[1] = (b"access-control-allow-headers", requested)
            out.append(_VARY_REQUEST_HEADERS)
        return out


def cors_from(setting: bool | CorsSettings, auth_header: str | None = None) -> Cors | None:
    """The source's CORS, or None for ``cors: false``; ``auth_header`` joins the defaults."""
    if setting is False:
        return None
    return Cors(CorsSettings.model_validate({}) if setting is True else setting, auth_header)


def trace_header_warning(setting: bool | CorsSettings) -> str | None:
    """Why a ``cors.headers`` list without ``traceparent`` blocks walkerOS's api destination."""
    if isinstance(setting, bool) or setting.headers is None:
        return None
    if "traceparent" in {name.lower() for name in setting.headers}:
        return None
    return (
        "leaves out traceparent, which walkerOS's api destination sends with every fetch, "
        'so browsers will block those fetches; add "traceparent"'
    )
