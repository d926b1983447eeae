"""The ``log`` destination: each event as one JSON line, for debugging flows.

It is also the smallest complete example of the destination interface.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, StrictStr

from collector.destination import Destination, PushContext, ShutdownReport, Skipped
from collector.paths import UNDEFINED, compile_path


class LogSettings(BaseModel):
    """Where to write, and which fields of the event to keep."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    stream: Literal["stdout", "stderr"] = "stdout"
    path: StrictStr | None = Field(None, description="Append to this file instead of a stream")
    fields: list[StrictStr] | None = Field(
        None, description="Dot paths to keep (default: the whole event)"
    )
    include_data: bool = Field(
        True, alias="includeData", description="Add the mapped data as `data_mapped`"
    )


class LogDestination(Destination[LogSettings]):
    """Writes each event it receives as one JSON line."""

    type = "log"
    Settings = LogSettings
    blocking = False  # one short write per event; a worker thread would cost more

    def __init__(self, settings: LogSettings, *, destination_id: str | None = None) -> None:
        super().__init__(settings, destination_id=destination_id)
        self._lock = threading.Lock()
        self._file: IO[bytes] | None = None
        self._fields: list[tuple[str, Callable[[Any], Any]]] = [
            (name, compile_path(name)) for name in settings.fields or ()
        ]

    def init(self) -> None:
        if self.settings.path:
            self._file = Path(self.settings.path).open("ab")  # noqa: SIM115 - closed in shutdown

    def push(self, event: Mapping[str, Any], context: PushContext) -> Skipped | None:
        record: dict[str, Any]
        if self._fields:
            record = {}
            for name, getter in self._fields:
                value = getter(event)
                if value is not UNDEFINED:
                    record[name] = value
        else:
            record = dict(event)
        if self.settings.include_data and context.data is not UNDEFINED:
            record["data_mapped"] = context.data
        line = orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE)
        with self._lock:
            if self._file is not None:
                self._file.write(line)
            else:
                out = sys.stdout if self.settings.stream == "stdout" else sys.stderr
                out.buffer.write(line)
                out.flush()
        return None

    def shutdown(self, timeout: float) -> ShutdownReport:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None
        return ShutdownReport()
