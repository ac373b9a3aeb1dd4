"""Marshmallow schemas of what the API answers, for the OpenAPI document (web/openapi.py).

The views build their answers in `store/` as plain dicts; these schemas describe them (they are
never used to dump). Objects accept more properties than listed (`unknown = INCLUDE`): a bead keeps
the unknown fields of its beads record, and adding a field to an answer must not break clients.
The OpenAPI test (tests/test_openapi.py) checks real answers against them.
"""

from __future__ import annotations

from typing import Any

from marshmallow import INCLUDE, Schema, fields


class Open(Schema):
    """An object that may carry more properties than listed."""

    class Meta:
        unknown = INCLUDE


def _str(**kw: Any) -> fields.Str:
    return fields.Str(required=True, **kw)


def _maybe_str() -> fields.Str:
    return fields.Str(required=True, allow_none=True)


class ErrorBody(Open):
    code = _str()
    message = _str()


class Error(Schema):
    """Every error: `{"error": {"code", "message", ...details}}`."""

    error = fields.Nested(ErrorBody, required=True)


class Epic(Open):
    id = _str()
    title = _str()


class GitCommit(Open):
    sha = _str()
    bead = fields.Str()
    subject = fields.Str()
    ts = fields.Float(allow_none=True)


class GitState(Open):
    """Where a claim's work sits: its holder's branch against the default branch (header `X-Wire-Git`)."""

    branch = _str()
    head = fields.Str()
    base = fields.Str()
    ahead = fields.Int(required=True)
    behind = fields.Int(required=True)
    merged = fields.Bool(required=True)
    commits = fields.List(fields.Nested(GitCommit), required=True)


class RecordedCommit(Open):
    """A commit recorded on a bead when it was closed."""

    sha = _str()
    subject = _str()
    branch = _str()
    at = _str()


class Claim(Open):
    alias = _str()
    human = _str()
    since = _maybe_str()
    stale = fields.Bool(required=True)
    reason = _str()
    bead = fields.Str()
    repo = fields.Str()
    title = fields.Str()
    epic = fields.Nested(Epic, allow_none=True)
    git = fields.Nested(GitState, allow_none=True)


class Workspace(Open):
    id = fields.Int(required=True)
    alias = _str()
    role = _str()
    human = _str()
    repo = _str()
    hostname = _str()
    path = _str()
    branch = _str()
    online = fields.Bool(required=True)
    status = _str()
    last_seen = _maybe_str()
    claims = fields.List(fields.Nested(Claim), required=True)
    idle_with_claim = fields.Bool()
    idle_since = fields.Str()
    idle_minutes = fields.Int()


class ProjectRef(Open):
    id = fields.Int(required=True)
    slug = _str()


class Project(ProjectRef):
    name = fields.Str()
    stale_claim_seconds = fields.Int(allow_none=True)


class ProjectSettings(Open):
    ready_scope = _str()
    idle_claim_minutes = fields.Int(required=True)


class Me(Workspace):
    project = fields.Nested(ProjectRef, required=True)


class Status(Open):
    project = fields.Nested(Project, required=True)
    me = fields.Nested(Workspace, required=True)
    team = fields.List(fields.Nested(Workspace), required=True)


class Init(Open):
    project = fields.Nested(Project, required=True)
    workspace = fields.Nested(Workspace, required=True)
    token = _str()
    project_key = fields.Str()


class Health(Open):
    status = _str()
    redis = _str()
    database = _str()


class Dependency(Open):
    issue_id = _str()
    depends_on_id = _str()
    type = _str()


class Comment(Open):
    id = fields.Raw(required=True)  # the synced id (a string, or an integer in older exports)
    author = _str()
    text = _str()
    created_at = _str()


class Bead(Open):
    id = _str()
    title = _str()
    status = _str()
    priority = fields.Int(required=True)
    issue_type = _str()
    labels = fields.List(fields.Str(), required=True)
    dependencies = fields.List(fields.Nested(Dependency), required=True)
    comments = fields.List(fields.Nested(Comment))
    repo = _str()
    claim = fields.Nested(Claim, required=True, allow_none=True)
    commits = fields.List(fields.Nested(RecordedCommit))  # GET /v1/beads/<ref>
    git = fields.Nested(GitState, allow_none=True)  # GET /v1/beads/<ref>, while claimed


class ClaimAnswer(Open):
    bead = fields.Nested(Bead, required=True)
    claimed = fields.Bool(required=True)
    already_held = fields.Bool(required=True)
    previous = fields.Nested(Claim, required=True, allow_none=True)


class Released(Open):
    released = fields.Bool(required=True)
    bead = fields.Nested(Bead, required=True)


class Closed(Open):
    bead = fields.Nested(Bead, required=True)
    unblocked = fields.List(fields.Nested(Bead), required=True)
    commits = fields.List(fields.Nested(RecordedCommit), required=True)


class Brief(Open):
    id = _str()
    status = _str()
    title = _maybe_str()
    repo = fields.Str()


class Deps(Open):
    id = _str()
    active_blockers = fields.List(fields.Nested(Brief), required=True)
    resolved_blockers = fields.List(fields.Nested(Brief), required=True)
    blocks = fields.List(fields.Nested(Brief), required=True)
    parent = fields.Nested(Brief, required=True, allow_none=True)
    children = fields.List(fields.Nested(Brief), required=True)


class Explain(Open):
    id = _str()
    repo = _str()
    ready = fields.Bool(required=True)
    reasons = fields.List(fields.Str(), required=True)


class SyncConflict(Open):
    id = _str()
    reason = _str()
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
    repo = _str()
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
    repo = _str()
    records = fields.List(fields.Dict(), required=True)


class SyncRun(Open):
    sync = fields.Int(required=True)
    kind = _str()
    alias = _str()
    at = _str()
    counts = fields.Dict(required=True)
    undo_of = fields.Int(required=True, allow_none=True)
    undone_by = fields.Int(required=True, allow_none=True)


class SyncUndone(Open):
    sync = fields.Int(required=True)
    undo_of = fields.Int(required=True)
    restored = fields.Int(required=True)
    conflicts = fields.List(fields.Nested(SyncConflict), required=True)
    records = fields.List(fields.Dict(), required=True)


class Subscribed(Open):
    bead = _str()
    subscribed = fields.Bool(required=True)


class Message(Open):
    id = fields.Int(required=True)
    from_ = fields.Str(data_key="from", required=True, allow_none=True)  # `from` is a keyword
    kind = _str()
    to = fields.List(fields.Str(), required=True)
    subject = _str()
    body = _str()
    thread = _str()
    priority = _str()
    created_at = _str()
    acked = fields.Bool()
    data = fields.Dict(required=True)


class Sent(Open):
    message = fields.Nested(Message, required=True)
    recipients = fields.List(fields.Str(), required=True)


class Acked(Open):
    id = fields.Int(required=True)
    acked = fields.Bool(required=True)


class ChatPosted(Open):
    message = fields.Nested(Message, required=True)
    cursor = _str()


class ChatMessages(Open):
    messages = fields.List(fields.Nested(Message), required=True)
    cursor = _str()


class ChatDone(Open):
    waiting = fields.Bool(required=True)


class Waiter(Open):
    alias = _str()
    seconds = fields.Int(required=True)


class Conversation(Open):
    unread = fields.Int(required=True)
    last = fields.Nested(Message, required=True, allow_none=True)


class ChatPending(Open):
    conversations = fields.List(fields.Nested(Conversation), required=True)
    waiting_on_you = fields.List(fields.Nested(Waiter), required=True)


class BannerItem(Open):
    id = fields.Int(required=True)
    kind = _str()
    entry = _str()  # its mailbox entry id: send the newest shown back in `X-Wire-Seen`


class ReadyNews(Open):
    """A bead that became ready for the watcher (`/v1/watch?ready=1`)."""

    id = _str()
    repo = _str()
    title = _str()
    role = _maybe_str()
    why = _str()


class Watch(Open):
    items = fields.List(fields.Nested(BannerItem), required=True)
    waiting = fields.List(fields.Nested(Waiter), required=True)
    #: with `ready=1` only
    ready = fields.List(fields.Nested(ReadyNews))
    cursor = fields.Str()


class WaitReady(Open):
    ready = fields.Bool(required=True)
    bead = fields.Nested(Bead, required=True, allow_none=True)
    reasons = fields.List(fields.Str())


class Reservation(Open):
    pattern = _str()
    alias = _str()
    reason = _str()
    bead = _maybe_str()
    auto = fields.Bool(required=True)
    expires_at = _str()
    seconds_left = fields.Int(required=True)
    mine = fields.Bool(required=True)


class Conflict(Open):
    path = _str()
    pattern = _str()
    alias = _str()
    reason = _str()
    bead = _maybe_str()
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
    role = _str()
    human = _str()
    subject = _str()
    situation = _str()
    options = fields.List(fields.Str(), required=True)
    severity = _str()
    status = _str()
    response = _str()
    note = _str()
    responder = _str()
    created_at = _str()
    remind_at = _str()
    expires_at = _str()
    reannounced_at = _maybe_str()
    answered_at = _maybe_str()
    expired_at = _maybe_str()
    context = fields.Dict()


class Webhook(Open):
    url = _maybe_str()
    updated_at = fields.Str(allow_none=True)


class WebhookTest(Open):
    url = _str()
    delivered = fields.Bool(required=True)
    error = fields.Str(required=True, allow_none=True)


class PolicyVersion(Open):
    version = fields.Int(required=True)
    etag = _str()
    source = _str()
    created_at = _str()
    roles = fields.List(fields.Str(), required=True)
    active = fields.Bool(required=True)


class PolicyView(PolicyVersion):
    role = _maybe_str()
    playbook_role = _maybe_str()
    invariants = _str()
    playbook = _maybe_str()


class PolicyBundle(PolicyVersion):
    invariants = _str()
    playbooks = fields.Dict(keys=fields.Str(), values=fields.Str(), required=True)
    markdown = _str()


class PolicySet(PolicyVersion):
    created = fields.Bool(required=True)


class Handoff(Open):
    id = fields.Int(required=True)
    from_ = fields.Str(data_key="from", required=True)
    to = _maybe_str()
    body = _str()
    created_at = _str()


class LatestHandoff(Open):
    handoff = fields.Nested(Handoff, required=True, allow_none=True)


class Prime(Open):
    handoff = fields.Nested(Handoff, required=True, allow_none=True)
    me = fields.Dict(required=True)
    playbook = fields.Dict(required=True)
    claims = fields.List(fields.Nested(Bead), required=True)
    ready = fields.List(fields.Nested(Bead), required=True)
    mail = fields.Dict(required=True)
    online = fields.List(fields.Dict(), required=True)
    #: {"by", "reason"} while the agent is paused, else null
    paused = fields.Dict(allow_none=True)
    #: open beads bound to the caller by a coordinator or a human, each with its `assignment`
    assigned = fields.List(fields.Nested(Bead))


class PauseState(Open):
    alias = _str()
    #: {"by", "reason", "since"}, or null when the agent is not paused
    paused = fields.Dict(required=True, allow_none=True)


class AuditRow(Open):
    id = fields.Int(required=True)
    at = _str()
    who = _str()
    who_kind = _str()  # agent | human | system
    credential = _str()
    action = _str()
    bead = _str()
    detail = fields.Dict(required=True)
    address = _str()
    host = _str()


class Rotated(Open):
    project = _str()
    project_key = _str()
    rotated_at = _str()


class Revoked(Open):
    alias = _str()
    revoked = fields.Bool(required=True)
    already = fields.Bool(required=True)
    stale_claims = fields.List(fields.Str(), required=True)
    released_reservations = fields.Int(required=True)


class RoleSet(Open):
    alias = _str()
    role = _str()
    previous = _str()


class JoinKeyMade(Open):
    project = _str()
    join_key = _str()  # bw_jk_..., shown this once
    expires_at = _str()
    join = _str()  # the command the agent runs


class DashboardLink(Open):
    token = _str()
    path = _str()
    access = _str()  # human | viewer
    project = _str()
    expires_at = _str()


class Human(Open):
    name = _str()
    email = _str()
    role = _str()  # viewer | lead | admin
    joined = fields.Bool(required=True)
    invite_pending = fields.Bool(required=True)
    created_at = _str()
    created_by = _str()


class HumanInvite(Human):
    project = _str()
    invite = _str()
    invite_path = _str()
    invite_expires_at = _str()


class HumanRemoved(Open):
    name = _str()
    removed = fields.Bool(required=True)


class HumanMe(Open):
    name = _str()
    role = _str()
    credential = _str()  # project_key | personal_token
    project = _str()
    projects = fields.List(fields.Dict(), required=True)


class Redeemed(Open):
    name = _str()
    role = _str()
    project = _str()
    token = _str()
