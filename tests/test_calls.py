"""The Segment call building at its edges: ids that are not ids, shared sessions, rule
settings that are wrong, and events the collector did not enrich.

Each case pins a decision ``calls.py`` makes about what is sent (found by
``make mutate``: docs/mutation-survivors.md), in the pure part, no SDK.
"""

from __future__ import annotations

import logging
from datetime import UTC
from typing import Any

import pytest

from collector.collector import Collector, DestinationSetupError, build_destination
from collector.destination import PushContext
from collector.mapping import MappingConfigError
from collector.paths import UNDEFINED
from destination_segment.calls import CallPlan, SegmentCall
from destination_segment.settings import SegmentSettings
from tests.segment_helpers import WRITE_KEY

TRAITS = {"identify": {"map": {"traits": {"map": {"plan": "data.plan"}}}}}
GROUP = {"group": {"map": {"groupId": "data.company", "traits": {"map": {"plan": "data.plan"}}}}}


class Calls:
    """One Segment destination's pure call building; each event goes through the collector."""

    def __init__(self, settings: dict[str, Any], mapping: dict[str, Any] | None = None) -> None:
        config: dict[str, Any] = {"settings": {"writeKey": WRITE_KEY, **settings}}
        if mapping is not None:
            config["mapping"] = mapping
        self.active = build_destination("segment", "segment", config)
        self.collector = Collector(None, [self.active])

    def __call__(self, **raw: Any) -> list[SegmentCall]:
        event = self.collector.prepare({"name": "product view", **raw})
        routed = self.active.route(event, event["consent"])
        assert isinstance(routed, tuple), routed
        built = self.active.destination.calls(*routed)  # type: ignore[attr-defined]
        return list(built) if built is not None else []

    def types(self, **raw: Any) -> list[str]:
        return [call.type for call in self(**raw)]


def _setup_error(mapping: dict[str, Any]) -> tuple[str, str]:
    with pytest.raises(DestinationSetupError) as caught:
        Calls({}, {"page": {"view": mapping}})
    return caught.value.path, caught.value.reason


RULE = "destinations.segment.config.mapping.page.view.settings"


# -- rule settings: checked at load, with the path and a suggestion -----------------------------


def test_an_unknown_rule_setting_names_the_first_one_and_suggests_the_close_key() -> None:
    assert _setup_error({"settings": {"identfy": {}, "zzz": {}}}) == (
        f"{RULE}.identfy",
        'unknown Segment rule setting; did you mean "identify"?',
    )
    assert _setup_error({"settings": {"zzz": {}}}) == (
        f"{RULE}.zzz",
        "unknown Segment rule setting; use one of identify, group, page, screen",
    )


def test_true_is_only_for_page_and_screen_and_a_bad_value_config_names_its_path() -> None:
    assert _setup_error({"settings": {"identify": True}}) == (
        f"{RULE}.identify",
        "must be a value config object",
    )
    assert _setup_error({"settings": {"page": False}}) == (
        f"{RULE}.page",
        "must be a value config object",
    )
    path, reason = _setup_error({"settings": {"page": {"mpa": {}}}})
    assert path == f"{RULE}.page.mpa"
    assert reason.startswith("unknown value config key 'mpa'")


def test_page_true_and_screen_true_make_calls_with_the_identity_only() -> None:
    calls = Calls({}, {"page": {"view": {"silent": True, "settings": {"page": True}}}})
    [page] = calls(name="page view", id="p1", user={"id": "u1"}, data={"title": "Home"})
    assert (page.type, page.params["userId"]) == ("page", "u1")
    assert not {"name", "category", "properties"} & set(page.params)
    screens = Calls({}, {"screen": {"view": {"silent": True, "settings": {"screen": True}}}})
    assert [c.type for c in screens(name="screen view", user={"id": "u1"})] == ["screen"]


def test_destination_settings_errors_name_the_setting() -> None:
    for name, config in (
        ("userId", "$.[["),
        ("anonymousId", "$.[["),
        ("identify", {"key": "$.[["}),
        ("group", {"key": "$.[["}),
    ):
        settings = SegmentSettings.model_validate({"writeKey": WRITE_KEY, name: config})
        with pytest.raises(MappingConfigError) as caught:
            CallPlan.from_settings(settings)
        path = caught.value.path
        assert path in (f"settings.{name}", f"settings.{name}.key"), path
        assert caught.value.reason.startswith("invalid JSONPath '$.[['")


def test_the_dedup_cache_size_setting_bounds_both_memories() -> None:
    calls = Calls({**TRAITS, **GROUP, "dedupCacheSize": 1})
    data = {"plan": "pro", "company": "acme"}
    assert calls.types(user={"id": "a"}, data=data) == ["identify", "group", "track"]
    assert calls.types(user={"id": "b"}, data=data) == ["identify", "group", "track"]
    assert calls.types(user={"id": "a"}, data=data) == ["identify", "group", "track"]  # evicted


# -- identities: only non-empty strings, and the memory keyed by who it is -----------------------


def test_ids_that_are_not_non_empty_strings_are_no_ids() -> None:
    calls = Calls({"userId": "data.uid", "anonymousId": "data.anon"})
    [track] = calls(data={"uid": 42, "anon": "s1"})
    assert ("userId" not in track.params, track.params["anonymousId"]) == (True, "s1")
    [track] = calls(data={"uid": "u1", "anon": ""})
    assert (track.params["userId"], "anonymousId" not in track.params) == ("u1", True)
    assert calls(data={"uid": ["u1"], "anon": 7}) == [], "no identity: nothing to send"


def test_id_mappings_see_the_events_consent() -> None:
    calls = Calls({"userId": {"key": "user.id", "consent": {"marketing": True}}})
    granted = calls(user={"id": "u1", "session": "s1"}, consent={"marketing": True})
    denied = calls(user={"id": "u1", "session": "s1"}, consent={"marketing": False})
    assert granted[0].params.get("userId") == "u1"
    assert "userId" not in denied[0].params


def test_a_per_event_identify_user_id_must_be_a_string_else_the_events_is_kept() -> None:
    identify = {"identify": {"map": {"userId": "data.uid", "traits": {"map": {"p": "data.p"}}}}}
    calls = Calls(identify)
    [call, _] = calls(user={"id": "u1"}, data={"uid": 5, "p": 1})
    assert call.params["userId"] == "u1"
    [call, _] = calls(user={"id": "u2"}, data={"uid": "new", "p": 1})
    assert call.params["userId"] == "new"


def test_two_users_sharing_a_session_are_identified_and_grouped_each() -> None:
    calls = Calls({**TRAITS, **GROUP})
    data = {"plan": "pro", "company": "acme"}
    assert calls.types(user={"id": "a", "session": "s"}, data=data) == [
        "identify",
        "group",
        "track",
    ]
    assert calls.types(user={"id": "b", "session": "s"}, data=data) == [
        "identify",
        "group",
        "track",
    ]


def test_two_anonymous_visitors_are_identified_and_grouped_each() -> None:
    calls = Calls({**TRAITS, **GROUP})
    data = {"plan": "pro", "company": "acme"}
    for session in ("s1", "s2"):
        calls_of = calls(user={"session": session}, data=data)
        assert [c.type for c in calls_of] == ["identify", "group", "track"], session
        assert calls_of[0].params["anonymousId"] == session
        assert "userId" not in calls_of[0].params
    # and the same anonymous visitor again: remembered under the session
    assert calls.types(user={"session": "s1"}, data=data) == ["track"]


def test_traits_that_are_not_an_object_are_left_out() -> None:
    calls = Calls(
        {
            "identify": {"map": {"traits": "data.plan"}},
            "group": {"map": {"groupId": "data.company", "traits": "data.plan"}},
        }
    )
    identify, group, _ = calls(user={"id": "u1"}, data={"plan": "pro", "company": "acme"})
    assert "traits" not in identify.params
    assert "traits" not in group.params


def test_page_values_see_the_events_consent() -> None:
    page = {"map": {"name": {"key": "data.title", "consent": {"analytics": True}}}}
    calls = Calls({}, {"page": {"view": {"silent": True, "settings": {"page": page}}}})
    [granted] = calls(
        name="page view", user={"id": "u"}, data={"title": "Home"}, consent={"analytics": True}
    )
    [denied] = calls(name="page view", user={"id": "u"}, data={"title": "Home"}, consent={})
    assert (granted.params.get("name"), denied.params.get("name")) == ("Home", None)


# -- an event the collector did not enrich -------------------------------------------------------


def test_without_an_event_id_the_sdk_makes_the_message_id_and_without_a_timestamp_now() -> None:
    plan = CallPlan.from_settings(SegmentSettings.model_validate({"writeKey": WRITE_KEY}))
    context = PushContext(None, UNDEFINED, {}, logging.getLogger("test"))
    [track] = plan.build({"name": "product view", "user": {"id": "u1"}}, context) or []
    assert track.params["messageId"] is None
    assert track.params["timestamp"].tzinfo is UTC
    [track] = (
        plan.build({"name": "a b", "id": "", "user": {"id": "u1"}, "timestamp": "x"}, context) or []
    )
    assert track.params["messageId"] is None
    assert track.params["timestamp"].tzinfo is UTC
