"""A real ``redis-server`` on a free loopback port for the length of a test, never a fake."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.cli_helpers import free_port

INSTALL = "apt-get install -y redis-server"


class RedisServer:
    """One ``redis-server`` process: no persistence, bound to 127.0.0.1; stop and start it again."""

    def __init__(self, directory: Path, *, appendonly: bool = False) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail(f"redis-server is not installed; the Redis tests need it: {INSTALL}")
        self.binary = binary
        self.directory = directory
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None
        self.appendonly = appendonly
        """Keep the data across a stop and start (an append-only file, fsync always)."""

    def start(self) -> None:
        """Start on the same port and wait until it answers PING (10 s at most)."""
        self.process = subprocess.Popen(
            [
                *(self.binary, "--port", str(self.port), "--bind", "127.0.0.1"),
                *("--save", "", "--dir", str(self.directory)),
                *(
                    ("--appendonly", "yes", "--appendfsync", "always")
                    if self.appendonly
                    else ("--appendonly", "no")
                ),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = self.client()
        deadline = time.monotonic() + 10
        while True:
            try:
                if client.ping():
                    break
            except redis.ConnectionError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(
                        f"redis-server on port {self.port} did not start"
                    ) from None
                time.sleep(0.02)
        client.close()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self.process = None

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_timeout=2, decode_responses=True)

    def commands(self) -> dict[str, int]:
        """Calls per command since the last ``reset_stats`` (INFO commandstats)."""
        with self.client() as client:
            stats = client.info("commandstats")
        return {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()}

    def reset_stats(self) -> None:
        with self.client() as client:
            client.config_resetstat()


@contextmanager
def redis_server(directory: Path) -> Iterator[RedisServer]:
    server = RedisServer(directory)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def write_redis_flow(
    directory: Path, segment: dict[str, Any], config: dict[str, Any] | None = None
) -> Path:
    """``flow.json`` in ``directory``: a ``redis`` store ``shared`` at ``$env.REDIS_URL``, the
    http source and a Segment destination with ``segment`` settings; ``config``: the flow's
    ``config`` block (the buffer's settings)."""
    flow: dict[str, Any] = {
        "stores": {
            "shared": {"package": "redis", "config": {"settings": {"url": "$env.REDIS_URL"}}}
        },
        "sources": {"http": {"package": "http"}},
        "destinations": {"segment": {"package": "segment", "config": {"settings": segment}}},
    }
    if config is not None:
        flow = {"config": config, **flow}
    path = directory / "flow.json"
    path.write_text(json.dumps({"version": 4, "flows": {"default": flow}}))
    return path
