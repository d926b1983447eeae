"""The ``fingerprint`` transformer (walkerOS ``@walkeros/server-transformer-fingerprint``).

Cookieless visitors still need a stable id: this hashes request values (by
default nothing; typically ``ingest.ip`` and ``ingest.userAgent``) into one
and writes it to the event (``user.hash``), so a destination such as Segment
can use it as the ``anonymousId``. Same inputs, same hash, no PII kept.

As walkerOS does: each field is a mapping value resolved against
``{"event": event, "ingest": ingest}``, the values are ``String(v ?? "")``-ed
and concatenated in order, and the SHA-256 hex digest, cut to ``length``, is
set on a copy of the event at ``output``.

One deliberate difference: when every field is empty (no request values, as
in ``flows push``), walkerOS writes the hash of the empty string, the same for
every such visitor, which would merge them all into one identity downstream;
here the event goes on unchanged instead.
"""

from __future__ import annotations

import hashlib
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

from collector.js import js_string
from collector.mapping import MappingContext, Resolver, compile_value
from collector.mapping_config import ValueConfig
from collector.paths import UNDEFINED, compile_setter
from collector.transformer import Event, Transformer, TransformerContext


class FingerprintSettings(BaseModel):
    """``config.settings`` of a fingerprint step, walkerOS's names."""

    model_config = ConfigDict(extra="forbid")

    fields: list[ValueConfig] = Field(
        default_factory=list,
        description=(
            "Values to hash, in order (order matters): mapping values resolved against "
            '{event, ingest}, e.g. "ingest.ip", "event.data.userId", '
            '{"fn": "package.module:function"}'
        ),
    )
    output: StrictStr = Field(
        "user.hash", min_length=1, description="Dot path of the event the hash is written to"
    )
    length: StrictInt | None = Field(
        None, ge=1, description="Keep this many hex characters (default: all 64)"
    )


class FingerprintTransformer(Transformer[FingerprintSettings]):
    """Sets a hash of the configured fields on each event."""

    type = "fingerprint"
    Settings = FingerprintSettings

    def __init__(self, settings: FingerprintSettings, *, step_id: str | None = None) -> None:
        super().__init__(settings, step_id=step_id)
        # Paths are relative to the step's config, as the other steps' errors are.
        self._fields: tuple[Resolver, ...] = tuple(
            compile_value(field, f"settings.fields.{index}")
            for index, field in enumerate(settings.fields)
        )
        self._set = compile_setter(settings.output)
        self._length = settings.length

    def push(self, event: Event, context: TransformerContext) -> Event | Literal[False] | None:
        hashed = self.fingerprint(event, context.ingest)
        return None if hashed is None else self._set(event, hashed)

    def fingerprint(self, event: Event, ingest: dict[str, Any]) -> str | None:
        """The hash of one event's fields (a field that fails or is missing counts as ``""``);
        None when every field is empty."""
        source = {"event": event, "ingest": ingest}
        consent = event.get("consent")
        scope = MappingContext(event, consent if isinstance(consent, dict) else None)
        text = "".join(_as_text(resolve(source, scope)) for resolve in self._fields)
        if not text:
            return None
        digest = hashlib.sha256(_utf8(text)).hexdigest()
        return digest if self._length is None else digest[: self._length]


def _as_text(value: Any) -> str:
    """``String(v ?? "")``."""
    return "" if value is None or value is UNDEFINED else js_string(value)


def _utf8(text: str) -> bytes:
    """UTF-8 as Node writes a string: a lone surrogate (from a ``fn``) becomes U+FFFD."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        repaired = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
        return repaired.encode("utf-8")
