"""Beads, claims and the ready queue."""

from __future__ import annotations

import io
from typing import Any

from flask import Blueprint, Response, g, jsonify, request
from flask.typing import ResponseReturnValue
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from store import beads as bead_store
from store import claims as claim_store
from store import readiness
from store import sync as sync_store
from store.acting import is_human, person_workspace
from store.beads import MAX_TEXT, MAX_TITLE, STATUSES
from store.beadviews import Closed, bead_full, bead_history
from store.errors import InvalidInput
from store.gitstate import bead_git
from web.apidoc import doc
from web.common import load, load_args, person_acting, start_waiting, store, workspace_or_human
from web.idempotency import idempotent
from web.identity import ROLE
from web.schemas import Open
from web.schemas import beads as s

bp = Blueprint("beads", __name__, url_prefix="/v1")
bp.before_request(workspace_or_human)

Priority = fields.Raw  # 0-4, "P0"-"P4" or a word: normalised (and validated) by the store


def Ref(**kw: Any) -> fields.Str:  # capitalised: used like a field class, as Priority and Label
    """A bead reference, `repo:id` or an id."""
    return fields.Str(validate=validate.Length(min=1, max=520), **kw)


Label = fields.Str(validate=validate.Length(min=1, max=200))


def _not_blank(value: str) -> None:
    """A title of spaces lists as an empty row nobody can tell apart."""
    if not value.strip():
        raise ValidationError("must not be blank")


def Title(**kw: Any) -> fields.Str:
    return fields.Str(validate=[validate.Length(max=MAX_TITLE), _not_blank], **kw)


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
@doc("List beads", "either", s.Bead, many=True, query=list_args, errors=(409,))
def list_beads() -> Response:
    a = load_args(list_args)
    repo_id = None
    if a.get("repo"):
        repo = bead_store.repo_by_written(g.project.id, a["repo"])
        repo_id = repo.id if repo else -1
    priority = bead_store.priority_range(a["priority"]) if "priority" in a else None
    found = bead_store.list_beads(g.project.id, a.get("status"), a.get("type"), a.get("label"),
                                  a.get("assignee"), repo_id, a["all"], a["limit"], priority)
    return jsonify(s.beads.dump(found))


def _home_repo() -> int:
    """The caller's repo, where a bare bead id is looked up first; a person has none (0: no repo has it)."""
    return g.ws.repo_id if g.ws else 0


@bp.post("/beads")
@doc("Create a bead", "either", s.Bead, ok=201, body=create_schema, errors=(404, 409))
@idempotent
def create_bead() -> ResponseReturnValue:
    return jsonify(s.bead.dump(bead_store.create_bead(g.project.id, g.ws, load(create_schema)))), 201


@bp.get("/beads/<path:ref>")
@doc("A bead with its comments and claim", "either", s.Bead, errors=(409,))
def show_bead(ref: str) -> Response:
    bead = bead_store.get_bead(g.project.id, _home_repo(), ref)
    # the commits recorded on it, and while claimed its holder's live git state
    return jsonify({**s.bead.dump(bead_full(bead)), **bead_git(store(), bead)})


@bp.get("/beads/<path:ref>/history")
@doc("Who changed a bead, what and when: its newest events first", "either", s.Change, many=True,
     errors=(409,))
def history(ref: str) -> Response:
    bead = bead_store.get_bead(g.project.id, _home_repo(), ref)
    return jsonify(s.history.dump(bead_history(g.project.id, bead)))


@bp.patch("/beads/<path:ref>")
@doc("Change a bead (status in_progress claims, closed closes, open releases)", "either", Open,
     body=update_schema, errors=(409,))
@idempotent
def update_bead(ref: str) -> Response:
    changes = load(update_schema)
    status, jump_in = changes.pop("status", None), changes.pop("jump_in", None)
    if status == "in_progress" and is_human(g.ws):  # that would make the person the holder
        raise InvalidInput("status in_progress is an agent's claim: a person assigns or releases instead")
    answer = claim_store.update_bead(store(), g.project, g.ws, ref, changes, status, jump_in)
    return jsonify((s.closed if isinstance(answer, Closed) else s.bead).dump(answer))


@bp.post("/beads/<path:ref>/comments")
@doc("Comment on a bead", "either", s.Comment, ok=201, body=comment_schema, errors=(409,))
@idempotent
def comment(ref: str) -> ResponseReturnValue:
    made = bead_store.add_comment(g.project.id, g.ws, ref, load(comment_schema)["text"])
    return jsonify(s.comment.dump(made)), 201


@bp.post("/beads/<path:ref>/deps")
@doc("Add a dependency", "either", s.Dependency, ok=201, body=link_schema, errors=(409,))
@idempotent
def link(ref: str) -> ResponseReturnValue:
    args = load(link_schema)
    made = bead_store.link(g.project.id, g.ws, ref, args["target"], args["type"])
    return jsonify(s.dependency.dump(made)), 201


@bp.get("/beads/<path:ref>/deps")
@doc("A bead's blockers, dependents, parent and children", "workspace", s.Deps, errors=(409,))
def deps(ref: str) -> Response:
    return jsonify(s.deps.dump(bead_store.deps_of(g.project.id, g.ws.repo_id, ref)))


#: Request header of a claim: answer the bead's beads-file record too (`records`, as `GET /v1/sync/records`
#: would), so the CLI writes it through without a second call.
RECORDS_HEADER = "X-Wire-Records"
#: ... as the WSGI environ names it (`request.headers.get` finds a missing header through a KeyError)
RECORDS_ENVIRON = "HTTP_X_WIRE_RECORDS"


@bp.post("/beads/<path:ref>/claim")
@doc("Claim a bead", "workspace", s.ClaimAnswer, body=claim_schema, errors=(409,),
     parameters=({"name": RECORDS_HEADER, "in": "header", "schema": {"type": "string", "enum": ["1"]},
                  "description": "Answer the bead's beads-file record too, as `records`"},))
@idempotent
def claim(ref: str) -> Response:
    answer = s.claimed.dump(claim_store.claim_bead(store(), g.project, g.ws, ref, _jump_in()))
    if request.environ.get(RECORDS_ENVIRON):
        answer["records"] = sync_store.file_records(g.project, g.ws, [ref]).records
    return jsonify(answer)


def _jump_in() -> str | None:
    """The claim body's `jump_in`. A plain claim sends no body or `{}`, which the schema loads as no
    jump-in: that answer is known without running it (~0.15 ms of a ~2 ms claim)."""
    if _plain_claim(request.environ) or not request.content_length or (
            request.is_json and request.get_data(cache=True) == b"{}"):
        return None
    jump_in: str | None = load(claim_schema)["jump_in"]
    return jump_in


def _plain_claim(environ: dict[str, Any]) -> bool:
    """Whether the WSGI environ alone shows a plain claim: no body (a Content-Length that is absent,
    empty or 0, and no Transfer-Encoding), or the two bytes `{}` sent as `application/json`. These
    are the keys werkzeug's `content_length` and `is_json` read, without their parsing; any other
    request goes through them as before (~120K instructions of a ~2.8M claim, see `_two_bytes`)."""
    if "HTTP_TRANSFER_ENCODING" in environ:
        return False
    length = environ.get("CONTENT_LENGTH")
    if length is None or length == "" or length == "0":
        return True
    json_pair = length == "2" and environ.get("CONTENT_TYPE") == "application/json"
    return json_pair and _two_bytes(environ) == b"{}"


def _two_bytes(environ: dict[str, Any]) -> bytes:
    """The 2-byte body, read from the WSGI input and put back for whoever reads it next. werkzeug's
    `get_data` reads through a 64 KiB buffer it allocates per read (~50K instructions for 2 bytes).
    When werkzeug has read the body already (the idempotency fingerprint), this gets b"" and the
    caller asks werkzeug, which answers from its cache."""
    data: bytes = environ["wsgi.input"].read(2)
    environ["wsgi.input"] = io.BytesIO(data)
    return data


@bp.delete("/beads/<path:ref>/claim")
@doc("Release the caller's claim (409 `not_held` when it holds none); a person (a lead) "
     "frees whoever holds it, with a reason", "either", s.Released, errors=(409,))
@idempotent
def release(ref: str) -> Response:
    reason = load(release_schema)["reason"]
    if g.ws is None:  # a person (a lead or above) frees an agent's claim; the holder is told who and why
        actor = person_workspace(g.project, person_acting())
        return jsonify(s.released.dump(claim_store.release_for(g.project, actor, ref, reason)))
    return jsonify(s.released.dump(claim_store.release_bead(g.project, g.ws, ref)))


@bp.post("/beads/<path:ref>/close")
@doc("Close a bead", "either", s.Closed, body=close_schema, errors=(409,))
@idempotent
def close(ref: str) -> Response:
    reason = load(close_schema)["reason"]
    return jsonify(s.closed.dump(claim_store.close_bead(store(), g.project, g.ws, ref, reason)))


@bp.post("/beads/<path:ref>/reopen")
@doc("Reopen a bead", "either", s.Bead, errors=(409,))
@idempotent
def reopen(ref: str) -> Response:
    return jsonify(s.bead.dump(claim_store.reopen_bead(g.project, g.ws, ref)))


@bp.get("/ready")
@doc("The ready queue", "either", s.Bead, many=True, query=ready_args)
def ready() -> Response:
    a = load_args(ready_args)
    return jsonify(s.beads.dump(bead_store.ready(g.project.id, a["limit"], viewer=g.ws,
                                                 only_role=a.get("role"))))


@bp.get("/wait-ready")
@doc("Wait until a bead (or any bead for the caller) is ready", "workspace", s.WaitReady,
     query=wait_ready_args, errors=(404, 409))
def wait_ready() -> Response:
    a = load_args(wait_ready_args)
    return jsonify(s.wait_ready.dump(readiness.wait_ready(store(), g.project, g.ws, a["bead"], a["timeout"],
                                                          start_waiting)))


@bp.get("/ready/<path:ref>")
@doc("Why a bead is or is not ready", "workspace", s.Explain, errors=(409,))
def explain(ref: str) -> Response:
    return jsonify(s.explain.dump(bead_store.explain(g.project.id, g.ws.repo_id, ref)))


@bp.get("/mine")
@doc("Beads the caller holds", "workspace", s.Bead, many=True)
def mine() -> Response:
    return jsonify(s.beads.dump(claim_store.mine(g.project, g.ws)))


@bp.get("/search")
@doc("Search beads", "either", s.Bead, many=True, query=search_args)
def search() -> Response:
    a = load_args(search_args)
    return jsonify(s.beads.dump(bead_store.search_beads(g.project.id, a["q"], a["limit"])))


@bp.get("/claims")
@doc("Every claim of the project", "either", s.Claim, many=True)
def claims() -> Response:
    return jsonify(s.claim_list.dump(claim_store.list_claims(store(), g.project)))
