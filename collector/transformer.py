"""The transformer interface: a step that sees an event and passes it on, changed or not.

walkerOS runs transformers in chains: a source's ``next`` chain after the
collector has validated and enriched the event (before any destination), and
a destination's ``before`` chain for that destination only. ``push`` returns

- ``None``: go on with the event unchanged;
- a dict: go on with that event instead (build a changed copy, never change
  the event in place: other destinations share it);
- ``False``: stop the chain here; the event goes no further on this path.

A transformer that refuses an event for good (a strict tracking plan) raises
``collector.destination.EventRejected``: the source then answers that event
as rejected, with the reason, instead of 200.
"""

from __future__ import annotations

import logging
from abc import abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, TypeAlias

from collector.step import SettingsT, Step

Event: TypeAlias = dict[str, Any]
TransformResult: TypeAlias = "Event | Literal[False] | None"


@dataclass(slots=True)
class TransformerContext:
    """What a transformer gets beside the event.

    ``ingest`` describes the request the event came with (``ip``,
    ``userAgent``, ``language``, ``origin``, ``referer``, ``method``, ``path``,
    ``headers``, or what the source's ``config.ingest`` mapping made of them);
    a transformer may add to it (validate writes its errors there), later
    steps of the same event see that.
    """

    ingest: dict[str, Any]
    logger: logging.Logger
    id: str = ""
    stores: dict[str, Any] = field(default_factory=dict)


class Transformer(Step[SettingsT]):
    """Base class for transformers; subclass with ``type`` and ``Settings`` set."""

    kind: ClassVar[str] = "transformer"

    @abstractmethod
    def push(self, event: Event, context: TransformerContext) -> Event | Literal[False] | None:
        """Return None (unchanged), a changed copy, or False (stop the chain)."""


class FunctionTransformer(Transformer[Any]):
    """An inline ``code`` step: ``{"type": "filter", "push": "module:function"}``.

    The function has ``push``'s signature: ``(event, context)``.
    """

    type = "code"

    def __init__(
        self,
        function: Callable[[Event, TransformerContext], Any],
        *,
        step_id: str | None = None,
        settings: Any = None,
    ) -> None:
        super().__init__(settings, step_id=step_id)
        self.function = function

    def push(self, event: Event, context: TransformerContext) -> Event | Literal[False] | None:
        return self.function(event, context)  # type: ignore[no-any-return]
