"""Destinations as users write them, for tests: one that blocks on HTTP, one with a bug."""

from __future__ import annotations

import base64
import threading
import urllib.request
from collections.abc import Mapping
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict

from collector.destination import Destination, PushContext, ShutdownReport, Skipped


class WebhookSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str
    writeKey: str = "wk-webhook"  # noqa: N815  # the flow file's spelling


class WebhookDestination(Destination[WebhookSettings]):
    """Posts each event as a Segment track message and waits for the answer (blocks)."""

    type = "webhook"
    Settings = WebhookSettings

    def push(self, event: Mapping[str, Any], context: PushContext) -> Skipped | None:
        message = {
            "type": "track",
            "event": event["name"],
            "anonymousId": "webhook",
            "messageId": f"{event['id']}-webhook",
        }
        auth = base64.b64encode(f"{self.settings.writeKey}:".encode()).decode()
        request = urllib.request.Request(
            self.settings.url + "/v1/track",
            data=orjson.dumps(message),
            headers={"Content-Type": "application/json", "Authorization": f"Basic {auth}"},
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            answer.read()
        return None


class SkuSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SkuDestination(Destination[SkuSettings]):
    """Has a bug: assumes every event's data has a ``sku`` (a KeyError otherwise)."""

    type = "sku"
    Settings = SkuSettings
    blocking = False

    def __init__(self, settings: SkuSettings, *, destination_id: str | None = None) -> None:
        super().__init__(settings, destination_id=destination_id)
        self.skus: list[str] = []

    def push(self, event: Mapping[str, Any], context: PushContext) -> Skipped | None:
        self.skus.append(event["data"]["sku"])
        return None


class StubbornDestination(Destination[SkuSettings]):
    """Ignores the time its ``shutdown`` is given (until ``release`` is set, at most 30 s)."""

    type = "stubborn"
    Settings = SkuSettings
    blocking = False

    def __init__(self, settings: SkuSettings, *, destination_id: str | None = None) -> None:
        super().__init__(settings, destination_id=destination_id)
        self.release = threading.Event()

    def push(self, event: Mapping[str, Any], context: PushContext) -> Skipped | None:
        return None

    def shutdown(self, timeout: float) -> ShutdownReport:
        self.release.wait(30)
        return ShutdownReport()


class BrokenPreviewDestination(Destination[SkuSettings]):
    """A destination with a bug in what it would send: its ``preview`` raises."""

    type = "broken-preview"
    Settings = SkuSettings

    def push(self, event: Mapping[str, Any], context: PushContext) -> Skipped | None:
        return None

    def preview(
        self, event: Mapping[str, Any], context: PushContext
    ) -> list[dict[str, Any]] | Skipped:
        raise KeyError("sku")
