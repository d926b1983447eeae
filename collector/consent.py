"""Consent checks, walkerOS semantics: any one required state granted is enough."""

from __future__ import annotations

from collections.abc import Mapping


def is_granted(required: Mapping[str, bool] | None, state: Mapping[str, bool] | None) -> bool:
    """True when ``required`` is unset, or one of its keys is granted in ``state``.

    walkerOS grants a rule when any of the states it names is given (an
    empty requirement grants nothing), so ``{"analytics": true,
    "marketing": true}`` reads "analytics or marketing".
    """
    if required is None:
        return True
    if not state:
        return False
    return any(wanted and state.get(name) is True for name, wanted in required.items())


def merge_consent(
    defaults: Mapping[str, bool] | None, event: Mapping[str, bool] | None
) -> dict[str, bool]:
    """The effective consent of an event: its own states over the collector's defaults."""
    if not defaults:
        return dict(event) if event else {}
    if not event:
        return dict(defaults)
    return {**defaults, **event}
