"""Watching the worker processes of ``flows run --workers`` from the outside, through /proc.

Which worker answered a request is told by the kernel: the server end of the
client's TCP connection is a socket inode that only one worker holds open.
"""

from __future__ import annotations

import os
import re
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import httpx

T = TypeVar("T")
PROC = Path("/proc")


def wait_until(check: Callable[[], T], timeout: float, what: str) -> T:
    """Poll ``check`` until it returns something truthy, failing after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.02)


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, parent pid) of a process, or None when it is gone."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return fields[0], int(fields[1])


def alive(pid: int) -> bool:
    """Running (a zombie nobody reaped has exited: in a container PID 1 may never reap)."""
    stat = _stat(pid)
    return stat is not None and stat[0] != "Z"


def children(parent: int) -> set[int]:
    """The live child processes of ``parent``."""
    found = set()
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            stat = _stat(int(entry.name))
            if stat is not None and stat[1] == parent and stat[0] != "Z":
                found.add(int(entry.name))
    return found


def _server_inode(client_port: int, server_port: int) -> str | None:
    """The inode of the server side of the loopback connection from ``client_port``."""
    wanted_local = f"0100007F:{server_port:04X}"
    wanted_remote = f"0100007F:{client_port:04X}"
    for line in (PROC / "net" / "tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1] == wanted_local and fields[2] == wanted_remote:
            return fields[9]
    return None


def serving_pid(response: httpx.Response, candidates: set[int]) -> int | None:
    """Which of ``candidates`` holds the connection ``response`` came on (None: none now)."""
    stream = response.extensions["network_stream"]
    client_port = stream.get_extra_info("client_addr")[1]
    server_port = stream.get_extra_info("server_addr")[1]
    inode = _server_inode(client_port, server_port)
    if inode is None:
        return None
    target = f"socket:[{inode}]"
    for pid in candidates:
        fd_dir = PROC / str(pid) / "fd"
        try:
            names = os.listdir(fd_dir)
        except OSError:
            continue
        for name in names:
            try:
                if os.readlink(fd_dir / name) == target:
                    return pid
            except OSError:
                continue
    return None


class LogLines:
    """Every line a process writes to stderr, read in a thread so the pipe never fills."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        assert process.stderr is not None
        self.lines: list[str] = []
        self._stream = process.stderr
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        for line in self._stream:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, pattern: str, timeout: float) -> re.Match[str]:
        """The first line matching ``pattern`` (a regex), waiting up to ``timeout`` seconds."""
        compiled = re.compile(pattern)

        def find() -> re.Match[str] | None:
            for line in list(self.lines):
                match = compiled.search(line)
                if match:
                    return match
            return None

        try:
            return wait_until(find, timeout, f"a log line matching {pattern!r}")
        except AssertionError:
            raise AssertionError(
                f"no log line matching {pattern!r} within {timeout} s; got:\n" + self.text()
            ) from None

    def matching(self, pattern: str) -> list[str]:
        compiled = re.compile(pattern)
        return [line for line in list(self.lines) if compiled.search(line)]

    def text(self) -> str:
        return "\n".join(self.lines)

    def close(self, timeout: float = 10) -> None:
        """Wait for EOF (every process writing to the pipe has exited)."""
        self._thread.join(timeout)
