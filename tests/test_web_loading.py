"""`Checked.load` (web/loading.py) gives what marshmallow's load gives: the same result, the same error."""

from __future__ import annotations

from typing import Any

import pytest
from marshmallow import EXCLUDE, Schema, ValidationError, fields, post_load, validate

from web.loading import Checked
from web.mail import SendSchema

BODIES: list[Any] = [
    {"to": "bob", "body": "hi"},
    {"to": "bob", "body": "hi", "subject": "s", "thread": None, "priority": "high"},
    {"to": "bob", "body": "hi", "thread": "t-1", "priority": "urgent"},
    {"to": "", "body": "hi"},
    {"to": "bob"},
    {},
    {"to": "bob", "body": "hi", "junk": 1},
    {"to": "bob", "junk": 1},
    {"to": "bob", "body": None},
    {"to": 3, "body": ["x"], "subject": {}},
    {"to": "bob", "body": "x" * (64 * 1024 + 1)},
    {"to": "bob", "body": "hi", "priority": "soon"},
    {"to": "bob", "body": "hi", "subject": "s" * 301},
    ["not", "an", "object"],
    "text",
]


def outcome(load: Any, data: Any) -> tuple[str, Any]:
    try:
        return "ok", load(data)
    except ValidationError as err:
        return "error", (err.messages, err.valid_data)


@pytest.mark.parametrize("data", BODIES)
def test_a_checked_load_equals_marshmallows(data: Any) -> None:
    schema = SendSchema()
    assert outcome(schema.load, data) == outcome(lambda d: Schema.load(schema, d), data)


def test_valid_bodies_take_the_compiled_path() -> None:
    schema = SendSchema()
    schema.load({"to": "bob", "body": "hi"})
    assert schema.__dict__["_plan"]


class WithHook(Checked):
    name = fields.Str(required=True)

    @post_load
    def upper(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        return {"name": data["name"].upper()}


class Excluding(Checked):
    class Meta:
        unknown = EXCLUDE

    name = fields.Str(validate=validate.Length(max=3))


def test_schemas_with_hooks_or_another_unknown_policy_load_through_marshmallow() -> None:
    hooked, excluding = WithHook(), Excluding()
    assert hooked.load({"name": "ab"}) == {"name": "AB"}
    assert excluding.load({"name": "ab", "other": 1}) == {"name": "ab"}
    assert hooked.__dict__["_plan"] == [] and excluding.__dict__["_plan"] == []
    with pytest.raises(ValidationError):
        excluding.load({"name": "abcd"})


def test_arguments_of_load_are_marshmallows() -> None:
    schema = SendSchema()
    assert schema.load({"to": "bob"}, partial=True) == {"to": "bob"}
    assert schema.load({"to": "bob", "body": "hi", "x": 1}, unknown=EXCLUDE)["to"] == "bob"
