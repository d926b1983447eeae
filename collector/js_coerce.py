"""JavaScript's ``String()`` and ``Number()`` of JSON values, as walkerOS compares them.

walkerOS matchers compare ``String(value ?? '')`` with a condition's text and
``Number(value)`` with its number, and cache keys join ``String(value ?? '')``
of each key path. A Python ``str()`` differs (``True``, ``1.0``, ``None``), so
flows written for walkerOS would match differently; these two functions give
JavaScript's answers for JSON values.

One deliberate difference: an object is its canonical JSON (sorted keys), not
JavaScript's ``[object Object]``, so two different objects never make the same
cache key.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any, Final

import orjson

from collector.paths import UNDEFINED

NAN: Final = math.nan
_JS_INFINITY: Final = {"Infinity": math.inf, "+Infinity": math.inf, "-Infinity": -math.inf}


def js_string(value: Any) -> str:
    """``String(value ?? '')``: no value and JSON null are the empty string."""
    kind = type(value)
    if kind is str:
        return value  # type: ignore[no-any-return]
    if value is None or value is UNDEFINED:
        return ""
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return str(value)
    if kind is float:
        return _number_text(value)
    if isinstance(value, list | tuple):
        # Array.prototype.toString: items joined by ",", null and undefined empty.
        return ",".join(js_string(item) for item in value)
    if isinstance(value, dict):
        return orjson.dumps(
            value, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS, default=str
        ).decode()
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", "replace")
    return str(value)


def js_number(value: Any) -> float:
    """``Number(value)``: NaN when there is no number (no value, text that is not one)."""
    kind = type(value)
    if kind is int or kind is float:
        try:
            return float(value)
        except OverflowError:  # an int beyond float range, as JavaScript rounds it
            return math.inf if value > 0 else -math.inf
    if value is UNDEFINED:
        return NAN
    if value is None:
        return 0.0
    if kind is bool:
        return 1.0 if value else 0.0
    if kind is str:
        return _parse_number(value)
    if isinstance(value, list | tuple):
        return _parse_number(js_string(value))  # Number([5]) is 5, Number([1, 2]) NaN
    return NAN


def _parse_number(text: str) -> float:
    """JavaScript's string to number: blank is 0, ``0x1f`` is 31, ``1_0`` and ``inf`` NaN."""
    stripped = text.strip()
    if not stripped:
        return 0.0
    if stripped in _JS_INFINITY:
        return _JS_INFINITY[stripped]
    if len(stripped) > 2 and stripped[0] == "0" and stripped[1] in "xXoObB":
        try:
            return float(int(stripped, 0))
        except ValueError:
            return NAN
    if "_" in stripped or not any(c.isdigit() for c in stripped):
        return NAN  # Python accepts 1_0, nan and inf; JavaScript does not
    try:
        return float(stripped)
    except ValueError:
        return NAN


def _number_text(number: float) -> str:
    """A float as JavaScript prints it: ``1``, ``0.5``, ``1e-7``, ``1e+21``, ``NaN``."""
    if math.isnan(number):
        return "NaN"
    if math.isinf(number):
        return "Infinity" if number > 0 else "-Infinity"
    if number.is_integer() and abs(number) < 1e21:
        return str(int(number))
    size = abs(number)
    if 1e-6 <= size < 1e21:
        return format(Decimal(repr(number)), "f")
    mantissa, _, exponent = repr(number).partition("e")
    power = int(exponent)
    return f"{mantissa}e{'+' if power > 0 else '-'}{abs(power)}"
