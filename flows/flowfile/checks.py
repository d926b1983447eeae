"""Checks on a resolved flow that report every place at once: ``$store`` ids and ``$code:``.

Both reference kinds are left as strings by resolution (as in walkerOS core):
``$store.ID`` is for the builder to replace with the store instance, and
``$code:`` is JavaScript that walkerOS's bundler pastes into its bundle. This
runtime runs Python, so a ``$code:`` string can never work; the check says
what to write instead, for each place.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Final

from flows.flowfile.errors import did_you_mean

__all__ = [
    "CODE_PREFIX",
    "STORE_PREFIX",
    "FlowCheckError",
    "check_no_code",
    "check_store_references",
    "find_code",
]

CODE_PREFIX: Final = "$code:"
STORE_PREFIX: Final = "$store."
REF_STORE: Final = re.compile(r"\$store\.([a-zA-Z_][a-zA-Z0-9_]*)")
"""A whole-string store reference (``fullmatch``), walkerOS's ``REF_STORE``."""

CALLABLE_FIELDS: Final = frozenset({"fn", "condition", "validate"})
"""Mapping value fields that name a function."""


class FlowCheckError(ValueError):
    """A resolved flow uses something this runtime cannot: one ``path: reason`` line each."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = list(errors)
        super().__init__("\n".join(self.errors))


def check_store_references(flow: Mapping[str, Any], path: str) -> None:
    """Every ``$store.ID`` string in ``flow`` names one of its ``stores``; all misses listed.

    The line is walkerOS's flow-validation text (``Unknown store "$store.ID".
    Defined: a, b`` or ``none``) after the JSON path, with a close id suggested.
    """
    stores = flow.get("stores")
    defined = [key for key in stores if isinstance(key, str)] if isinstance(stores, Mapping) else []
    errors = []
    for where, text in _strings(flow, path, lambda text: text.startswith(STORE_PREFIX)):
        match = REF_STORE.fullmatch(text)
        if match and match.group(1) in defined:
            continue
        store_id = text.removeprefix(STORE_PREFIX)
        line = f'{where}: Unknown store "{text}". Defined: {", ".join(defined) or "none"}'
        close = did_you_mean(store_id, defined)
        errors.append(f'{line}; did you mean "$store.{close}"?' if close else line)
    if errors:
        raise FlowCheckError(errors)


def find_code(flow: Any, path: str) -> list[str]:
    """The JSON path of every string in ``flow`` that starts with ``$code:``, in file order."""
    return [where for where, _ in _strings(flow, path, lambda text: text.startswith(CODE_PREFIX))]


def check_no_code(flow: Any, path: str) -> None:
    """Refuse JavaScript: one line per ``$code:`` place, saying what to write in Python."""
    errors = [f"{where}: {_code_advice(where)}" for where in find_code(flow, path)]
    if errors:
        raise FlowCheckError(errors)


def _code_advice(where: str) -> str:
    """What a ``$code:`` at ``where`` should become, by the field it is in."""
    *parents, field = where.split(".")
    problem = '"$code:" is JavaScript, which this runtime cannot run'
    if field in CALLABLE_FIELDS:
        return (
            f'{problem}; write "{field}": "package.module:function", '
            "the import path of a Python function"
        )
    if parents and parents[-1] == "code" and field == "push":
        return (
            f'{problem}; for an inline code step write "push": "package.module:function", '
            "a Python function called with (event, context)"
        )
    if parents and parents[-1] == "code":
        return (
            f'{problem}; an inline code step takes only "type" and "push" here: '
            'write the step as a Python package ("package": "package.module:Class")'
        )
    return f"{problem}; write the value itself, or compute it in a Python step"


def _strings(value: Any, path: str, wanted: Callable[[str], bool]) -> Iterator[tuple[str, str]]:
    """(JSON path, text) of each string in ``value`` that ``wanted`` accepts, depth first."""
    if isinstance(value, str):
        if wanted(value):
            yield path, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _strings(item, f"{path}.{key}" if path else str(key), wanted)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _strings(item, f"{path}.{index}" if path else str(index), wanted)
