"""The ``demo`` destination (walkerOS ``@walkeros/destination-demo``): each event, logged.

For trying a flow out without any service behind it. It logs what walkerOS's
logs, line for line: ``[name] initialized`` once, then per event ``[name] ``
and the event (or only the ``values`` picked from it) as
``JSON.stringify(..., null, 2)``. The lines go to the destination's logger at
INFO, which ``flows run`` shows by default (``--log-level info``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictStr

from collector.destination import Destination, PushContext, Skipped
from collector.js import js_json
from collector.paths import UNDEFINED, compile_path


class DemoSettings(BaseModel):
    """walkerOS's two settings: the log prefix and which values to show."""

    model_config = ConfigDict(extra="forbid")

    name: StrictStr = Field("demo", description="Prefix of each log line: [name]")
    values: list[StrictStr] | None = Field(
        None,
        description='Dot paths of the event to log, e.g. "data.title" (default: the whole event)',
    )


class DemoDestination(Destination[DemoSettings]):
    """Logs each event it receives, as walkerOS's demo destination does."""

    type = "demo"
    Settings = DemoSettings
    blocking = False  # one log line per event, as the log destination writes one

    def __init__(self, settings: DemoSettings, *, destination_id: str | None = None) -> None:
        super().__init__(settings, destination_id=destination_id)
        self._prefix = f"[{settings.name}] "
        self._values: tuple[tuple[str, Callable[[Any], Any]], ...] | None = (
            None
            if settings.values is None
            else tuple((path, compile_path(path)) for path in settings.values)
        )

    def init(self) -> None:
        self.logger.info("%sinitialized", self._prefix)

    def push(self, event: Mapping[str, Any], context: PushContext) -> Skipped | None:
        if self.logger.isEnabledFor(logging.INFO):  # no JSON built for a line nobody sees
            self.logger.info("%s%s", self._prefix, js_json(self.output(event)))
        return None

    def output(self, event: Mapping[str, Any]) -> Mapping[str, Any]:
        """The event, or the ``values`` found in it keyed by their path (missing ones left out)."""
        if self._values is None:
            return event
        picked: dict[str, Any] = {}
        for path, get in self._values:
            value = get(event)
            if value is not UNDEFINED:
                picked[path] = value
        return picked
