"""What the sync routes answer (web/sync.py): the dataclasses of store/syncviews.py."""

from __future__ import annotations

from marshmallow import fields

from web.schemas import Open, required_str


class SyncConflict(Open):
    id = required_str()
    #: the field both sides changed ("status" for the status and its fields, "record" for a deletion)
    field = fields.Str()
    #: whose value stayed: "file" or "server"
    kept = fields.Str()
    reason = required_str()
    value = fields.Raw(allow_none=True)
    #: the value that did not (it stays in the bead's history)
    lost = fields.Raw(allow_none=True)


class SyncChanges(Open):
    created = fields.List(fields.Str(), required=True)
    updated = fields.List(fields.Str(), required=True)
    tombstoned = fields.List(fields.Str(), required=True)
    pulled = fields.List(fields.Str(), required=True)


class SyncResult(Open):
    sync = fields.Int(required=True, allow_none=True)
    dry_run = fields.Bool(required=True)
    repo = required_str()
    total = fields.Int(required=True)
    created = fields.Int(required=True)
    updated = fields.Int(required=True)
    tombstoned = fields.Int(required=True)
    unchanged = fields.Int(required=True)
    pulled = fields.Int(required=True)
    conflicts = fields.List(fields.Nested(SyncConflict), required=True)
    changes = fields.Nested(SyncChanges, required=True)
    needs_allow_delete = fields.Bool(required=True)
    mass = fields.Bool(required=True)
    #: the records the file takes (absent in a dry run)
    records = fields.List(fields.Dict())


class SyncRecords(Open):
    repo = required_str()
    records = fields.List(fields.Dict(), required=True)


class SyncRun(Open):
    sync = fields.Int(required=True)
    kind = required_str()
    alias = required_str()
    at = required_str()
    counts = fields.Dict(required=True)
    undo_of = fields.Int(required=True, allow_none=True)
    undone_by = fields.Int(required=True, allow_none=True)


class SyncUndone(Open):
    sync = fields.Int(required=True)
    undo_of = fields.Int(required=True)
    restored = fields.Int(required=True)
    conflicts = fields.List(fields.Nested(SyncConflict), required=True)
    records = fields.List(fields.Dict(), required=True)


sync_result, sync_records, sync_undone = SyncResult(), SyncRecords(), SyncUndone()
sync_runs = SyncRun(many=True)
