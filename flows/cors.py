"""CORS for the http source: headers computed once from the settings.

Only the request's ``Origin`` is looked at per request; everything else is
bytes prepared at load.
"""

from __future__ import annotations

from flows.http_settings import CorsSettings

Headers = list[tuple[bytes, bytes]]


class Cors:
    """CORS headers computed once from the settings; only the origin is per request."""

    def __init__(self, settings: CorsSettings) -> None:
        origins = [settings.origin] if isinstance(settings.origin, str) else settings.origin
        self.any = "*" in origins
        self.origins = {o.encode() for o in origins}
        self.credentials = settings.credentials
        self.max_age = str(settings.max_age).encode()
        self.methods = ", ".join(settings.methods).encode()
        self.allow_headers = ", ".join(settings.headers).encode() if settings.headers else None

    def _origin(self, headers: Headers) -> bytes | None:
        origin = next((v for n, v in headers if n == b"origin"), None)
        if self.any and not self.credentials:
            return b"*"
        if origin is not None and (self.any or origin in self.origins):
            return origin
        return None

    def headers(self, headers: Headers) -> Headers:
        origin = self._origin(headers)
        if origin is None:
            return []
        out = [(b"access-control-allow-origin", origin)]
        if origin != b"*":
            out.append((b"vary", b"Origin"))
        if self.credentials:
            out.append((b"access-control-allow-credentials", b"true"))
        return out

    def preflight(self, headers: Headers) -> Headers:
        requested = next((v for n, v in headers if n == b"access-control-request-headers"), None)
        return [
            (b"access-control-allow-methods", self.methods),
            (b"access-control-allow-headers", self.allow_headers or requested or b"Content-Type"),
            (b"access-control-max-age", self.max_age),
        ]


def cors_from(setting: bool | CorsSettings) -> Cors | None:
    if setting is False:
        return None
    return Cors(CorsSettings.model_validate({}) if setting is True else setting)
