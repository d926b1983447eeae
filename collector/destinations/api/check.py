"""``flows validate --check`` for the ``api`` destination: reach the host, send nothing.

Any request could be taken as an event, so the check only opens a connection
(and, for https, completes the TLS handshake with certificate checks): it
finds a wrong host name, a closed port, a firewall and a bad certificate.
"""

from __future__ import annotations

import socket
import ssl
from urllib.parse import urlsplit

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
    except ssl.SSLError as error:
        return ConnectionReport(False, f"TLS with {where} failed: {error.reason or error}")
    except TimeoutError:
        return ConnectionReport(False, f"no answer from {where} within {settings.timeout} ms")
    except OSError as error:
        return ConnectionReport(False, f"cannot connect to {where}: {error.strerror or error}")
    return ConnectionReport(True, f"connected to {where}" + (" (TLS verified)" if secure else ""))
