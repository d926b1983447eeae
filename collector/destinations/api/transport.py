"""One HTTP request per batch, over one pooled httpx client per process.

A 2xx answer delivers the batch. Connection errors, timeouts and the answers
``retryable_status`` names (408, 429, most 5xx) are retried by the sender,
honouring ``Retry-After``; any other answer (a 4xx, a redirect, which is not
followed) gives the batch up at once. Reasons name the status, never the URL
or a header, which may carry a key.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Final

import httpx

from collector.dead_letter import first_line
from collector.delivery import SendError, parse_retry_after, retryable_status
from collector.destinations.api.body import BodyBuilder
from collector.destinations.api.settings import ApiSettings

CONTENT_TYPE: Final = "application/json; charset=utf-8"
"""walkerOS's default ``Content-Type``; a ``headers`` entry overrides it."""


def _user_agent() -> str:
    try:
        return f"walkeros-flows/{version('walkeros-flows')}"
    except PackageNotFoundError:
        return "walkeros-flows"


def request_headers(settings: ApiSettings) -> dict[str, str]:
    """The headers of every request: ``Content-Type`` and ours, then the settings' (case-blind)."""
    headers = {"Content-Type": CONTENT_TYPE, "User-Agent": _user_agent()}
    for name, value in (settings.headers or {}).items():
        for existing in [key for key in headers if key.lower() == name.lower()]:
            del headers[existing]
        headers[name] = value.get_secret_value()
    return headers


class HttpTransport:
    """Sends each batch as one request to the settings' url."""

    def __init__(self, settings: ApiSettings, body: BodyBuilder, connections: int) -> None:
        if settings.url is None:
            raise ValueError("the api destination has no url")
        self.url = settings.url
        self.method = settings.method
        self.body = body
        self.client = httpx.Client(
            headers=request_headers(settings),
            timeout=httpx.Timeout(settings.timeout / 1000),
            limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
            follow_redirects=False,
        )

    def send(self, items: list[bytes]) -> None:
        try:
            response = self.client.request(self.method, self.url, content=self.body.body(items))
        except httpx.TimeoutException as error:
            raise SendError(f"timed out ({type(error).__name__})", retryable=True) from None
        except httpx.TransportError as error:
            raise SendError(
                f"connection failed: {type(error).__name__}: {first_line(error)}", retryable=True
            ) from None
        status = response.status_code
        if 200 <= status < 300:
            return
        reason = f"HTTP {status} {response.reason_phrase}".rstrip()
        if 300 <= status < 400:
            reason += "; redirects are not followed: set url to where it points"
        raise SendError(
            reason,
            retryable=retryable_status(status),
            retry_after=parse_retry_after(response.headers.get("retry-after")),
        )

    def close(self) -> None:
        self.client.close()
