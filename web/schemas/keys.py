"""What the key routes answer (web/keys.py): the dataclasses of store/access.py."""

from __future__ import annotations

from marshmallow import fields

from web.schemas import Open, required_str


class Rotated(Open):
    project = required_str()
    project_key = required_str()
    rotated_at = required_str()


class Revoked(Open):
    alias = required_str()
    revoked = fields.Bool(required=True)
    already = fields.Bool(required=True)
    stale_claims = fields.List(fields.Str(), required=True)
    released_reservations = fields.Int(required=True)


class RoleSet(Open):
    alias = required_str()
    role = required_str()
    previous = required_str()


rotated, revoked, role_set = Rotated(), Revoked(), RoleSet()
