"""Advisory file reservations ("locks"): reserve, release, list, check; and the auto-reserve header.

Every authenticated request may carry `X-Wire-Changed` too (web/autoreserve.py).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, g, jsonify, request
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from store import reservations
from web.apidoc import doc
from web.autoreserve import Pattern, Some
from web.common import authenticate, load, load_args, store
from web.idempotency import idempotent
from web.schemas import locks as s

bp = Blueprint("locks", __name__, url_prefix="/v1")
bp.before_request(authenticate)

class ReserveSchema(Schema):
    paths = fields.List(Pattern, required=True, validate=Some)
    ttl = fields.Int(load_default=reservations.DEFAULT_TTL,
                     validate=validate.Range(min=reservations.MIN_TTL, max=reservations.MAX_TTL))
    bead = fields.Str(load_default=None, allow_none=True, validate=validate.Length(max=reservations.MAX_BEAD))
    reason = fields.Str(load_default="", validate=validate.Length(max=reservations.MAX_REASON))


class ReleaseSchema(Schema):
    paths = fields.List(Pattern, load_default=None, validate=Some)
    all = fields.Bool(load_default=False)

    @validates_schema
    def _one_of(self, data: dict[str, Any], **kwargs: Any) -> None:
        if bool(data.get("paths")) == bool(data.get("all")):
            raise ValidationError("give either paths or all: true", "paths")


class ListArgs(Schema):
    mine = fields.Bool(load_default=False)


class CheckSchema(Schema):
    paths = fields.List(Pattern, required=True, validate=Some)


reserve_schema, release_schema, list_args, check_schema = (ReserveSchema(), ReleaseSchema(), ListArgs(),
                                                            CheckSchema())


@bp.post("/locks")
@doc("Reserve paths", "workspace", s.Reserved, body=reserve_schema)
@idempotent
def reserve():
    a = load(reserve_schema)
    done = reservations.reserve(store(), g.ws, a["paths"], a["ttl"], a["bead"], a["reason"])
    return jsonify(s.reserved.dump(done))


@bp.delete("/locks")
@doc("Release the caller's reservations", "workspace", s.Unreserved, body=release_schema)
@idempotent
def release():
    a = load(release_schema)
    return jsonify(s.unreserved.dump(reservations.release(store(), g.ws, None if a["all"] else a["paths"])))


@bp.get("/locks")
@doc("Live reservations in the caller's repo", "workspace", s.Reservation, many=True, query=list_args)
def held():
    return jsonify(s.reservations.dump(reservations.held(store(), g.ws, load_args(list_args)["mine"])))


@bp.get("/locks/check")
@doc("Who holds what overlaps paths", "workspace", s.Holders, parameters=({"in": "query", "name": "path",
     "required": True, "style": "form", "explode": True, "schema": {"type": "array", "minItems": 1,
     "maxItems": 200, "items": {"type": "string", "minLength": 1, "maxLength": 1024}}},))
def check():
    a = check_schema.load({"paths": request.args.getlist("path")})
    return jsonify(s.holders.dump(reservations.check(store(), g.ws, a["paths"])))


@bp.post("/locks/check")
@doc("Who holds what overlaps paths (long lists)", "workspace", s.Holders, body=check_schema)
@idempotent
def check_many():
    """The same as GET, for path lists too long for a URL (a big commit's staged files)."""
    return jsonify(s.holders.dump(reservations.check(store(), g.ws, load(check_schema)["paths"])))
