"""The real http source served by uvicorn on a loopback socket, in a thread, for tests."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from collector.collector import ActiveDestination, Collector
from flows.http.source import HttpSettings, HttpSource
from flows.server.serving import FlowServer, address, bind, make_server
from tests.segment_helpers import segment_flow


@dataclass
class Served:
    url: str
    collector: Collector
    segment: ActiveDestination
    source: HttpSource
    server: FlowServer

    @property
    def collect(self) -> str:
        return self.url + self.source.settings.path


@contextmanager
def serving(
    receiver_url: str,
    http: dict[str, Any] | None = None,
    segment: dict[str, Any] | None = None,
    httptools: bool | None = None,
    **config: Any,
) -> Iterator[Served]:
    """A collector with a Segment destination behind the http source, listening on 127.0.0.1.

    ``http``: the source's settings; ``httptools=False``: the pure-Python protocol.
    """
    collector, active = segment_flow(receiver_url, segment, **config)
    with _listening(collector, http, httptools) as (url, source, server):
        yield Served(url, collector, active, source, server)


@contextmanager
def serving_collector(
    collector: Collector, http: dict[str, Any] | None = None
) -> Iterator[tuple[str, HttpSource]]:
    """Any collector behind the http source on 127.0.0.1: yields (base URL, source)."""
    with _listening(collector, http) as (url, source, _server):
        yield url, source


@contextmanager
def serving_source(collector: Collector, source: HttpSource) -> Iterator[str]:
    """A built flow's own http source (its chain included) on 127.0.0.1: yields the base URL."""
    with _listening(collector, None, source=source) as (url, _source, _server):
        yield url


@contextmanager
def _listening(
    collector: Collector,
    http: dict[str, Any] | None,
    httptools: bool | None = None,
    source: HttpSource | None = None,
) -> Iterator[tuple[str, HttpSource, FlowServer]]:
    if source is None:
        source = HttpSource(HttpSettings.model_validate({"host": "127.0.0.1", **(http or {})}))
    server = make_server(
        source.app(collector), shutdown_timeout=5, limits=source.settings, httptools=httptools
    )
    sock = bind("127.0.0.1", 0)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        assert server.listening.wait(10), "the server did not start"
        yield address(sock), source, server
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
        collector.shutdown(5)
