"""Serving a flow: uvicorn in front of the http source, and a stop with one deadline.

On SIGTERM or SIGINT the server stops accepting connections and answers new
requests 503, lets requests in flight finish for up to half the shutdown
timeout (each is pushed into the destinations' queues before it is
answered; one still sending its body then is answered 503 and nothing of it
is taken), then flushes every destination within what is left of the
timeout. Whatever is not delivered by then is dead-lettered, and the process
exits: a hanging upload cannot hold it. Exit code 0: a signal is a request to
stop, not an error.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import socket
import threading
import time
from collections.abc import Callable, Generator
from types import FrameType
from typing import Any

import uvicorn

from collector.collector import Collector
from collector.destination import ShutdownReport
from flows.http.connection_limits import ConnectionLimits, ensure_open_files, protocol_class
from flows.http.disconnect import quiet_when_gone
from flows.http.settings import HttpSettings
from flows.http.source import HttpSource
from flows.server.metrics import snapshot

logger = logging.getLogger("flows.server")


DRAIN_SHARE = 0.5
"""The part of the shutdown timeout that requests in flight get to finish; the flush gets the rest."""
ANSWER_GRACE = 0.5
"""Seconds for requests cut off at the drain deadline to write their 503."""


class FlowServer(uvicorn.Server):
    """uvicorn that treats SIGTERM/SIGINT as "stop now" without re-raising them after,
    says when it listens (``listening``, ``on_listening``), and stops by one deadline
    (``stop_deadline``), telling the app when the stop begins (``on_stopping``)."""

    def __init__(
        self,
        config: uvicorn.Config,
        on_listening: Callable[[], None] | None = None,
        *,
        shutdown_timeout: float = 10.0,
        on_stopping: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(config)
        self.listening = threading.Event()
        self.on_listening = on_listening
        self.on_stopping = on_stopping
        self.shutdown_timeout = max(0.0, shutdown_timeout)
        self.stop_requested: float | None = None

    @property
    def stop_deadline(self) -> float:
        """When the whole stop must be over (monotonic): the first signal + the timeout."""
        started = self.stop_requested if self.stop_requested is not None else time.monotonic()
        return started + self.shutdown_timeout

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        """Begin the stop; a repeated signal changes nothing, since the stop has its deadline.

        (uvicorn would make a second SIGINT a forced exit that skips the drain and the
        lifespan shutdown; with ``--workers`` a Ctrl-C reaches each worker twice, from the
        terminal and from the parent.)
        """
        if self.stop_requested is None:
            self.stop_requested = time.monotonic()
        self.should_exit = True

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """Stop listening, answer new requests 503, give those in flight until the drain
        deadline, cut off the rest with a 503, then run the app's lifespan shutdown."""
        if self.stop_requested is None:  # stopped by should_exit, not a signal
            self.stop_requested = time.monotonic()
        drain_until = self.stop_requested + self.shutdown_timeout * DRAIN_SHARE
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        if self.on_stopping is not None:
            self.on_stopping()
        for connection in list(self.server_state.connections):
            connection.shutdown()
        while self.server_state.tasks or self.server_state.connections:
            if time.monotonic() >= drain_until:
                break
            await asyncio.sleep(0.02)
        tasks = list(self.server_state.tasks)
        if tasks:
            logger.warning(
                "%d request(s) still in flight at the drain deadline: answered 503", len(tasks)
            )
            for task in tasks:
                task.cancel()
            await asyncio.wait(tasks, timeout=ANSWER_GRACE)
        for connection in list(self.server_state.connections):
            connection.shutdown()
        await self.lifespan.shutdown()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            if self.on_listening is not None:
                self.on_listening()
            self.listening.set()

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in STOP_SIGNALS}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class ListenError(OSError):
    """The address is taken or not ours; the message says which and what to do."""


def bind(host: str, port: int) -> socket.socket:
    """Bind before serving, so the address is known (port 0) and ready when announced."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise ListenError(
            f"cannot listen on {host}:{port}: {error.strerror}; "
            "choose another --port (or PORT) or stop what uses it"
        ) from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def serve(
    collector: Collector,
    source: HttpSource,
    *,
    port: int | None = None,
    host: str | None = None,
    shutdown_timeout: float = 10.0,
    ready_message: Callable[[str], None] | None = None,
    workers: int = 1,
    access_log: bool = False,
) -> int:
    """Serve until a stop signal, then flush the destinations; returns the exit code."""
    settings = source.settings
    host = host or settings.host
    port = settings.port if port is None else port
    sock = bind(host, port)
    url = address(sock)
    if workers > 1:
        from flows.server.workers import serve_workers

        return serve_workers(
            collector,
            source,
            sock,
            url,
            workers=workers,
            shutdown_timeout=shutdown_timeout,
            ready_message=ready_message,
            access_log=access_log,
        )
    try:
        return serve_socket(
            collector,
            source,
            sock,
            shutdown_timeout,
            on_listening=(lambda: ready_message(url)) if ready_message else None,
            access_log=access_log,
        )
    finally:
        sock.close()


def serve_socket(
    collector: Collector,
    source: HttpSource,
    sock: socket.socket,
    shutdown_timeout: float,
    on_listening: Callable[[], None] | None = None,
    *,
    access_log: bool = False,
) -> int:
    """One server process on a bound socket: serve, then flush; returns the exit code."""
    server = make_server(
        source.app(collector),
        shutdown_timeout,
        on_listening=on_listening,
        limits=source.settings,
        access_log=access_log,
    )
    tune_gc()
    with contextlib.suppress(SystemExit):  # uvicorn exits with 3 when the startup failed
        server.run(sockets=[sock])
    if not server.started:
        logger.error("server did not start (see the errors above)")
        flush_by(collector, time.monotonic() + shutdown_timeout)
        return 1
    reports = flush_by(collector, server.stop_deadline)
    if source.shared is not None:  # the final counters, for the workers still serving
        source.shared.publish(snapshot(collector, source))
    lost = 0
    for destination_id, report in reports.items():
        lost += report.undelivered
        level = logging.WARNING if report.undelivered else logging.INFO
        logger.log(
            level,
            "destination %s: %s",
            destination_id,
            report.detail or "stopped",
            extra={"destination": destination_id},
        )
    logger.info("stopped%s", f"; {lost} message(s) not delivered" if lost else "")
    return 0


FLUSH_SLACK = 1.0
"""Seconds past the deadline a destination's shutdown may take to record what it held."""


def flush_by(collector: Collector, deadline: float) -> dict[str, ShutdownReport]:
    """Shut the destinations down by ``deadline`` (monotonic), whatever they do.

    The shutdown runs on a daemon thread: a destination that ignores its
    timeout is reported and left behind, so the process can still exit.
    """
    reports: dict[str, ShutdownReport] = {}

    def shut_down() -> None:
        reports.update(collector.shutdown(max(0.0, deadline - time.monotonic())))

    worker = threading.Thread(target=shut_down, name="flows-shutdown", daemon=True)
    worker.start()
    worker.join(max(0.0, deadline - time.monotonic()) + FLUSH_SLACK)
    if worker.is_alive():
        logger.error("destinations did not stop by the shutdown deadline; exiting without them")
        return {
            active.id: reports.get(active.id) or ShutdownReport(timed_out=True, detail="hung")
            for active in collector.destinations
        }
    return reports


GC_THRESHOLDS = (50_000, 20, 10)
"""Collect the youngest generation every 50,000 allocations, not every 700."""


def tune_gc() -> None:
    """Keep Python's cycle collector off the request path of a long-running server.

    Messages wait in the SDK's queue for up to a flush interval, long enough
    to survive the default 700-allocation collections, which then scan them
    again and again and promote them to the older generations, whose
    collections also walk everything loaded at start (52,000 objects here).
    Freezing what exists once serving starts, and collecting the young
    generation 70 times less often, took the collector's time in an 8-second
    single-event run from 185 to 53 ms (about 5 to 1 us per request) and the
    request thread's CPU per request down by about 10 us. Everything here is
    freed by reference counting; only cyclic garbage waits longer.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def make_server(
    app: Any,
    shutdown_timeout: float,
    on_listening: Callable[[], None] | None = None,
    *,
    limits: HttpSettings | None = None,
    httptools: bool | None = None,
    access_log: bool = False,
) -> FlowServer:
    """The uvicorn server for ``app``: fast stack, bounded graceful stop, and the
    connection limits of ``limits`` (the http source's settings; default ones if None).

    ``httptools=False`` serves with the pure-Python h11 protocol, as without httptools.
    ``access_log=True`` logs a line per request on ``uvicorn.access`` (shown as
    ``flows.http.access`` by ``flows.server.logs``); off, a request logs nothing.
    """
    settings = limits if limits is not None else HttpSettings.model_validate({})
    connection_limits = ConnectionLimits.from_settings(settings)
    stack = _fast_stack()
    fast = stack.pop("http", None) == "httptools" and httptools is not False
    ensure_open_files(settings.max_connections)
    config = uvicorn.Config(
        quiet_when_gone(app),
        lifespan="on",
        access_log=access_log,
        log_config=None,
        server_header=False,
        date_header=False,
        http=protocol_class(
            connection_limits,
            fast=fast,
            answered=_answer_counter(app),
            cors=getattr(app, "cors", None),
        ),
        ws="none",
        h11_max_incomplete_event_size=settings.max_header_size,
        **stack,
        # typed int by uvicorn, but only handed to loop.call_later, which takes float seconds
        timeout_keep_alive=connection_limits.keep_alive_timeout,  # type: ignore[arg-type]
    )
    if access_log:  # an earlier server in this process may have switched it off
        logging.getLogger("uvicorn.access").propagate = True
    return FlowServer(
        config,
        on_listening,
        shutdown_timeout=shutdown_timeout,
        on_stopping=getattr(app, "stop_accepting", None),
    )


def _answer_counter(app: Any) -> Callable[[int], None] | None:
    """The source's answer counter, so 408, 431 and the connection cap's 503 are counted."""
    stats = getattr(app, "stats", None)
    return getattr(stats, "answered", None)


def address(sock: socket.socket) -> str:
    """The base URL of a bound socket."""
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


def _fast_stack() -> dict[str, Any]:
    """uvloop and httptools when installed (CPython on Linux/macOS), else pure Python."""
    options: dict[str, Any] = {}
    with contextlib.suppress(ImportError):
        import uvloop  # noqa: F401

        options["loop"] = "uvloop"
    with contextlib.suppress(ImportError):
        import httptools  # noqa: F401

        options["http"] = "httptools"
    return options
