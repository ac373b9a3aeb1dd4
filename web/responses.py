"""Marshmallow schemas of the answers of the resources not moved to web/schemas/ yet.

These views still build their answers in `store/` as plain dicts; the schemas here only describe
them for the OpenAPI document (web/openapi.py), and tests/test_openapi.py checks real answers against
them. A resource moves to `web/schemas/<resource>.py` when its store returns domain objects that its
schemas dump (as beads and handoffs have).
"""

from __future__ import annotations

from marshmallow import fields

from web.schemas import Open, maybe_str, required_str


class SyncConflict(Open):
    id = required_str()
    reason = required_str()
    #: the field both sides changed ("status" for the status and its fields, "record" for a deletion)
    field = fields.Str()
    #: whose value stayed: "file" or "server"
    kept = fields.Str()
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
    created = fields.Int(required=True)
    updated = fields.Int(required=True)
    unchanged = fields.Int(required=True)
    tombstoned = fields.Int(required=True)
    pulled = fields.Int(required=True)
    conflicts = fields.List(fields.Nested(SyncConflict), required=True)
    changes = fields.Nested(SyncChanges, required=True)
    needs_allow_delete = fields.Bool(required=True)
    mass = fields.Bool(required=True)
    total = fields.Int(required=True)
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


class Escalation(Open):
    id = fields.Int(required=True)
    from_ = fields.Str(data_key="from", required=True)
    role = required_str()
    human = required_str()
    subject = required_str()
    situation = required_str()
    options = fields.List(fields.Str(), required=True)
    severity = required_str()
    status = required_str()
    response = required_str()
    note = required_str()
    responder = required_str()
    created_at = required_str()
    remind_at = required_str()
    expires_at = required_str()
    reannounced_at = maybe_str()
    answered_at = maybe_str()
    expired_at = maybe_str()
    context = fields.Dict()


class Webhook(Open):
    url = maybe_str()
    updated_at = fields.Str(allow_none=True)


class WebhookTest(Open):
    url = required_str()
    delivered = fields.Bool(required=True)
    error = fields.Str(required=True, allow_none=True)


class PolicyVersion(Open):
    version = fields.Int(required=True)
    etag = required_str()
    source = required_str()
    created_at = required_str()
    roles = fields.List(fields.Str(), required=True)
    active = fields.Bool(required=True)


class PolicyView(PolicyVersion):
    role = maybe_str()
    playbook_role = maybe_str()
    invariants = required_str()
    playbook = maybe_str()


class PolicyBundle(PolicyVersion):
    invariants = required_str()
    playbooks = fields.Dict(keys=fields.Str(), values=fields.Str(), required=True)
    markdown = required_str()


class PolicySet(PolicyVersion):
    created = fields.Bool(required=True)


class AuditRow(Open):
    id = fields.Int(required=True)
    at = required_str()
    who = required_str()
    who_kind = required_str()  # agent | human | system
    credential = required_str()
    action = required_str()
    bead = required_str()
    detail = fields.Dict(required=True)
    address = required_str()
    host = required_str()


class DashboardLink(Open):
    token = required_str()
    path = required_str()
    access = required_str()  # human | viewer
    project = required_str()
    expires_at = required_str()


class Human(Open):
    name = required_str()
    email = required_str()
    role = required_str()  # viewer | lead | admin
    joined = fields.Bool(required=True)
    invite_pending = fields.Bool(required=True)
    created_at = required_str()
    created_by = required_str()


class HumanInvite(Human):
    project = required_str()
    invite = required_str()
    invite_path = required_str()
    invite_expires_at = required_str()


class HumanRemoved(Open):
    name = required_str()
    removed = fields.Bool(required=True)


class HumanMe(Open):
    name = required_str()
    role = required_str()
    credential = required_str()  # project_key | personal_token
    project = required_str()
    projects = fields.List(fields.Dict(), required=True)


class Redeemed(Open):
    name = required_str()
    role = required_str()
    project = required_str()
    token = required_str()
