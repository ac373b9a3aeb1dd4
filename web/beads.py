"""Beads, claims and the ready queue."""

from __future__ import annotations

from flask import Blueprint, g, jsonify
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from store import beads as bead_store
from store import claims as claim_store
from store import readiness
from store.beads import MAX_TEXT, MAX_TITLE, STATUSES
from store.acting import is_human, person_workspace
from store.errors import InvalidInput
from store.gitstate import bead_git
from web.common import acting_human, load, load_args, start_waiting, store, workspace_or_human
from web.identity import ROLE
from web.idempotency import idempotent

bp = Blueprint("beads", __name__, url_prefix="/v1")
bp.before_request(workspace_or_human)

Priority = fields.Raw  # 0-4, "P0"-"P4" or a word: normalised (and validated) by the store
Ref = lambda **kw: fields.Str(validate=validate.Length(min=1, max=520), **kw)
Label = fields.Str(validate=validate.Length(min=1, max=200))


def _not_blank(value: str) -> None:
    """A title of spaces lists as an empty row nobody can tell apart."""
    if not value.strip():
        raise ValidationError("must not be blank")


Title = lambda **kw: fields.Str(validate=[validate.Length(max=MAX_TITLE), _not_blank], **kw)


class CreateSchema(Schema):
    title = Title(required=True)
    issue_type = fields.Str(load_default="task", validate=validate.Length(min=1, max=64))
    priority = Priority(load_default=2)
    description = fields.Str(load_default="", validate=validate.Length(max=MAX_TEXT))
    labels = fields.List(Label, load_default=list, validate=validate.Length(max=100))
    parent = Ref(load_default=None, allow_none=True)
    blocked_by = fields.List(Ref(), load_default=list, validate=validate.Length(max=100))
    #: stored as the label `role:<role>` (store/readiness.py)
    role = fields.Str(load_default=None, allow_none=True, validate=ROLE)


class UpdateSchema(Schema):
    status = fields.Str(validate=validate.OneOf(STATUSES))
    title = Title()
    priority = Priority()
    description = fields.Str(validate=validate.Length(max=MAX_TEXT))
    assignee = fields.Str(validate=validate.Length(max=200))
    add_labels = fields.List(Label, validate=validate.Length(max=100))
    remove_labels = fields.List(Label, validate=validate.Length(max=100))
    #: replaces the bead's `role:` label; "" removes it
    role = fields.Str(validate=validate.Regexp(r"^([A-Za-z0-9_-]{1,64})?\Z"))
    jump_in = fields.Str(validate=validate.Length(min=1, max=2000))

    @validates_schema
    def _something(self, data: dict, **_: object) -> None:
        if not data:
            raise ValidationError("nothing to update")


class CommentSchema(Schema):
    text = fields.Str(required=True, validate=validate.Length(min=1, max=MAX_TEXT))


class LinkSchema(Schema):
    target = Ref(required=True)
    type = fields.Str(load_default="blocks", validate=validate.OneOf(
        ["blocks", "parent-child", "conditional-blocks", "waits-for", "related", "discovered-from"]))


class ClaimSchema(Schema):
    jump_in = fields.Str(load_default=None, allow_none=True, validate=validate.Length(min=1, max=2000))


class CloseSchema(Schema):
    reason = fields.Str(load_default="", validate=validate.Length(max=2000))


class ReleaseSchema(Schema):
    reason = fields.Str(load_default="", validate=validate.Length(max=2000))  # needed from a person


class ListArgs(Schema):
    status = fields.Str(validate=validate.OneOf(STATUSES))
    type = fields.Str(validate=validate.Length(max=64))
    label = Label
    assignee = fields.Str(validate=validate.Length(max=200))
    repo = fields.Str(validate=validate.Length(max=300))
    priority = fields.Str(validate=validate.Length(min=1, max=40))  # P1, 1, high, 0-1, P0-P2
    all = fields.Bool(load_default=False)
    limit = fields.Int(load_default=200, validate=validate.Range(min=1, max=10_000))


class ReadyArgs(Schema):
    limit = fields.Int(load_default=50, validate=validate.Range(min=1, max=10_000))
    #: only this role's beads
    role = fields.Str(validate=ROLE)


class WaitReadyArgs(Schema):
    #: the bead to wait for; none: any bead ready for the caller in its repo
    bead = Ref(load_default=None)
    timeout = fields.Float(load_default=25.0, validate=validate.Range(min=0, max=readiness.MAX_SLICE))


class SearchArgs(Schema):
    q = fields.Str(required=True, validate=validate.Length(min=1, max=500))
    limit = fields.Int(load_default=50, validate=validate.Range(min=1, max=1000))


create_schema, update_schema, comment_schema = CreateSchema(), UpdateSchema(), CommentSchema()
link_schema, claim_schema, close_schema = LinkSchema(), ClaimSchema(), CloseSchema()
release_schema = ReleaseSchema()
list_args, ready_args, search_args, wait_ready_args = ListArgs(), ReadyArgs(), SearchArgs(), WaitReadyArgs()


@bp.get("/beads")
def list_beads():
    a = load_args(list_args)
    repo_id = None
    if a.get("repo"):
        repo = bead_store.repo_by_written(g.project.id, a["repo"])
        repo_id = repo.id if repo else -1
    priority = bead_store.priority_range(a["priority"]) if "priority" in a else None
    return jsonify(bead_store.list_beads(g.project.id, a.get("status"), a.get("type"), a.get("label"),
                                         a.get("assignee"), repo_id, a["all"], a["limit"], priority))


@bp.post("/beads")
@idempotent
def create_bead():
    return jsonify(bead_store.create_bead(g.project.id, g.ws, load(create_schema))), 201


@bp.get("/beads/<path:ref>")
def show_bead(ref: str):
    bead = bead_store.get_bead(g.project.id, g.ws.repo_id if g.ws else None, ref)
    # the commits recorded on it, and while claimed its holder's live git state
    return jsonify({**bead_store.bead_full_json(bead), **bead_git(store(), bead)})


@bp.patch("/beads/<path:ref>")
@idempotent
def update_bead(ref: str):
    changes = load(update_schema)
    status, jump_in = changes.pop("status", None), changes.pop("jump_in", None)
    if status == "in_progress" and is_human(g.ws):  # that would make the person the holder
        raise InvalidInput("status in_progress is an agent's claim: a person assigns or releases instead")
    return jsonify(claim_store.update_bead(store(), g.project, g.ws, ref, changes, status, jump_in))


@bp.post("/beads/<path:ref>/comments")
@idempotent
def comment(ref: str):
    return jsonify(bead_store.add_comment(g.project.id, g.ws, ref, load(comment_schema)["text"])), 201


@bp.post("/beads/<path:ref>/deps")
@idempotent
def link(ref: str):
    args = load(link_schema)
    return jsonify(bead_store.link(g.project.id, g.ws, ref, args["target"], args["type"])), 201


@bp.get("/beads/<path:ref>/deps")
def deps(ref: str):
    return jsonify(bead_store.deps_of(g.project.id, g.ws.repo_id, ref))


@bp.post("/beads/<path:ref>/claim")
@idempotent
def claim(ref: str):
    return jsonify(claim_store.claim_bead(store(), g.project, g.ws, ref, load(claim_schema)["jump_in"]))


@bp.delete("/beads/<path:ref>/claim")
@idempotent
def release(ref: str):
    reason = load(release_schema)["reason"]
    if g.ws is None:  # a person (a lead or above) frees an agent's claim; the holder is told who and why
        actor = person_workspace(g.project, acting_human())
        return jsonify(claim_store.release_for(g.project, actor, ref, reason))
    return jsonify(claim_store.release_bead(g.project, g.ws, ref))


@bp.post("/beads/<path:ref>/close")
@idempotent
def close(ref: str):
    return jsonify(claim_store.close_bead(store(), g.project, g.ws, ref, load(close_schema)["reason"]))


@bp.post("/beads/<path:ref>/reopen")
@idempotent
def reopen(ref: str):
    return jsonify(claim_store.reopen_bead(g.project, g.ws, ref))


@bp.get("/ready")
def ready():
    a = load_args(ready_args)
    return jsonify(bead_store.ready(g.project.id, a["limit"], viewer=g.ws, only_role=a.get("role")))


@bp.get("/wait-ready")
def wait_ready():
    a = load_args(wait_ready_args)
    return jsonify(readiness.wait_ready(store(), g.project, g.ws, a["bead"], a["timeout"], start_waiting))


@bp.get("/ready/<path:ref>")
def explain(ref: str):
    return jsonify(bead_store.explain(g.project.id, g.ws.repo_id, ref))


@bp.get("/mine")
def mine():
    return jsonify(claim_store.mine(g.project, g.ws))


@bp.get("/search")
def search():
    a = load_args(search_args)
    return jsonify(bead_store.search_beads(g.project.id, a["q"], a["limit"]))


@bp.get("/claims")
def claims():
    return jsonify(claim_store.list_claims(store(), g.project))
