"""Handoffs and the prime view: what carries over from one run of an agent to the next."""

from __future__ import annotations

from flask import Blueprint, Response, g, jsonify
from flask.typing import ResponseReturnValue
from marshmallow import Schema, fields, validate

from store import handoffs
from web.apidoc import doc
from web.common import authenticate, load, store
from web.idempotency import idempotent
from web.schemas import handoffs as s

bp = Blueprint("handoffs", __name__, url_prefix="/v1")
bp.before_request(authenticate)


class HandoffSchema(Schema):
    # the byte limit is checked by the store; this bounds characters first
    body = fields.Str(required=True, validate=validate.Length(min=1, max=handoffs.MAX_BODY))
    to = fields.Str(load_default=None, allow_none=True, validate=validate.Length(min=1, max=64))


handoff_schema = HandoffSchema()


@bp.post("/handoffs")
@doc("Leave a handoff for the next run", "workspace", s.Handoff, ok=201, body=handoff_schema, errors=(404,))
@idempotent
def leave() -> ResponseReturnValue:
    args = load(handoff_schema)
    return jsonify(s.handoff.dump(handoffs.leave(g.project, g.ws, args["body"], args["to"]))), 201


@bp.get("/handoffs/latest")
@doc("The newest handoff for the caller", "workspace", s.LatestHandoff)
def latest() -> Response:
    return jsonify(s.latest.dump({"handoff": handoffs.latest(g.ws)}))


@bp.get("/prime")
@doc("Everything an agent needs at the start of a run", "workspace", s.Prime)
def prime() -> Response:
    return jsonify(s.prime.dump(handoffs.prime(store(), g.project, g.ws)))
