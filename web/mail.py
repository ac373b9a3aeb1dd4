"""Mail: the async, durable way agents talk; and bead subscriptions."""

from __future__ import annotations

from flask import Blueprint, g, jsonify
from marshmallow import Schema, fields, validate

from store import beads as bead_store
from store import messages
from web.apidoc import doc
from web.common import MAX_ID, load, load_args, request_entry, store, workspace_or_human
from web.idempotency import idempotent
from web.loading import Checked
from web.schemas import mail as s

bp = Blueprint("mail", __name__, url_prefix="/v1")
bp.before_request(workspace_or_human)

Alias = fields.Str(validate=validate.Length(min=1, max=64))


class SendSchema(Checked):
    to = fields.Str(required=True, validate=validate.Length(min=1, max=2000))
    # the 64 KiB limit is counted in bytes by the store; this bounds characters first
    body = fields.Str(required=True, validate=validate.Length(min=1, max=messages.MAX_BODY))
    subject = fields.Str(load_default="", validate=validate.Length(max=300))
    thread = fields.Str(load_default=None, allow_none=True, validate=validate.Length(max=200))
    priority = fields.Str(load_default="normal", validate=validate.OneOf(messages.PRIORITIES))


class ListArgs(Schema):
    unread = fields.Bool(load_default=False)
    from_ = fields.Str(data_key="from", load_default=None, validate=validate.Length(max=64))
    limit = fields.Int(load_default=50, validate=validate.Range(min=1, max=1000))


class LimitArgs(Schema):
    limit = fields.Int(load_default=50, validate=validate.Range(min=1, max=1000))


class SearchArgs(LimitArgs):
    q = fields.Str(required=True, validate=validate.Length(min=1, max=500))


class OpenSchema(Schema):
    id = fields.Int(load_default=None, allow_none=True, validate=validate.Range(min=1, max=MAX_ID))
    from_ = fields.Str(data_key="from", load_default=None, allow_none=True, validate=validate.Length(max=64))


send_schema, list_args, limit_args, search_args, open_schema = (SendSchema(), ListArgs(), LimitArgs(),
                                                                SearchArgs(), OpenSchema())


@bp.post("/mail")
@doc("Send mail", "either", s.Sent, ok=201, body=send_schema, errors=(404,))
@idempotent
def send():
    a = load(send_schema)
    # a person sends through their own workspace (web/common.py ACTS_AS_PERSON): marked as a human's
    sent = messages.send_mail(g.project, g.ws, a["to"], a["body"], a["subject"], a["thread"], a["priority"],
                              logged_as=request_entry())
    return jsonify(s.sent.dump(sent)), 201


@bp.get("/mail")
@doc("Mail and notices received", "workspace", s.Message, many=True, query=list_args)
def inbox():
    a = load_args(list_args)
    return jsonify(s.messages.dump(messages.inbox(g.ws, a["unread"], a["from_"], a["limit"])))


@bp.get("/mail/sent")
@doc("Mail sent", "workspace", s.Message, many=True, query=limit_args)
def sent():
    return jsonify(s.messages.dump(messages.sent(g.ws, load_args(limit_args)["limit"])))


@bp.get("/mail/search")
@doc("Search mail", "workspace", s.Message, many=True, query=search_args)
def search():
    a = load_args(search_args)
    return jsonify(s.messages.dump(messages.search(g.ws, a["q"], a["limit"])))


@bp.post("/mail/open")
@doc("Show and acknowledge mail", "workspace", s.Message, many=True, body=open_schema, errors=(404,))
@idempotent
def open_mail():
    a = load(open_schema)
    return jsonify(s.messages.dump(messages.open_mail(store(), g.ws, a["id"], a["from_"])))


@bp.post("/mail/<int:message_id>/ack")
@doc("Acknowledge one message", "workspace", s.Acked)
@idempotent
def ack(message_id: int):
    return jsonify(s.acked.dump(messages.ack_message(store(), g.ws, message_id)))


@bp.post("/beads/<path:ref>/subscribe")
@doc("Subscribe to a bead's status changes", "workspace", s.Subscribed, errors=(409,))
@idempotent
def subscribe(ref: str):
    bead = bead_store.get_bead(g.project.id, g.ws.repo_id, ref)
    return jsonify(s.subscribed.dump(messages.subscribe(g.project, g.ws, bead, True)))


@bp.delete("/beads/<path:ref>/subscribe")
@doc("Unsubscribe", "workspace", s.Subscribed, errors=(409,))
@idempotent
def unsubscribe(ref: str):
    bead = bead_store.get_bead(g.project.id, g.ws.repo_id, ref)
    return jsonify(s.subscribed.dump(messages.subscribe(g.project, g.ws, bead, False)))
