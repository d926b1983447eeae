"""``flows validate --check`` for the ``api`` destination: reach the host, send nothing.

Any request could be taken as an event, so the check only opens a connection
(and, for https, completes the TLS handshake with certificate checks): it
finds a wrong host name, a closed port, a firewall and a bad certificate.
"""

from __future__ import annotations

import socket
import ssl
from urllib.parse import urlsplit

from collector.connection_errors import connection_reason
from collector.destination import ConnectionReport
from collector.destinations.api.settings import ApiSettings


def check_connection(settings: ApiSettings) -> ConnectionReport:
    if settings.url is None:
        return ConnectionReport(True, "no url: nothing is sent")
    parts = urlsplit(settings.url)
    host = parts.hostname or ""
    secure = parts.scheme == "https"
    port = parts.port or (443 if secure else 80)
    where = f"{host}:{port}"
    timeout = settings.timeout / 1000
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            if secure:
                with ssl.create_default_context().wrap_socket(sock, server_hostname=host):
                    pass
    except OSError as error:  # ssl.SSLError and TimeoutError are OSErrors too
        reason = connection_reason(error, timeout)
        verb = "no answer from" if isinstance(error, TimeoutError) else "cannot connect to"
        return ConnectionReport(False, f"{verb} {where} ({reason})")
    return ConnectionReport(True, f"connected to {where}" + (" (TLS verified)" if secure else ""))
