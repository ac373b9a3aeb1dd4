"""What the bead routes answer (web/beads.py): beads, claims, and the answers that carry them.

Each schema dumps a domain object of store/beadviews.py; field order is the order of the keys sent.
"""

from __future__ import annotations

from marshmallow import fields

from web.schemas import Given, Open, maybe_str, required_str


class Epic(Open):
    id = required_str()
    title = required_str()


class GitCommit(Open):
    sha = required_str()
    bead = fields.Str()
    subject = fields.Str()
    ts = fields.Float(allow_none=True)


class GitState(Open):
    """Where a claim's work sits: its holder's branch against the default branch (header `X-Wire-Git`)."""

    branch = required_str()
    head = fields.Str()
    base = fields.Str()
    ahead = fields.Int(required=True)
    behind = fields.Int(required=True)
    merged = fields.Bool(required=True)
    commits = fields.List(fields.Nested(GitCommit), required=True)


class RecordedCommit(Open):
    """A commit recorded on a bead when it was closed."""

    sha = required_str()
    subject = required_str()
    branch = required_str()
    at = required_str()


class Claim(Open):
    alias = required_str()
    human = required_str()
    since = maybe_str()
    stale = fields.Bool(required=True)
    reason = required_str()
    bead = fields.Str()
    repo = fields.Str()
    title = fields.Str()
    epic = Given(Epic, allow_none=True)  # store/claims.py `epics_of`
    git = Given(GitState, allow_none=True)  # store/gitstate.py `claim_git`


class Dependency(Open):
    issue_id = required_str()
    depends_on_id = required_str()
    type = required_str()

    EXTRA_AFTER = ""  # the dependency's other fields first, as the beads record has them


class Comment(Open):
    id = fields.Raw(required=True)  # the synced id (a string, or an integer in older exports)
    author = required_str()
    text = required_str()
    created_at = required_str()

    EXTRA_AFTER = ""


class Bead(Open):
    id = required_str()
    title = required_str()
    description = required_str()
    status = required_str()
    priority = fields.Int(required=True)
    issue_type = required_str()
    assignee = required_str()
    labels = fields.List(fields.Str(), required=True)
    dependencies = fields.List(fields.Nested(Dependency), required=True)
    comments = fields.List(fields.Nested(Comment))  # GET /v1/beads/<ref>
    repo = required_str()
    claim = fields.Nested(Claim, required=True, allow_none=True)
    #: {"to", "by", "reason"} of a binding assignment (a coordinator or a human gave it)
    assignment = fields.Dict()
    commits = Given(RecordedCommit, many=True)  # GET /v1/beads/<ref>
    git = Given(GitState, allow_none=True)  # GET /v1/beads/<ref>, while claimed

    EXTRA_AFTER = "labels"  # the record's other fields right after its column fields, as synced


class Change(Open):
    """One entry of a bead's history, newest first: who did what (an event of the live stream) and when."""

    id = fields.Int(required=True)
    at = required_str()
    who = required_str()  # the alias of the agent or person ("" for the server)
    kind = required_str()  # claim.created, bead.updated, bead.closed, sync, bead.assigned, ...
    data = fields.Dict(required=True)  # the event's data, as `GET /v1/ws` sends it


class ClaimAnswer(Open):
    claimed = fields.Bool(required=True)
    already_held = fields.Bool(required=True)
    previous = fields.Nested(Claim, required=True, allow_none=True)
    bead = fields.Nested(Bead, required=True)


class Released(Open):
    released = fields.Bool(required=True)
    #: who held it, when a person released someone's claim
    holder = fields.Str()
    bead = fields.Nested(Bead, required=True)


class Closed(Open):
    bead = fields.Nested(Bead, required=True)
    unblocked = fields.List(fields.Nested(Bead), required=True)
    commits = Given(RecordedCommit, many=True, required=True)  # store/gitstate.py `commits_of`


class Brief(Open):
    id = required_str()
    repo = fields.Str()
    status = required_str()
    title = maybe_str()


class Deps(Open):
    id = required_str()
    active_blockers = fields.List(fields.Nested(Brief), required=True)
    resolved_blockers = fields.List(fields.Nested(Brief), required=True)
    blocks = fields.List(fields.Nested(Brief), required=True)
    parent = fields.Nested(Brief, required=True, allow_none=True)
    children = fields.List(fields.Nested(Brief), required=True)


class Explain(Open):
    id = required_str()
    repo = required_str()
    ready = fields.Bool(required=True)
    reasons = fields.List(fields.Str(), required=True)


class WaitReady(Open):
    ready = fields.Bool(required=True)
    bead = fields.Nested(Bead, required=True, allow_none=True)
    reasons = fields.List(fields.Str())


bead = Bead()
beads = Bead(many=True)
claim_list = Claim(many=True)
history = Change(many=True)
claimed, released, closed = ClaimAnswer(), Released(), Closed()
deps, explain, wait_ready = Deps(), Explain(), WaitReady()
dependency, comment = Dependency(), Comment()
