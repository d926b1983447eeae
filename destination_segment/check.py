"""A connection check that sends no data: an empty batch to the batch endpoint.

Segment answers an empty, authenticated batch with 200 and records nothing,
so a wrong host, a proxy that is not Segment, and an unreachable network can
be told apart from a working endpoint without a fake event in the customer's
data.
"""

from __future__ import annotations

import base64

import requests

from collector.connection_errors import connection_reason, host_port
from collector.destination import ConnectionReport
from destination_segment.sdk import SDK_BATCH_PATH
from destination_segment.settings import SegmentSettings


def check_connection(settings: SegmentSettings, timeout: float | None = None) -> ConnectionReport:
    """Post ``{"batch": []}`` with the write key and judge the answer."""
    url = settings.sdk_host + SDK_BATCH_PATH
    where = host_port(url)
    key = settings.write_key.get_secret_value()
    token = base64.b64encode(f"{key}:".encode()).decode()
    seconds = timeout or settings.http_request_timeout / 1000
    try:
        response = requests.post(
            url,
            json={"batch": []},
            headers={"Authorization": f"Basic {token}"},
            timeout=seconds,
            allow_redirects=False,
        )
    except requests.exceptions.ReadTimeout as error:
        return ConnectionReport(False, f"no answer from {where} ({_reason(error, seconds)})")
    except requests.exceptions.RequestException as error:
        return ConnectionReport(False, f"cannot connect to {where} ({_reason(error, seconds)})")
    status = response.status_code
    if status in (401, 403):
        return ConnectionReport(False, f"{where} answered {status}: check the write key")
    if 300 <= status < 400:
        return ConnectionReport(False, f"{url} redirects (HTTP {status}): check the host")
    if status == 404:
        return ConnectionReport(False, f"{url} not found (HTTP 404): is the host a Segment API?")
    if status >= 400:
        return ConnectionReport(False, f"{url} answered HTTP {status}")
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return ConnectionReport(False, f"{url} answered {status} but not with Segment's JSON")
    return ConnectionReport(True, f"{url} accepted an empty batch (HTTP {status})")


def _reason(error: Exception, seconds: float) -> str:
    return connection_reason(error, seconds)
