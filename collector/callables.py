"""Callables named in config by import path (``"package.module:function"``).

Config never carries code: ``fn``, ``condition`` and ``validate`` name a
Python function that is imported once, at load.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


class CallableImportError(ValueError):
    """An import path in a config does not name a callable."""


def import_callable(reference: str) -> Callable[..., Any]:
    """Import ``"module:attr"`` (``"module.attr"`` also works) and check it is callable."""
    if not isinstance(reference, str) or not reference.strip():
        raise CallableImportError('must be an import path such as "package.module:function"')
    module_name, sep, attr_path = reference.partition(":")
    if not sep:
        module_name, _, attr_path = reference.rpartition(".")
    if not module_name or not attr_path:
        raise CallableImportError(
            f'{reference!r} is not an import path such as "package.module:function"'
        )
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as error:
        raise CallableImportError(f"cannot import module {module_name!r}: {error}") from None
    for part in attr_path.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise CallableImportError(f"module {module_name!r} has no {attr_path!r}") from None
    if not callable(target):
        raise CallableImportError(f"{reference!r} is not callable")
    return target  # type: ignore[no-any-return]
