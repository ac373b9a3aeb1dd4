"""Key management, for humans with the project key: rotate the key, revoke a workspace's token."""

from __future__ import annotations

from flask import Blueprint, g, jsonify

from store import access
from web.common import admin, store

bp = Blueprint("keys", __name__, url_prefix="/v1")
bp.before_request(admin)


@bp.post("/project/key/rotate")
def rotate():
    return jsonify(access.rotate_key(g.project))


@bp.post("/workspaces/<alias>/revoke")
def revoke(alias: str):
    return jsonify(access.revoke_workspace(store(), g.project, alias))
