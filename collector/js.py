"""JavaScript's ``String(value)`` and ``JSON.stringify`` for JSON values.

walkerOS steps build strings from event values in JavaScript (a fingerprint
hashes ``String(v)`` of each field, the demo destination logs
``JSON.stringify(event, null, 2)``); doing the same here keeps a hash or a
line byte for byte what walkerOS makes of the same event. Python's own
``str``/``repr``/``json`` differ on ``True``, ``3.0``, ``1e-07`` and objects.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import orjson

from collector.paths import UNDEFINED

MAX_SAFE_INTEGER = 2**53
"""Beyond this a JavaScript number is a rounded double, printed as one."""


def js_number(number: float) -> str:
    """A number as JavaScript's ``Number.prototype.toString()`` writes it.

    The digits are Python's shortest round-trip ones (as JavaScript's); only
    the placement differs: plain notation from 1e-6 up to 1e21, else
    ``1.5e+21`` / ``1e-7``, and ``3`` for ``3.0``.
    """
    if math.isnan(number):
        return "NaN"
    if math.isinf(number):
        return "Infinity" if number > 0 else "-Infinity"
    if number == 0:
        return "0"
    sign = "-" if number < 0 else ""
    parsed = Decimal(repr(abs(number))).normalize().as_tuple()
    digits = "".join(map(str, parsed.digits))
    exponent = parsed.exponent
    assert isinstance(exponent, int)  # finite numbers only here
    count = len(digits)
    point = exponent + count  # where the decimal point goes, counted from the first digit
    if count <= point <= 21:
        return sign + digits + "0" * (point - count)
    if 0 < point <= 21:
        return f"{sign}{digits[:point]}.{digits[point:]}"
    if -6 < point <= 0:
        return f"{sign}0.{'0' * -point}{digits}"
    power = point - 1
    mantissa = digits[0] + (f".{digits[1:]}" if count > 1 else "")
    return f"{sign}{mantissa}e{'+' if power >= 0 else '-'}{abs(power)}"


def js_string(value: Any) -> str:
    """``String(value)`` of a JSON value (and of walkerOS's ``undefined``)."""
    if isinstance(value, str):
        return value
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return "null"
    if value is UNDEFINED:
        return "undefined"
    if isinstance(value, int):
        return str(value) if abs(value) <= MAX_SAFE_INTEGER else js_number(float(value))
    if isinstance(value, float):
        return js_number(value)
    if isinstance(value, list | tuple):
        # Array.prototype.join: null and undefined items are empty, the rest String()ed.
        return ",".join(
            "" if item is None or item is UNDEFINED else js_string(item) for item in value
        )
    if isinstance(value, Mapping):
        return "[object Object]"
    return str(value)


def js_text(value: Any) -> str:
    """``String(value ?? '')``, as walkerOS matchers and cache keys compare values.

    One deliberate difference: an object is its canonical JSON (sorted keys),
    not ``[object Object]``, so two different objects never make one cache key.
    """
    if value is None or value is UNDEFINED:
        return ""
    if isinstance(value, Mapping):
        return orjson.dumps(
            value, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS, default=str
        ).decode()
    if isinstance(value, list | tuple):
        return ",".join(js_text(item) for item in value)
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", "replace")
    return js_string(value)


def js_to_number(value: Any) -> float:
    """``Number(value)``: NaN when there is no number (no value, text that is not one)."""
    kind = type(value)
    if kind is int or kind is float:
        try:
            return float(value)
        except OverflowError:  # an int beyond float range, as JavaScript rounds it
            return math.inf if value > 0 else -math.inf
    if value is UNDEFINED:
        return math.nan
    if value is None:
        return 0.0
    if kind is bool:
        return 1.0 if value else 0.0
    if kind is str:
        return _parse_number(value)
    if isinstance(value, list | tuple):
        return _parse_number(js_text(value))  # Number([5]) is 5, Number([1, 2]) NaN
    return math.nan


_JS_INFINITY = {"Infinity": math.inf, "+Infinity": math.inf, "-Infinity": -math.inf}


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
            return math.nan
    if "_" in stripped or not any(c.isdigit() for c in stripped):
        return math.nan  # Python accepts 1_0, nan and inf; JavaScript does not
    try:
        return float(stripped)
    except ValueError:
        return math.nan


def js_json(value: Any, indent: int = 2) -> str:
    """``JSON.stringify(value, null, indent)`` of a JSON value (``indent`` 0: compact).

    Object members whose value is undefined are left out, undefined and
    non-finite numbers in arrays are ``null``, as in JavaScript.
    """
    return _json(value, " " * indent, "")


def _json(value: Any, unit: str, current: str) -> str:
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if value is None or value is UNDEFINED:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return js_string(value)
    if isinstance(value, float):
        return js_number(value) if math.isfinite(value) else "null"
    inner = current + unit
    if isinstance(value, Mapping):
        members = [
            f"{json.dumps(str(key), ensure_ascii=False)}:{' ' if unit else ''}"
            f"{_json(item, unit, inner)}"
            for key, item in value.items()
            if item is not UNDEFINED
        ]
        return _wrap("{", members, "}", unit, current, inner)
    if isinstance(value, list | tuple):
        items = [_json(item, unit, inner) for item in value]
        return _wrap("[", items, "]", unit, current, inner)
    return json.dumps(str(value), ensure_ascii=False)


def _wrap(opening: str, parts: list[str], closing: str, unit: str, current: str, inner: str) -> str:
    if not parts:
        return opening + closing
    if not unit:
        return opening + ",".join(parts) + closing
    return f"{opening}\n{inner}" + f",\n{inner}".join(parts) + f"\n{current}{closing}"
