"""The HTTP benchmark's baseline: the server stack of ``flows run`` with nothing behind it.

A raw ASGI app that reads the body, parses it with orjson and answers 200 with the
same JSON the pipeline answers, served by ``flows.server.make_server`` (uvicorn,
uvloop, httptools, the same options) on a socket from ``flows.server.bind``. The
pipeline's requests/s divided by this one's is what the collector and the
Segment destination cost on top of the server itself.

Run: ``python -m benchmarks.bare_app --port 0``; prints ``bare: serving on URL``.
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson

from flows.server.serving import address, bind, make_server
from flows.server.workers import prefork

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_HEADERS = [(b"content-type", b"application/json")]


async def app(scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    data = orjson.loads(b"".join(chunks))
    if isinstance(data, dict) and isinstance(data.get("batch"), list):
        data = data["batch"]
    body = b'{"ok":true,"accepted":%d}' % (len(data) if isinstance(data, list) else 1)
    headers = [*_HEADERS, (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bare_app")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--workers", type=int, default=1, help="processes, as flows run's")
    args = parser.parse_args()
    sock = bind(args.host, args.port)
    url = address(sock)

    def announce(where: str) -> None:
        print(f"bare: serving on {where}", flush=True)

    def serve_one(_index: int, on_listening: Callable[[], None]) -> int:
        make_server(app, 10.0, on_listening=on_listening).run(sockets=[sock])
        return 0

    if args.workers > 1:
        return prefork(sock, url, args.workers, serve_one, announce)
    try:
        return serve_one(0, lambda: announce(url))
    finally:
        sock.close()


if __name__ == "__main__":
    raise SystemExit(main())
