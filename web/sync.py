"""Beads sync: a worktree uploads its `.beads/issues.jsonl`."""

from __future__ import annotations

from flask import Blueprint, g, jsonify
from marshmallow import Schema, fields, validate

from store.sync import sync_beads
from web.common import authenticate, load, store

bp = Blueprint("sync", __name__, url_prefix="/v1")
bp.before_request(authenticate)


class SyncSchema(Schema):
    # the size cap is the request body limit (Settings.max_body); lines are checked by the store
    jsonl = fields.Str(required=True)
    mode = fields.Str(load_default="full", validate=validate.OneOf(["full", "incremental"]))


sync_schema = SyncSchema()


@bp.post("/sync")
def sync():
    args = load(sync_schema)
    return jsonify(sync_beads(store(), g.project, g.ws, args["jsonl"], full=args["mode"] == "full"))
