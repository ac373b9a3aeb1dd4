"""Beads sync: a worktree's beads file and the server kept in step (store/sync.py)."""

from __future__ import annotations

from flask import Blueprint, g, jsonify, request
from marshmallow import Schema, ValidationError, fields, validate

from store import sync as sync_store
from store.sync_history import DEFAULT_HISTORY, MAX_HISTORY
from web.apidoc import doc
from web.common import authenticate, load, load_args, store
from web.idempotency import idempotent
from web.schemas import sync as s

bp = Blueprint("sync", __name__, url_prefix="/v1")
bp.before_request(authenticate)


class SyncSchema(Schema):
    # the size cap is the request body limit (Settings.max_body); lines are checked by the store
    jsonl = fields.Str(required=True)
    #: the file as the worktree's last sync left it (its base); absent: nothing is deleted
    base = fields.Str(load_default=None, allow_none=True)
    mode = fields.Str(load_default="full", validate=validate.OneOf(["full", "incremental"]))
    dry_run = fields.Bool(load_default=False)
    allow_delete = fields.Bool(load_default=False)
    #: false: only the beads of the upload are merged (the offline journal's replay)
    pull = fields.Bool(load_default=True)


class HistoryArgs(Schema):
    limit = fields.Int(load_default=DEFAULT_HISTORY, validate=validate.Range(min=1, max=MAX_HISTORY))


sync_schema, history_args = SyncSchema(), HistoryArgs()
#: Most ids one `GET /v1/sync/records` asks for.
MAX_IDS = sync_store.MAX_RECORDS


@bp.post("/sync")
@doc("Two-way sync of the caller's beads file (JSONL) against its base", "workspace", s.SyncResult,
     body=sync_schema, errors=(409,))
@idempotent
def sync():
    a = load(sync_schema)
    answer = sync_store.sync_beads(store(), g.project, g.ws, a["jsonl"], base_text=a["base"], mode=a["mode"],
                                   dry_run=a["dry_run"], allow_delete=a["allow_delete"], pull=a["pull"])
    return jsonify(s.sync_result.dump(answer))


@bp.get("/sync/records")
@doc("Beads-file records of beads of the caller's repo", "workspace", s.SyncRecords,
     parameters=({"in": "query", "name": "id", "required": True, "style": "form", "explode": True,
     "schema": {"type": "array", "minItems": 1, "maxItems": MAX_IDS, "items": {"type": "string",
     "minLength": 1, "maxLength": 520}}},))
def file_records():
    """The beads-file records of `?id=` beads of the caller's repo (what write-through puts in the file)."""
    ids = request.args.getlist("id")
    if not ids or len(ids) > MAX_IDS or any(not i or len(i) > 520 for i in ids):
        raise ValidationError({"id": [f"give 1 to {MAX_IDS} bead ids of 1 to 520 characters"]})
    return jsonify(s.sync_records.dump(sync_store.file_records(g.project, g.ws, ids)))


@bp.get("/sync/history")
@doc("The caller's repo's recent syncs", "workspace", s.SyncRun, many=True, query=history_args)
def history():
    return jsonify(s.sync_runs.dump(sync_store.history(g.project, g.ws, load_args(history_args)["limit"])))


@bp.post("/sync/<int:run_id>/undo")
@doc("Undo a sync (as a new change)", "workspace", s.SyncUndone, errors=(404, 409))
@idempotent
def undo(run_id: int):
    return jsonify(s.sync_undone.dump(sync_store.undo_sync(store(), g.project, g.ws, run_id)))
