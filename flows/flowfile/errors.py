"""Pydantic validation errors as one readable line each, in the flow file's own terms.

A flow file's author sees JSON, not Python: paths use the input's key names
(camelCase aliases) and list indexes, unknown keys get a "did you mean", and
the noise pydantic adds for unions (one error per member, each under a label
such as ``str`` or ``list[Rule]``) is reduced to the member the input was
meant to be. Input values are shown only when short and not possibly secret.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

import pydantic
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails

from collector.errors import did_you_mean

__all__ = ["did_you_mean", "format_validation_error"]

MAX_SHOWN_INPUT: Final = 40
"""Longest input (as JSON) repeated in a message; longer ones add noise, not help."""
SECRET_WORDS: Final = ("key", "secret", "token", "password")
"""A path segment containing one of these never has its input shown."""

_TYPE_MISMATCH: Final = frozenset(
    {"model_type", "model_attributes_type", "dataclass_type", "is_instance_of", "none_required"}
    | {"literal_error", "enum", "union_tag_invalid"}
)
"""Error types meaning "the input is not this kind of thing" (besides every ``*_type``)."""
_MESSAGES: Final = {
    "model_type": "Input should be an object",
    "model_attributes_type": "Input should be an object",
    "dataclass_type": "Input should be an object",
    "dict_type": "Input should be an object",
    "tuple_type": "Input should be a list",
}
"""Messages reworded in JSON terms (a dictionary is an object to a flow file's author)."""
_MSG_PREFIXES: Final = ("Value error, ", "Assertion failed, ")

_Loc = tuple[int | str, ...]


def format_validation_error(
    error: pydantic.ValidationError, model: type[pydantic.BaseModel], prefix: str = ""
) -> list[str]:
    """One ``<JSON path>: <what was expected>`` line per problem, in input order.

    ``model`` is what was validated; it is walked along each error's location
    to tell keys from union labels and to suggest valid keys. ``prefix`` is
    the JSON path of the validated value inside a larger document.
    """
    located = [_locate(details, model) for details in error.errors(include_url=False)]
    kept = _prune_union_members(located)
    lines: list[str] = []
    merged: dict[_Loc, list[_Located]] = {}
    order: list[_Located | _Loc] = []
    for item in kept:
        group = item.shallow_union()
        if group is None:
            order.append(item)
        else:
            if group not in merged:
                merged[group] = []
                order.append(group)
            merged[group].append(item)
    for entry in order:
        if isinstance(entry, _Located):
            line = _line(prefix, entry, _message(entry))
        else:
            items = merged[entry]
            line = _line(prefix, items[0], _join_messages([_message(i) for i in items]))
        if line not in lines:
            lines.append(line)
    return lines


@dataclasses.dataclass(slots=True)
class _Located:
    """One pydantic error, with its location split into JSON keys and union labels."""

    details: ErrorDetails
    keys: list[int | str]
    """The JSON path: the location without union labels and ``[key]`` markers."""
    choices: list[tuple[_Loc, str]]
    """Each union passed: (raw location of the union, label of the member tried)."""
    parent: type[pydantic.BaseModel] | None
    """The model holding the last key, when known (for suggestions)."""
    about_key: bool = False
    """The error is about a dict key itself, not its value."""

    @property
    def loc(self) -> _Loc:
        return tuple(self.details["loc"])

    def shallow_union(self) -> _Loc | None:
        """The union location when this error says "not this member" right at the union."""
        if not self.choices:
            return None
        union_loc, _ = self.choices[-1]
        return union_loc if len(self.loc) == len(union_loc) + 1 else None


def _locate(details: ErrorDetails, model: type[pydantic.BaseModel]) -> _Located:
    """Walk ``model``'s types along the error's location, keeping only the JSON keys."""
    loc: _Loc = tuple(details["loc"])
    keys: list[int | str] = []
    choices: list[tuple[_Loc, str]] = []
    parent: type[pydantic.BaseModel] | None = None
    about_key = False
    current: Any = model
    index = 0
    while index < len(loc):
        segment = loc[index]
        current = _unwrap(current)
        members = _union_members(current)
        if len(members) > 1:
            # pydantic puts the member's label (or the tag) after a union: not a JSON key.
            choices.append((loc[:index], str(segment)))
            current = _member_for(members, str(segment))
            index += 1
            continue
        if members:
            current = members[0]
            continue
        if segment == "[key]":
            about_key = True
            index += 1
            continue
        keys.append(segment)
        parent = current if _is_model(current) else None
        current = _child(current, segment)
        index += 1
    return _Located(details, keys, choices, parent, about_key)


def _prune_union_members(located: list[_Located]) -> list[_Located]:
    """At each union, keep only the members that the input came closest to matching.

    A member whose errors lie inside it (the input had its shape) beats one
    that failed on a constraint, which beats one of the wrong kind; among
    members with inner errors, the one with fewest wins. Inner unions go first,
    so their noise does not count against the member that holds them.
    """
    items = list(located)
    unions = sorted({union for item in items for union, _ in item.choices}, key=len, reverse=True)
    for union in unions:
        by_label: dict[str, list[_Located]] = {}
        for item in items:
            for where, label in item.choices:
                if where == union:
                    by_label.setdefault(label, []).append(item)
        if len(by_label) < 2:
            continue
        scores = {
            label: (max(_closeness(item, union) for item in members), -len(members))
            for label, members in by_label.items()
        }
        best = max(scores.values())
        dropped = {
            id(item)
            for label, members in by_label.items()
            if scores[label] != best
            for item in members
        }
        items = [item for item in items if id(item) not in dropped]
    return items


def _closeness(item: _Located, union: _Loc) -> tuple[int, int]:
    """2: an error inside the member; 1: the member rejected the value; 0: wrong kind."""
    if len(item.loc) > len(union) + 1:
        return (2, 0)
    kind = item.details["type"]
    return (0 if kind.endswith("_type") or kind in _TYPE_MISMATCH else 1, 0)


def _message(item: _Located) -> str:
    """What was expected, with the input when it is short and cannot be a secret."""
    details = item.details
    kind = details["type"]
    if kind == "extra_forbidden":
        key = str(item.keys[-1]) if item.keys else ""
        text = f'unknown key "{key}"'
        suggestion = _suggest(key, item.parent)
        return f'{text}; did you mean "{suggestion}"?' if suggestion else text
    if kind == "missing":
        last = item.keys[-1] if item.keys else None
        return "missing required item" if isinstance(last, int) else "missing required key"
    text = _MESSAGES.get(kind, details["msg"])
    for known in _MSG_PREFIXES:
        text = text.removeprefix(known)
    if item.about_key:
        text = f"invalid key: {text}"
    if _looks_secret(item.keys):
        return text
    shown = _short_json(details.get("input"))
    return f"{text} (got {shown})" if shown is not None else text


def _join_messages(messages: list[str]) -> str:
    """One message for all members of a union: "Input should be a, b or c"."""
    unique = list(dict.fromkeys(messages))
    if len(unique) == 1:
        return unique[0]
    got = ""
    stems: list[str] = []
    for message in unique:
        stem, _, rest = message.partition(" (got ")
        stems.append(stem)
        got = got or (f" (got {rest}" if rest else "")
    lead = "Input should be "
    if all(stem.startswith(lead) for stem in stems):
        parts = [stem.removeprefix(lead) for stem in stems]
        return f"{lead}{', '.join(parts[:-1])} or {parts[-1]}{got}"
    return "; or ".join(stems) + got


def _line(prefix: str, item: _Located, message: str) -> str:
    path = ".".join(str(key) for key in item.keys)
    where = f"{prefix}.{path}" if prefix and path else prefix or path or "(root)"
    return f"{where}: {message}"


def _looks_secret(keys: Sequence[int | str]) -> bool:
    return any(
        isinstance(key, str) and any(word in key.lower() for word in SECRET_WORDS) for key in keys
    )


def _short_json(value: Any) -> str | None:
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= MAX_SHOWN_INPUT else None


def _suggest(key: str, model: type[pydantic.BaseModel] | None) -> str | None:
    """The closest valid key of ``model``; Python names also point at their alias."""
    if model is None:
        return None
    candidates: dict[str, str] = {}
    for name, field in model.model_fields.items():
        primary = _input_keys(name, field)[0]
        for accepted in (primary, name):
            candidates.setdefault(accepted, primary)
    match = did_you_mean(key, candidates)
    return candidates[match] if match else None


def _input_keys(name: str, field: FieldInfo) -> list[str]:
    """The keys an input may use for a field, the one to suggest first."""
    keys: list[str] = []
    alias = field.validation_alias
    if isinstance(alias, str):
        keys.append(alias)
    elif isinstance(alias, pydantic.AliasChoices):
        for choice in alias.choices:
            if isinstance(choice, str):
                keys.append(choice)
            elif choice.path and isinstance(choice.path[0], str):
                keys.append(choice.path[0])
    elif isinstance(alias, pydantic.AliasPath) and alias.path and isinstance(alias.path[0], str):
        keys.append(alias.path[0])
    if field.alias:
        keys.append(field.alias)
    keys.append(name)
    return list(dict.fromkeys(keys))


def _is_model(tp: Any) -> typing.TypeGuard[type[pydantic.BaseModel]]:
    return isinstance(tp, type) and issubclass(tp, pydantic.BaseModel)


def _child(tp: Any, segment: int | str) -> Any:
    """The type found under ``segment`` of a value of type ``tp``; None when unknown."""
    if _is_model(tp):
        for name, field in tp.model_fields.items():
            if segment in _input_keys(name, field):
                return field.annotation
        return None
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is None or not args:
        return None
    if isinstance(origin, type) and issubclass(origin, Mapping):
        return args[-1]
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return args[0]
        return args[segment] if isinstance(segment, int) and segment < len(args) else None
    if isinstance(origin, type) and issubclass(origin, Iterable):
        return args[0]
    return None


def _unwrap(tp: Any) -> Any:
    """Strip ``Annotated``, type aliases (``type X = ...``, ``TypeAliasType``) and RootModel."""
    for _ in range(100):  # a bound instead of trusting every alias to terminate
        if typing.get_origin(tp) is typing.Annotated:
            tp = typing.get_args(tp)[0]
        elif _is_model(tp) and issubclass(tp, pydantic.RootModel):
            tp = tp.model_fields["root"].annotation
        elif type(tp).__name__ == "TypeAliasType":
            tp = _evaluate(tp.__value__, getattr(tp, "__module__", None))
        elif isinstance(tp, typing.ForwardRef | str):
            tp = None
        else:
            return tp
    return None


def _evaluate(value: Any, module: str | None) -> Any:
    """A type alias's value; ``TypeAliasType("X", "A | B")`` keeps it as text until used."""
    if not isinstance(value, str | typing.ForwardRef):
        return value
    text = value if isinstance(value, str) else value.__forward_arg__
    namespace = vars(sys.modules[module]) if module in sys.modules else {}
    holder = types.SimpleNamespace(__annotations__={"value": text})
    try:
        return typing.get_type_hints(holder, globalns=dict(namespace), include_extras=True)["value"]
    except Exception:  # an alias we cannot evaluate only costs the suggestion
        return None


def _union_members(tp: Any) -> list[Any]:
    """The non-None members of a union (empty for anything else)."""
    if typing.get_origin(tp) not in (typing.Union, types.UnionType):
        return []
    return [arg for arg in typing.get_args(tp) if arg is not type(None)]


def _member_for(members: list[Any], label: str) -> Any:
    """The union member pydantic labelled ``label`` (class name, ``list[...]``, or a tag)."""
    for member in members:
        plain = _unwrap(member)
        if _is_model(plain) and plain.__name__ == label:
            return plain
        origin = typing.get_origin(plain)
        if isinstance(origin, type) and label.startswith(f"{origin.__name__}["):
            return plain
        if plain is not None and getattr(plain, "__name__", None) == label:
            return plain
        if label.startswith("union[") and len(_union_members(plain)) > 1:
            return plain  # a nested union pydantic did not flatten (often a type alias)
    for member in members:  # a discriminated union labels members by their tag value
        plain = _unwrap(member)
        if _is_model(plain):
            for field in plain.model_fields.values():
                if typing.get_origin(field.annotation) is typing.Literal and label in [
                    str(arg) for arg in typing.get_args(field.annotation)
                ]:
                    return plain
    return None
