"""walkerOS consent semantics on their own: what "granted" means and whose state wins."""

from __future__ import annotations

from collector.consent import is_granted, merge_consent


def test_no_requirement_is_granted_and_an_empty_one_grants_nothing() -> None:
    assert is_granted(None, None)
    assert is_granted(None, {"analytics": False})
    assert not is_granted({}, {"analytics": True})


def test_any_one_required_state_granted_is_enough() -> None:
    required = {"analytics": True, "marketing": True}
    assert is_granted(required, {"marketing": True})
    assert not is_granted(required, {"analytics": False, "marketing": False})
    assert not is_granted(required, {})
    assert not is_granted(required, None)
    assert not is_granted({"analytics": False}, {"analytics": True}), (
        "a false requirement asks nothing"
    )


def test_the_events_states_win_over_the_defaults_and_nothing_is_shared() -> None:
    event = {"marketing": False}
    merged = merge_consent(None, event)
    assert merged == {"marketing": False}
    assert merged is not event
    assert merge_consent({}, event) == {"marketing": False}
    assert merge_consent(None, None) == {}
    defaults = {"functional": True, "marketing": True}
    assert merge_consent(defaults, None) == defaults
    assert merge_consent(defaults, {}) is not defaults
    assert merge_consent(defaults, event) == {"functional": True, "marketing": False}
