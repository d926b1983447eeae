"""An inline ``code`` destination: ``{"push": "module:function"}`` in a flow file.

walkerOS lets a flow define a destination in place; here ``push`` names a
Python function with ``Destination.push``'s signature, ``(event, context)``.
It may block (it is user code), so it runs on the http source's worker threads.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict

from collector.destination import Destination, PushContext, Skipped


class FunctionSettings(BaseModel):
    """An inline destination's settings: free-form, handed to the function as ``settings``."""

    model_config = ConfigDict(extra="allow")


class FunctionDestination(Destination[FunctionSettings]):
    """Calls the named function for each event."""

    type = "code"
    Settings = FunctionSettings

    def __init__(
        self,
        settings: FunctionSettings,
        *,
        destination_id: str | None = None,
        function: Callable[[Mapping[str, Any], PushContext], Any] | None = None,
    ) -> None:
        super().__init__(settings, destination_id=destination_id)
        self.function = function

    def push(self, event: Mapping[str, Any], context: PushContext) -> Skipped | None:
        if self.function is None:
            raise RuntimeError(f"destination {self.id}: no function to call")
        result = self.function(event, context)
        return result if isinstance(result, Skipped) else None
