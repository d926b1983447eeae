"""What every step of a flow shares: a ``type``, a pydantic ``Settings`` model, an id.

Sources, transformers, destinations and stores are all steps of the walkerOS
v4 graph; each kind adds its own operation (``push`` for transformers and
destinations, ``get``/``set`` for stores) on top of this one life cycle:
created with checked settings at load, ``init`` once before the first event,
``shutdown`` once at the end.
"""

from __future__ import annotations

import builtins
import logging
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict

SettingsT = TypeVar("SettingsT", bound=BaseModel)


class NoSettings(BaseModel):
    """The settings model of a step that takes none."""

    model_config = ConfigDict(extra="forbid")


class Step(Generic[SettingsT]):
    """Base of transformers and stores (destinations keep their own, older, constructor)."""

    type: ClassVar[str]
    Settings: ClassVar[builtins.type[BaseModel]] = NoSettings
    kind: ClassVar[str] = "step"

    def __init__(self, settings: SettingsT, *, step_id: str | None = None) -> None:
        self.settings = settings
        self.id = step_id or self.type
        self.logger = logging.getLogger(f"flows.{self.kind}.{self.id}")

    def init(self) -> None:
        """Open connections or load data; called once before the first event."""

    def shutdown(self, timeout: float) -> Any:
        """Release resources within ``timeout`` seconds."""
        return None
