"""Durable state: the Peewee models, one table per fact.

Timestamps the server sets are double-precision epoch seconds (`*_ts`; a FloatField is REAL,
float4, on PostgreSQL: 2-minute steps at today's epoch); bead timestamps from beads files are
kept as the strings they came in (inside `data`) with a parsed `*_ts` copy for ordering.
"""

from __future__ import annotations

import peewee as pw

from store.db import BaseModel

#: Bumped whenever the schema changes; `migrate()` records it.
SCHEMA_VERSION = 13


class Row(BaseModel):
    """Peewee's implicit `id` key (the same INTEGER PRIMARY KEY), declared for mypy; so are the `x_id`
    column of each foreign key `x` (`repo_id: int`) and each backref, which peewee adds at runtime."""

    id = pw.AutoField()


class SchemaVersion(Row):
    version = pw.IntegerField()
    applied_ts = pw.DoubleField()


class Project(Row):
    slug = pw.CharField(max_length=64, unique=True)
    name = pw.CharField(max_length=200)
    key_hash = pw.CharField(max_length=64, unique=True)
    stale_claim_seconds = pw.IntegerField(null=True)
    created_ts = pw.DoubleField()
    #: which beads `ready` shows an agent: "all" (its role's first) or "role" (its role's and unroled
    #: ones only); schema 8, see store/settings.py
    ready_scope = pw.TextField(default="all")
    #: minutes without a command or a file change after which a claim's holder is "idle with claim"
    idle_claim_minutes = pw.IntegerField(default=30)


class Repo(Row):
    project = pw.ForeignKeyField(Project, on_delete="CASCADE")
    project_id: int
    canonical = pw.CharField(max_length=300)
    name = pw.CharField(max_length=200)
    prefix = pw.CharField(max_length=40, default="bd")

    class Meta:
        indexes = ((("project", "canonical"), True),)


class Workspace(Row):
    project = pw.ForeignKeyField(Project, on_delete="CASCADE")
    project_id: int
    repo = pw.ForeignKeyField(Repo, on_delete="CASCADE")
    repo_id: int
    # the column is named like peewee's Model.alias(), which a field may shadow (it does at runtime)
    alias = pw.CharField(max_length=64)  # type: ignore[assignment]
    role = pw.CharField(max_length=64)
    human = pw.CharField(max_length=100, default="")
    hostname = pw.CharField(max_length=255, default="")
    path = pw.CharField(max_length=1024, default="")
    token_hash = pw.CharField(max_length=64, unique=True)
    created_ts = pw.DoubleField()
    last_seen_ts = pw.DoubleField()
    revoked = pw.BooleanField(default=False)
    #: who paused it ("" = not paused) and why: a paused agent may not take new claims (store/steer.py)
    paused_by = pw.CharField(max_length=200, default="")
    paused_reason = pw.TextField(default="")
    paused_ts = pw.DoubleField(null=True)

    handoffs_received: pw.ModelSelect[Handoff]

    class Meta:
        indexes = ((("project", "alias"), True),)


class Bead(Row):
    project = pw.ForeignKeyField(Project, on_delete="CASCADE")
    project_id: int
    repo = pw.ForeignKeyField(Repo, on_delete="CASCADE")
    repo_id: int
    ref = pw.CharField(max_length=200)
    title = pw.CharField(max_length=1000)
    description = pw.TextField(default="")
    status = pw.CharField(max_length=32, default="open")
    priority = pw.IntegerField(default=2)
    issue_type = pw.CharField(max_length=64, default="task")
    assignee = pw.CharField(max_length=200, default="")
    #: who made `assignee` a binding assignment ("" = the plain beads field, e.g. set by a claim or a
    #: developer) and why: only a binding one heads the assignee's ready and refuses others' claims
    assigned_by = pw.CharField(max_length=200, default="")
    assign_reason = pw.TextField(default="")
    labels = pw.TextField(default="[]")
    created_ts = pw.DoubleField()
    updated_ts = pw.DoubleField()
    defer_ts = pw.DoubleField(null=True)
    #: every other field of the beads record, unknown ones included, as JSON.
    data = pw.TextField(default="{}")
    #: hash of the record as last synced, to tell "unchanged" from "updated" cheaply.
    digest = pw.CharField(max_length=64, default="")
    #: the beads record as a file last had it (JSON; "" for beads made here): how to write it back,
    #: so every field keeps the spelling it came with (store/records.py; schema 7).
    raw = pw.TextField(default="")  # type: ignore[assignment]  # shadows Model.raw(), as alias above

    deps: pw.ModelSelect[Dependency]
    comments: pw.ModelSelect[Comment]
    commits: pw.ModelSelect[BeadCommit]

    class Meta:
        indexes = ((("repo", "ref"), True), (("project", "status"), False), (("project", "ref"), False))


class Dependency(Row):
    bead = pw.ForeignKeyField(Bead, on_delete="CASCADE", backref="deps")
    bead_id: int
    project = pw.ForeignKeyField(Project, on_delete="CASCADE")
    project_id: int
    #: "" when the target is in the bead's own repo, else the repo as written (`name` or canonical).
    target_repo = pw.CharField(max_length=300, default="")
    target_ref = pw.CharField(max_length=200)
    type = pw.CharField(max_length=64, default="blocks")
    data = pw.TextField(default="{}")

    class Meta:
        indexes = ((("bead", "target_repo", "target_ref", "type"), True), (("project", "target_ref"), False))


class Comment(Row):
    bead = pw.ForeignKeyField(Bead, on_delete="CASCADE", backref="comments")
    bead_id: int
    ext_id = pw.CharField(max_length=100, default="")
    author = pw.CharField(max_length=200, default="")
    text = pw.TextField()
    created_at = pw.CharField(max_length=64, default="")
    #: other fields of a synced comment, kept so an export gives them back
    data = pw.TextField(default="{}")


class Claim(Row):
    #: no index of its own (schema 13): `claim_project_id_workspace_id` starts with it.
    project = pw.ForeignKeyField(Project, on_delete="CASCADE", index=False)
    project_id: int
    #: unique: the database itself guarantees a single holder per bead.
    bead = pw.ForeignKeyField(Bead, on_delete="CASCADE", unique=True)
    bead_id: int
    workspace = pw.ForeignKeyField(Workspace, on_delete="CASCADE")
    workspace_id: int
    claimed_ts = pw.DoubleField()
    reason = pw.TextField(default="")
    stale = pw.BooleanField(default=False)

    class Meta:
        indexes = ((("project", "workspace"), False),)


class Event(Row):
    """Audit history: claims, releases, jump-ins, closes, syncs."""

    #: no index of its own (schema 13): `event_project_id_bead_ref` starts with it.
    project = pw.ForeignKeyField(Project, on_delete="CASCADE", index=False)
    project_id: int
    kind = pw.CharField(max_length=32)
    workspace_id = pw.IntegerField(null=True)
    bead_ref = pw.CharField(max_length=520, default="")
    data = pw.TextField(default="{}")
    created_ts = pw.DoubleField(index=True)

    class Meta:
        indexes = ((("project", "bead_ref"), False),)


class Outbox(Row):
    """Side effects committed with the fact that causes them, delivered to Redis by actors."""

    project = pw.ForeignKeyField(Project, on_delete="CASCADE")
    project_id: int
    kind = pw.CharField(max_length=32)
    #: workspace whose mailbox gets this too (None: project event stream only).
    recipient_id = pw.IntegerField(null=True)
    #: the Delivery this row puts into the recipient's mailbox (schema v2).
    delivery_id = pw.IntegerField(null=True, index=True)
    #: whether the row also goes to the project event stream (schema v2).
    to_events = pw.BooleanField(default=True)
    payload = pw.TextField()
    created_ts = pw.DoubleField()
    delivered_ts = pw.DoubleField(null=True, index=True)
    attempts = pw.IntegerField(default=0)


class Message(Row):
    """Mail, chat and notices: the durable record behind every mailbox entry."""

    #: keeps its own index although `message_project_id_thread` starts with it: on SQLite that one is
    #: (project_id, rowid), so a project's newest messages (dashboard mail, search, an escalation's
    #: context: ORDER BY id DESC LIMIT n) are read off it without sorting all of the project's messages.
    project = pw.ForeignKeyField(Project, on_delete="CASCADE")
    project_id: int
    kind = pw.CharField(max_length=16)  # mail | chat | notice
    #: no index of its own (schema 13): `message_sender_id_kind` starts with it.
    sender = pw.ForeignKeyField(Workspace, null=True, on_delete="SET NULL", index=False)
    sender_id: int | None
    #: mail thread (`bd-12` by convention) or, for chat, the conversation `c:<low id>:<high id>`.
    thread = pw.CharField(max_length=200, default="")
    subject = pw.CharField(max_length=300, default="")
    body = pw.TextField(default="")
    priority = pw.CharField(max_length=16, default="normal")
    data = pw.TextField(default="{}")
    created_ts = pw.DoubleField()

    deliveries: pw.ModelSelect[Delivery]

    class Meta:
        indexes = ((("project", "thread"), False), (("sender", "kind"), False))


class Delivery(Row):
    """One message to one recipient; acked when the recipient has read it."""

    #: neither key has an index of its own (schema 13): `delivery_message_id_recipient_id` and
    #: `delivery_recipient_id_acked_ts` start with them.
    message = pw.ForeignKeyField(Message, on_delete="CASCADE", backref="deliveries", index=False)
    message_id: int
    recipient = pw.ForeignKeyField(Workspace, on_delete="CASCADE", index=False)
    recipient_id: int
    project = pw.ForeignKeyField(Project, on_delete="CASCADE")
    project_id: int
    acked_ts = pw.DoubleField(null=True)

    class Meta:
        indexes = ((("message", "recipient"), True), (("recipient", "acked_ts"), False))


class Subscription(Row):
    """A workspace wants a notice when a bead's status changes."""

    project = pw.ForeignKeyField(Project, on_delete="CASCADE")
    project_id: int
    workspace = pw.ForeignKeyField(Workspace, on_delete="CASCADE")
    workspace_id: int
    bead = pw.ForeignKeyField(Bead, on_delete="CASCADE")
    bead_id: int

    class Meta:
        indexes = ((("workspace", "bead"), True), (("bead",), False))


class Escalation(Row):
    """A question for a human, raised by an agent with its context attached (schema v3)."""

    project = pw.ForeignKeyField(Project, on_delete="CASCADE")
    project_id: int
    workspace = pw.ForeignKeyField(Workspace, on_delete="CASCADE")
    workspace_id: int
    subject = pw.CharField(max_length=300)
    situation = pw.TextField()
    #: JSON list of the choices the agent sees.
    options = pw.TextField(default="[]")
    severity = pw.CharField(max_length=16, default="normal")
    #: JSON: claims, reservations, branch, git status, recent mail and chat at the time of asking.
    context = pw.TextField(default="{}")
    status = pw.CharField(max_length=16, default="pending")  # pending | answered | expired
    response = pw.TextField(default="")
    note = pw.TextField(default="")
    responder = pw.CharField(max_length=100, default="")
    created_ts = pw.DoubleField()
    #: when it is announced a second time (once), and when it expires unanswered.
    remind_ts = pw.DoubleField()
    expires_ts = pw.DoubleField()
    reminded_ts = pw.DoubleField(null=True)
    answered_ts = pw.DoubleField(null=True)
    expired_ts = pw.DoubleField(null=True)

    class Meta:
        indexes = ((("project", "status"), False), (("status", "remind_ts"), False),
                   (("workspace", "status"), False))


class Webhook(Row):
    """Where a project's humans are told about escalations (Slack-compatible incoming webhook)."""

    project = pw.ForeignKeyField(Project, on_delete="CASCADE", unique=True)
    project_id: int
    url = pw.CharField(max_length=2000)
    updated_ts = pw.DoubleField()


class WebhookDelivery(Row):
    """One webhook post to make, retried with backoff until delivered or given up."""

    project = pw.ForeignKeyField(Project, on_delete="CASCADE")
    project_id: int
    escalation = pw.ForeignKeyField(Escalation, null=True, on_delete="CASCADE")
    escalation_id: int | None
    kind = pw.CharField(max_length=32)
    payload = pw.TextField()
    status = pw.CharField(max_length=16, default="pending")  # pending | delivered | failed | dropped
    attempts = pw.IntegerField(default=0)
    #: earliest time of the next attempt (also moved forward while an attempt holds the row).
    next_ts = pw.DoubleField()
    last_error = pw.CharField(max_length=500, default="")
    created_ts = pw.DoubleField()
    delivered_ts = pw.DoubleField(null=True)

    class Meta:
        indexes = ((("status", "next_ts"), False),)


class Policy(Row):
    """One version of a project's policy bundle: invariants plus one playbook per role."""

    project = pw.ForeignKeyField(Project, on_delete="CASCADE")
    project_id: int
    version = pw.IntegerField()
    #: SHA-256 of the bundle's content: the ETag of what is served from it.
    hash = pw.CharField(max_length=64)
    invariants = pw.TextField(default="")
    #: JSON object role -> markdown playbook.
    roles = pw.TextField(default="{}")
    source = pw.CharField(max_length=16, default="set")  # default | set | reset
    created_ts = pw.DoubleField()

    class Meta:
        indexes = ((("project", "version"), True),)


class PolicyHead(Row):
    """The active policy version of a project (one row each, so activation is one atomic write)."""

    project = pw.ForeignKeyField(Project, on_delete="CASCADE", unique=True)
    project_id: int
    version = pw.IntegerField()
    updated_ts = pw.DoubleField()


class Handoff(Row):
    """A note an agent leaves for the next run of its workspace, or for the agent taking over (schema v4)."""

    project = pw.ForeignKeyField(Project, on_delete="CASCADE")
    project_id: int
    workspace = pw.ForeignKeyField(Workspace, on_delete="CASCADE")
    workspace_id: int
    #: the agent taking over; None: the next run of `workspace` itself.
    to_workspace = pw.ForeignKeyField(Workspace, null=True, on_delete="CASCADE", backref="handoffs_received")
    to_workspace_id: int | None
    body = pw.TextField()
    created_ts = pw.DoubleField()

    class Meta:
        indexes = ((("workspace", "created_ts"), False), (("to_workspace", "created_ts"), False))


class RequestLog(Row):
    """A write sent with an `Idempotency-Key`: applied at most once, its answer replayed (schema v5).

    The row is inserted inside the transaction of the fact itself, so a request is never applied
    without its key being recorded; the answer is filled in right after (`status` 0 until then).
    """

    project = pw.ForeignKeyField(Project, on_delete="CASCADE")
    project_id: int
    #: the caller's workspace id; 0 for the project key.
    workspace_id = pw.IntegerField()
    key = pw.CharField(max_length=100)
    #: SHA-256 of method and path: a key reused for another request is refused.
    fingerprint = pw.CharField(max_length=64)
    status = pw.IntegerField(default=0)
    body = pw.TextField(default="")
    #: the answer held a secret (a new key or token), so it is not kept and cannot be replayed.
    withheld = pw.BooleanField(default=False)
    created_ts = pw.DoubleField()

    class Meta:
        indexes = ((("project", "workspace_id", "key"), True), (("created_ts",), False))


class SyncRun(Row):
    """One `wire sync` (or an undo of one) that changed the server: who, when, what (schema 7)."""

    project = pw.ForeignKeyField(Project, on_delete="CASCADE")
    project_id: int
    repo = pw.ForeignKeyField(Repo, on_delete="CASCADE")
    repo_id: int
    workspace_id = pw.IntegerField(null=True)
    alias = pw.CharField(max_length=64)  # type: ignore[assignment]  # shadows Model.alias(), see Workspace
    kind = pw.CharField(max_length=16, default="sync")  # sync | undo
    #: the run this one undid, and the run that undid this one
    undo_of = pw.IntegerField(null=True)
    undone_by = pw.IntegerField(null=True)
    #: JSON: created, updated, tombstoned, unchanged, pulled, conflicts
    counts = pw.TextField(default="{}")
    created_ts = pw.DoubleField(index=True)

    changes: pw.ModelSelect[SyncChange]

    class Meta:
        indexes = ((("repo", "created_ts"), False),)


class SyncChange(Row):
    """A bead a sync created, updated or tombstoned, with its state before (for `--undo`)."""

    run = pw.ForeignKeyField(SyncRun, on_delete="CASCADE", backref="changes")
    run_id: int
    bead = pw.ForeignKeyField(Bead, on_delete="CASCADE")
    bead_id: int
    action = pw.CharField(max_length=16)  # created | updated | tombstoned | restored
    #: JSON snapshot of the row, its dependencies and its claim before the change ("" when created)
    before = pw.TextField(default="")
    #: SHA-256 of the bead's record right after: an undo leaves a bead changed since then alone
    after = pw.CharField(max_length=64, default="")

    class Meta:
        indexes = ((("run", "bead"), True),)


class BeadCommit(Row):
    """A commit that names its bead, recorded when the bead is closed (schema 9): where the work went."""

    bead = pw.ForeignKeyField(Bead, on_delete="CASCADE", backref="commits")
    bead_id: int
    sha = pw.CharField(max_length=40)
    subject = pw.CharField(max_length=200, default="")
    branch = pw.CharField(max_length=200, default="")
    ts = pw.DoubleField()

    class Meta:
        indexes = ((("bead", "sha"), True),)


class JoinKey(Row):
    """A single-use key that lets one agent join its project with `wire init --join-key` (schema v10).

    Only its hash is stored. A human (the project key) or a coordinator makes one for the agent it
    onboards; it dies when used, or when it expires (the retention sweep deletes it then).
    """

    project = pw.ForeignKeyField(Project, on_delete="CASCADE")
    project_id: int
    key_hash = pw.CharField(max_length=64, unique=True)
    #: who made it: "project key" or the coordinator's alias
    created_by = pw.CharField(max_length=64)
    created_ts = pw.DoubleField()
    expires_ts = pw.DoubleField(index=True)
    used_ts = pw.DoubleField(null=True)
    workspace = pw.ForeignKeyField(Workspace, null=True, on_delete="SET NULL")
    workspace_id: int | None


class Human(Row):
    """A person of a project (schema 11): a name, a role, a personal token, a one-time invite.

    Names are unique per project whatever their case among persons not removed (index HUMAN_INDEX in
    store/schema.py); a removed row stays so what the person did keeps a name. `identity` is shared by
    the rows of one person in several projects (store/humans.py, `redeem_invite`): one login shows them all.
    """

    project = pw.ForeignKeyField(Project, on_delete="CASCADE")
    project_id: int
    name = pw.CharField(max_length=64)
    email = pw.CharField(max_length=254, default="")
    role = pw.CharField(max_length=16)
    identity = pw.CharField(max_length=64)
    token_hash = pw.CharField(max_length=64, null=True, unique=True)
    invite_hash = pw.CharField(max_length=64, null=True, unique=True)
    invite_expires_ts = pw.DoubleField(null=True)
    created_by = pw.CharField(max_length=100, default="")
    created_ts = pw.DoubleField()
    removed_ts = pw.DoubleField(null=True)


class Audit(Row):
    """One state change: who (name, kind, credential), what, when, from where. Append-only: no API
    edits or deletes a row; only the retention sweep drops rows past `audit_days` (store/audit.py)."""

    #: no index of its own (schema 13): `audit_project_id_ts` starts with it.
    project = pw.ForeignKeyField(Project, on_delete="CASCADE", index=False)
    project_id: int
    ts = pw.DoubleField()
    who = pw.CharField(max_length=200)
    #: agent | human | system
    who_kind = pw.CharField(max_length=16)
    #: workspace token | project key | dashboard session | (none for system)
    credential = pw.CharField(max_length=32, default="")
    action = pw.CharField(max_length=64)
    bead_ref = pw.CharField(max_length=520, default="")
    #: JSON: what the change was about (the event's payload, before/after values of an edit)
    detail = pw.TextField(default="{}")
    address = pw.CharField(max_length=64, default="")
    host = pw.CharField(max_length=255, default="")

    class Meta:
        indexes = ((("project", "ts"), False),)


V1_MODELS = [SchemaVersion, Project, Repo, Workspace, Bead, Dependency, Comment, Claim, Event, Outbox]
V2_MODELS = [Message, Delivery, Subscription]
V3_MODELS = [Escalation, Webhook, WebhookDelivery, Policy, PolicyHead]
V4_MODELS = [Handoff]
V5_MODELS = [RequestLog]
V7_MODELS = [SyncRun, SyncChange]
V9_MODELS = [BeadCommit]
V10_MODELS = [JoinKey]
V11_MODELS = [Human]
V12_MODELS = [Audit]
ALL_MODELS = (V1_MODELS + V2_MODELS + V3_MODELS + V4_MODELS + V5_MODELS + V7_MODELS + V9_MODELS + V10_MODELS
              + V11_MODELS + V12_MODELS)
