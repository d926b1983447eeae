"""The receiver's HTTP server: threads per connection, a prompt stop, no stray tracebacks."""

from __future__ import annotations

import contextlib
import logging
import selectors
import socket
import socketserver
import sys
import threading
from http.server import ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from destination_segment.receiver.handler import ReceiverHandler

if TYPE_CHECKING:
    from destination_segment.receiver.core import SegmentReceiver

log = logging.getLogger("destination_segment.receiver")


class ReceiverServer(ThreadingHTTPServer):
    """ThreadingHTTPServer that tracks its connections so stop() can cut them.

    Keep-alive connections outlive ``shutdown()``: without cutting them a client
    could still be answered by a receiver that has stopped.
    """

    daemon_threads = True
    block_on_close = False  # stop() must not wait for a hanging request
    request_queue_size = 512
    allow_reuse_address = True
    timeout = 0.0  # handle_request() runs only once select() saw a client waiting

    def __init__(self, address: tuple[str, int], receiver: SegmentReceiver, family: int) -> None:
        self.address_family = family
        self.receiver = receiver
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        self._wake_reader, self._wake_writer = socket.socketpair()
        try:
            super().__init__(address, ReceiverHandler)
        except BaseException:
            self._close_wake()
            raise

    def serve_until(self, stopping: threading.Event) -> None:
        """Accept connections until ``stopping`` is set and wake() is called.

        serve_forever() notices shutdown() only on its poll interval, which would
        add that much to every stop(); a self-pipe ends the wait at once.
        """
        with selectors.DefaultSelector() as selector:
            selector.register(self.socket, selectors.EVENT_READ)
            selector.register(self._wake_reader, selectors.EVENT_READ)
            while not stopping.is_set():
                for key, _ in selector.select():
                    if key.fileobj is self.socket and not stopping.is_set():
                        self.handle_request()

    def wake(self) -> None:
        """Interrupt serve_until()'s wait."""
        with contextlib.suppress(OSError):
            self._wake_writer.send(b"\0")

    def server_close(self) -> None:
        super().server_close()
        self._close_wake()

    def _close_wake(self) -> None:
        self._wake_reader.close()
        self._wake_writer.close()

    def server_bind(self) -> None:
        """Bind without HTTPServer's getfqdn(), a DNS lookup that can stall start()."""
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def process_request(self, request: Any, client_address: Any) -> None:
        """Remember the connection before its thread starts."""
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        """Forget the connection once its thread is done with it."""
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Shut every open connection so blocked handler threads wake and exit."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that vanished is routine; log instead of printing a traceback."""
        error = sys.exc_info()[1]
        if isinstance(error, OSError):
            log.debug("connection from %s ended: %s", client_address, error)
        else:
            log.exception("unexpected error serving %s", client_address)
