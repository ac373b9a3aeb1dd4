"""Key management, for humans with the project key: rotate the key, revoke a workspace's token, set a
workspace's role (the only way into or out of coordinator)."""

from __future__ import annotations

from flask import Blueprint, g, jsonify
from marshmallow import Schema, fields

from store import access
from web.common import admin, load, store
from web.idempotency import idempotent
from web.identity import ROLE

bp = Blueprint("keys", __name__, url_prefix="/v1")
bp.before_request(admin)


class RoleSchema(Schema):
    role = fields.Str(required=True, validate=ROLE)


role_schema = RoleSchema()


@bp.post("/project/key/rotate")
@idempotent
def rotate():
    return jsonify(access.rotate_key(g.project))


@bp.post("/workspaces/<alias>/revoke")
@idempotent
def revoke(alias: str):
    return jsonify(access.revoke_workspace(store(), g.project, alias))


@bp.put("/workspaces/<alias>/role")
@idempotent
def set_role(alias: str):
    return jsonify(access.set_role(store(), g.project, alias, load(role_schema)["role"]))
