"""Key management, for humans with the project key: rotate the key, revoke a workspace's token, set a
workspace's role (the only way into or out of coordinator)."""

from __future__ import annotations

from flask import Blueprint, Response, g, jsonify
from marshmallow import Schema, fields

from store import access
from web.apidoc import doc
from web.common import admin, load, store
from web.idempotency import idempotent
from web.identity import ROLE
from web.schemas import keys as s

bp = Blueprint("keys", __name__, url_prefix="/v1")
bp.before_request(admin)


class RoleSchema(Schema):
    role = fields.Str(required=True, validate=ROLE)


role_schema = RoleSchema()


@bp.post("/project/key/rotate")
@doc("Replace the project key (shown once)", "key", s.Rotated)
@idempotent
def rotate() -> Response:
    return jsonify(s.rotated.dump(access.rotate_key(g.project)))


@bp.post("/workspaces/<alias>/revoke")
@doc("Revoke a workspace's token; its claims go stale", "key", s.Revoked)
@idempotent
def revoke(alias: str) -> Response:
    return jsonify(s.revoked.dump(access.revoke_workspace(store(), g.project, alias)))


@bp.put("/workspaces/<alias>/role")
@doc("Set a workspace's role (the only way into or out of coordinator)", "key", s.RoleSet, body=role_schema)
@idempotent
def set_role(alias: str) -> Response:
    return jsonify(s.role_set.dump(access.set_role(store(), g.project, alias, load(role_schema)["role"])))
