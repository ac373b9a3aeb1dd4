"""The mail send's hand-written body check (web/mail.py `accept_send`) against marshmallow's SendSchema:
whatever it accepts loads to exactly what the schema loads, and everything else is left to the schema
(so a refusal keeps marshmallow's messages)."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from marshmallow import ValidationError

from store.messages import MAX_BODY
from web.mail import accept_send, send_schema

VALUES: dict[str, list[Any]] = {
    "to": ["bob", "a,b", "@all", "", "x" * 2000, "x" * 2001, None, 7, ["bob"]],
    "body": ["hi", "", " ", "x" * MAX_BODY, "x" * (MAX_BODY + 1), None, 1.5],
    "subject": ["", "s", "x" * 300, "x" * 301, None, 3],
    "thread": [None, "", "bd-1", "x" * 200, "x" * 201, 0],
    "priority": ["low", "normal", "high", "urgent", "", "NORMAL", None, 1, ["low"]],
}
ABSENT = object()


def bodies() -> list[dict[str, Any]]:
    out = []
    for to, body in itertools.product(VALUES["to"], VALUES["body"]):
        out.append({"to": to, "body": body})
    for field in ("subject", "thread", "priority"):
        for value in VALUES[field]:
            out.append({"to": "bob", "body": "hi", field: value})
    out += [{"body": "hi"}, {"to": "bob"}, {}, {"to": "bob", "body": "hi", "extra": 1},
            {"to": "bob", "body": "hi", "subject": "s", "thread": "t", "priority": "high"}]
    return out


@pytest.mark.parametrize("data", bodies())
def test_the_hand_check_accepts_only_what_the_schema_loads_and_loads_it_the_same(data):
    try:
        expected = send_schema.load(data)
    except ValidationError:
        expected = None
    got = accept_send(dict(data))
    if got is not None:
        assert got == expected  # accepted: exactly the schema's answer (defaults included)
    # refused by the schema: never accepted by the hand check
    assert not (expected is None and got is not None)


def test_every_plain_mail_takes_the_hand_path():
    assert accept_send({"to": "bob", "subject": "m1", "body": "bench message"}) == {
        "to": "bob", "body": "bench message", "subject": "m1", "thread": None, "priority": "normal"}
