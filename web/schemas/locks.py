"""What the reservation routes answer (web/locks.py) and the banner's conflicts (web/autoreserve.py):
the dataclasses of store/lockviews.py."""

from __future__ import annotations

from marshmallow import fields

from web.schemas import Open, maybe_str, required_str


class Reservation(Open):
    pattern = required_str()
    alias = required_str()
    reason = required_str()
    bead = maybe_str()
    auto = fields.Bool(required=True)
    expires_at = required_str()
    seconds_left = fields.Int(required=True)
    mine = fields.Bool(required=True)


class Conflict(Open):
    path = required_str()
    pattern = required_str()
    alias = required_str()
    reason = required_str()
    bead = maybe_str()
    auto = fields.Bool(required=True)
    seconds_left = fields.Int(required=True)


class Holder(Conflict):
    mine = fields.Bool(required=True)


class Reserved(Open):
    granted = fields.List(fields.Nested(Reservation), required=True)
    conflicts = fields.List(fields.Nested(Conflict), required=True)


class Unreserved(Open):
    released = fields.List(fields.Nested(Reservation), required=True)
    not_held = fields.List(fields.Str(), required=True)


class Holders(Open):
    holders = fields.List(fields.Nested(Holder), required=True)


reserved, unreserved, reservations, holders = Reserved(), Unreserved(), Reservation(many=True), Holders()
conflicts = Conflict(many=True)
