"""Validation errors as one line each: JSON path, plain words, no secrets."""

from __future__ import annotations

from typing import Any, Literal

import pytest
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from flows.flowfile.errors import did_you_mean, format_validation_error


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    event_name: str | None = Field(None, alias="eventName")
    data: str | Rule | list[str] | None = None
    batch_size: int = Field(1, alias="batchSize", ge=1)


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    write_key: SecretStr = Field(alias="writeKey")
    flush_at: int = Field(100, alias="flushAt")
    api_token: str | None = Field(None, alias="apiToken")
    region: Literal["us", "eu"] = "us"


class Destination(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    settings: Settings
    mapping: dict[str, dict[str, Rule | list[Rule]]] = Field(default_factory=dict)


class Flow(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    destinations: dict[str, Destination] = Field(default_factory=dict)
    steps: list[Rule] = Field(default_factory=list)


def lines_of(data: dict[str, Any], prefix: str = "") -> list[str]:
    with pytest.raises(ValidationError) as caught:
        Flow.model_validate(data)
    return format_validation_error(caught.value, Flow, prefix)


def flow(settings: dict[str, Any], **destination: Any) -> dict[str, Any]:
    return {"destinations": {"segment": {"settings": settings, **destination}}}


def test_wrong_type_at_a_deep_path_uses_aliases_and_list_indexes() -> None:
    data = flow(
        {"writeKey": "k"},
        mapping={"page": {"view": [{"eventName": "ok"}, {"batchSize": "often"}]}},
    )
    assert lines_of(data, "flows.default") == [
        "flows.default.destinations.segment.mapping.page.view.1.batchSize: "
        'Input should be a valid integer, unable to parse string as an integer (got "often")'
    ]


def test_union_members_of_the_wrong_kind_are_folded_into_one_line() -> None:
    data = {"steps": [{"data": 5}, {"data": {"batchSize": 0}}]}
    assert lines_of(data) == [
        "steps.0.data: Input should be a valid string, an object or a valid list (got 5)",
        "steps.1.data.batchSize: Input should be greater than or equal to 1 (got 0)",
    ]


def test_unknown_key_suggests_the_close_valid_key() -> None:
    assert lines_of(flow({"writeKey": "k", "flushAtt": 10})) == [
        'destinations.segment.settings.flushAtt: unknown key "flushAtt"; did you mean "flushAt"?'
    ]


def test_unknown_key_inside_a_union_member_still_gets_a_suggestion() -> None:
    data = flow({"writeKey": "k"}, mapping={"order": {"complete": {"evntName": "Order"}}})
    assert lines_of(data) == [
        "destinations.segment.mapping.order.complete.evntName: "
        'unknown key "evntName"; did you mean "eventName"?'
    ]


def test_a_python_field_name_points_at_its_alias() -> None:
    class Strict(BaseModel):
        model_config = ConfigDict(extra="forbid")

        flush_at: int = Field(100, alias="flushAt")

    with pytest.raises(ValidationError) as caught:
        Strict.model_validate({"flush_at": 5})
    assert format_validation_error(caught.value, Strict) == [
        'flush_at: unknown key "flush_at"; did you mean "flushAt"?'
    ]


def test_unknown_key_without_a_close_match_has_no_suggestion() -> None:
    assert lines_of(flow({"writeKey": "k", "colour": "blue"}), "f") == [
        'f.destinations.segment.settings.colour: unknown key "colour"'
    ]


def test_secret_looking_fields_never_show_their_input() -> None:
    data = flow({"writeKey": 12345, "apiToken": ["tok"], "region": "mars"})
    assert lines_of(data) == [
        "destinations.segment.settings.writeKey: Input should be a valid string",
        "destinations.segment.settings.apiToken: Input should be a valid string",
        "destinations.segment.settings.region: Input should be 'us' or 'eu' (got \"mars\")",
    ]


def test_long_inputs_are_not_repeated_and_missing_keys_are_named() -> None:
    data = {"destinations": {"segment": {"settings": {"flushAt": "x" * 41}}}, "steps": "s"}
    assert lines_of(data) == [
        "destinations.segment.settings.writeKey: missing required key",
        "destinations.segment.settings.flushAt: "
        "Input should be a valid integer, unable to parse string as an integer",
        'steps: Input should be a valid list (got "s")',
    ]


def test_an_input_that_is_not_an_object_is_said_in_json_terms() -> None:
    assert lines_of({"destinations": {"segment": "segment"}}) == [
        'destinations.segment: Input should be an object (got "segment")'
    ]
    with pytest.raises(ValidationError) as caught:
        Flow.model_validate([])
    assert format_validation_error(caught.value, Flow) == [
        "(root): Input should be an object (got [])"
    ]


@pytest.mark.parametrize(
    ("name", "expected"),
    [("flushAtt", "flushAt"), ("FLUSHAT", "flushAt"), ("mpa", "map"), ("colour", None)],
)
def test_did_you_mean(name: str, expected: str | None) -> None:
    assert did_you_mean(name, ["flushAt", "map", "writeKey", "host"]) == expected
