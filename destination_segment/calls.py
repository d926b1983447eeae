"""What to send: a walkerOS event and its matched rule in, Segment Spec calls out.

Pure apart from the de-duplication state it is handed, so ``flows push``
prints exactly what would be sent, and tests compare it with the walkerOS
examples without mocks. ``client.py`` decides how to send.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from collector.destination import PushContext
from collector.mapping import MappingConfigError, MappingContext, Resolver, compile_value
from destination_segment.identity import SeenCache, SeenMemory, traits_fingerprint
from destination_segment.settings import SegmentSettings

CallType = Literal["identify", "group", "page", "screen", "track"]
MAX_MESSAGE_ID = 100


@dataclass(slots=True)
class SegmentCall:
    """One Spec call; ``params`` uses the Segment message's camelCase field names."""

    type: CallType
    params: dict[str, Any]
    dedup_key: Hashable | None = None
    fingerprint: Any = None
    """The traits' fingerprint, kept for a de-dup decided after the call was built."""


@dataclass(slots=True, frozen=True)
class RuleSettings:
    """A rule's Segment settings after compilation: mappings or ``True`` (page/screen)."""

    identify: Resolver | None = None
    group: Resolver | None = None
    page: Resolver | Literal[True] | None = None
    screen: Resolver | Literal[True] | None = None


_RULE_KEYS = ("identify", "group", "page", "screen")


def compile_rule_settings(settings: dict[str, Any], path: str) -> RuleSettings:
    """Compile ``rule.settings`` of the Segment destination once, at load."""
    unknown = sorted(set(settings) - set(_RULE_KEYS))
    if unknown:
        from difflib import get_close_matches

        close = get_close_matches(unknown[0], _RULE_KEYS, n=1)
        hint = f'; did you mean "{close[0]}"?' if close else f"; use one of {', '.join(_RULE_KEYS)}"
        raise MappingConfigError(f"{path}.{unknown[0]}", f"unknown Segment rule setting{hint}")
    compiled: dict[str, Any] = {}
    for key in _RULE_KEYS:
        if key not in settings or settings[key] is None:
            continue
        value = settings[key]
        if value is True and key in ("page", "screen"):
            compiled[key] = True
        elif isinstance(value, bool):
            raise MappingConfigError(f"{path}.{key}", "must be a value config object")
        else:
            compiled[key] = compile_value(value, f"{path}.{key}")
    return RuleSettings(**compiled)


@dataclass(slots=True)
class CallPlan:
    """The destination-level part of the call building, compiled from the settings."""

    user_id: Resolver | None
    anonymous_id: Resolver | None
    identify: Resolver | None
    group: Resolver | None
    consent: tuple[tuple[str, str], ...]
    integrations: dict[str, Any] | None
    identities: SeenMemory = field(default_factory=SeenCache)
    groups: SeenMemory = field(default_factory=SeenCache)
    fingerprint: Callable[[Any], Any] = traits_fingerprint
    """How traits are fingerprinted; a shared store needs one that is stable across processes."""

    @classmethod
    def from_settings(cls, settings: SegmentSettings, path: str = "settings") -> CallPlan:
        def optional(config: Any, where: str) -> Resolver | None:
            return None if config is None else compile_value(config, f"{path}.{where}")

        return cls(
            user_id=optional(settings.user_id, "userId"),
            anonymous_id=optional(settings.anonymous_id, "anonymousId"),
            identify=optional(settings.identify, "identify"),
            group=optional(settings.group, "group"),
            consent=tuple((settings.consent or {}).items()),
            integrations=settings.integrations or None,
            identities=SeenCache(settings.dedup_cache_size),
            groups=SeenCache(settings.dedup_cache_size),
        )

    def calls_per_event(self, rule: RuleSettings | None) -> int:
        """The most calls an event matching ``rule`` (None: no rule settings) can make."""
        rule = rule or _NO_RULE
        return (
            1  # track
            + bool(rule.identify or self.identify)
            + bool(rule.group or self.group)
            + (rule.page is not None)
            + (rule.screen is not None)
        )

    def build(self, event: Mapping[str, Any], context: PushContext) -> list[SegmentCall] | None:
        """The ordered calls for one event (identify, group, page, screen, track).

        None when neither userId nor anonymousId resolves: Segment needs one.
        """
        scope = MappingContext(event, context.consent)
        user_id = self.user_id(event, scope) if self.user_id is not None else None
        if not isinstance(user_id, str) or not user_id:
            user_id = None
        anonymous_id = self.anonymous_id(event, scope) if self.anonymous_id is not None else None
        if not isinstance(anonymous_id, str) or not anonymous_id:
            anonymous_id = None
        if user_id is None and anonymous_id is None:
            return None
        identity: dict[str, Any] = {}
        if user_id is not None:
            identity["userId"] = user_id
        if anonymous_id is not None:
            identity["anonymousId"] = anonymous_id
        timestamp = _timestamp(event)
        event_id = str(event.get("id") or "")
        rule = context.rule.settings if context.rule is not None else None
        rule_settings = rule if isinstance(rule, RuleSettings) else _NO_RULE
        consent = self._consent_context(event)
        calls: list[SegmentCall] = []

        identify = rule_settings.identify or self.identify
        if identify is not None:
            call = self._identify(identify, event, scope, identity)
            if call is not None:
                calls.append(call)
        group = rule_settings.group or self.group
        if group is not None:
            call = self._group(group, event, scope, identity)
            if call is not None:
                calls.append(call)
        for kind, view in (("page", rule_settings.page), ("screen", rule_settings.screen)):
            if view is not None:
                call = _page_or_screen(kind, view, event, scope, identity)  # type: ignore[arg-type]
                if call is not None:
                    calls.append(call)
        if not context.silent:
            name = event.get("name")
            data = context.data
            calls.append(
                SegmentCall(
                    "track",
                    {
                        **identity,
                        "event": name,
                        "properties": data if type(data) is dict else {},
                    },
                )
            )
        for call in calls:
            params = call.params
            params["timestamp"] = timestamp
            if consent is not None:
                params["context"] = {"consent": {"categoryPreferences": dict(consent)}}
            if self.integrations is not None:
                params["integrations"] = dict(self.integrations)
            params["messageId"] = message_id(event_id, call.type) if event_id else None
        return calls

    def _identify(
        self,
        resolver: Resolver,
        event: Mapping[str, Any],
        scope: MappingContext,
        identity: dict[str, Any],
    ) -> SegmentCall | None:
        resolved = resolver(event, scope)
        if type(resolved) is not dict:
            return None
        user_id = resolved.get("userId")
        if not isinstance(user_id, str) or not user_id:
            user_id = identity.get("userId")
        traits = resolved.get("traits")
        traits = traits if type(traits) is dict else None
        key = ("u", user_id) if user_id else ("a", identity.get("anonymousId"))
        fingerprint = self.fingerprint(traits)
        if not self.identities.changed(key, fingerprint):
            return None
        params = dict(identity)
        if user_id:
            params["userId"] = user_id
        if traits is not None:
            params["traits"] = traits
        return SegmentCall("identify", params, key, fingerprint)

    def _group(
        self,
        resolver: Resolver,
        event: Mapping[str, Any],
        scope: MappingContext,
        identity: dict[str, Any],
    ) -> SegmentCall | None:
        resolved = resolver(event, scope)
        if type(resolved) is not dict:
            return None
        group_id = resolved.get("groupId")
        if not isinstance(group_id, str) or not group_id:
            return None
        traits = resolved.get("traits")
        traits = traits if type(traits) is dict else None
        # A group call ties a user to a group: remember it per user and group.
        key = (identity.get("userId") or identity.get("anonymousId"), group_id)
        fingerprint = self.fingerprint(traits)
        if not self.groups.changed(key, fingerprint):
            return None
        params = {**identity, "groupId": group_id}
        if traits is not None:
            params["traits"] = traits
        return SegmentCall("group", params, key, fingerprint)

    def _consent_context(self, event: Mapping[str, Any]) -> dict[str, bool] | None:
        if not self.consent:
            return None
        state = event.get("consent")
        if not isinstance(state, dict):
            return None
        preferences = {
            category: state[key] is True for key, category in self.consent if key in state
        }
        return preferences or None

    def forget(self, call: SegmentCall) -> None:
        """Undo the de-dup memory of a call that could not be sent, so it fires again."""
        if call.dedup_key is None:
            return
        cache = self.identities if call.type == "identify" else self.groups
        cache.forget(call.dedup_key)


_NO_RULE = RuleSettings()


def _page_or_screen(
    kind: Literal["page", "screen"],
    view: Resolver | Literal[True],
    event: Mapping[str, Any],
    scope: MappingContext,
    identity: dict[str, Any],
) -> SegmentCall | None:
    params = dict(identity)
    if view is True:
        return SegmentCall(kind, params)
    resolved = view(event, scope)
    if type(resolved) is not dict:
        return None
    category = resolved.get("category")
    if isinstance(category, str):
        params["category"] = category
    name = resolved.get("name")
    if isinstance(name, str):
        params["name"] = name
    properties = resolved.get("properties")
    if type(properties) is dict:
        params["properties"] = properties
    return SegmentCall(kind, params)


def _timestamp(event: Mapping[str, Any]) -> datetime:
    millis = event.get("timestamp")
    if not isinstance(millis, int | float) or isinstance(millis, bool):
        return datetime.now(UTC)
    return datetime.fromtimestamp(millis / 1000, tz=UTC)


def message_id(event_id: str, call_type: str) -> str:
    """Deterministic per event and call: a re-sent event is de-duplicated by Segment."""
    candidate = f"{event_id}-{call_type}"
    if len(candidate) <= MAX_MESSAGE_ID:
        return candidate
    import hashlib

    digest = hashlib.sha256(event_id.encode()).hexdigest()
    return f"{digest}-{call_type}"
