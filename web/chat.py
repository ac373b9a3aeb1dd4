"""Chat (sync: the sender blocks until a reply) and `watch` (block until anything arrives)."""

from __future__ import annotations

from flask import Blueprint, g, jsonify
from marshmallow import Schema, fields, validate

from store import chat, messages, readiness
from store.db import close as db_close
from store.db import connect as db_connect
from web.apidoc import doc
from web.common import (
    MAX_ID,
    hold_waiter,
    load,
    load_args,
    request_entry,
    seen_entry,
    start_waiting,
    store,
    workspace_or_human,
)
from web.idempotency import idempotent
from web.schemas import chat as s
from web.schemas import mail as m
from web.schemas import watch as w

bp = Blueprint("chat", __name__, url_prefix="/v1")
bp.before_request(workspace_or_human)  # a person chats as themselves (ACTS_AS_PERSON)

Alias = fields.Str(required=True, validate=validate.Length(min=1, max=64))
Timeout = fields.Float(load_default=25.0, validate=validate.Range(min=0, max=chat.MAX_SLICE))


class PostSchema(Schema):
    to = Alias
    body = fields.Str(required=True, validate=validate.Length(min=1, max=messages.MAX_BODY))
    wait = fields.Int(load_default=0, validate=validate.Range(min=0, max=chat.MAX_WAIT))


class WaitArgs(Schema):
    with_ = fields.Str(data_key="with", required=True, validate=validate.Length(min=1, max=64))
    after = fields.Int(load_default=0, validate=validate.Range(min=0, max=MAX_ID))
    cursor = fields.Str(load_default="0-0", validate=validate.Regexp(r"^\d{1,19}-\d{1,19}$"))
    timeout = Timeout


class WithSchema(Schema):
    with_ = fields.Str(data_key="with", required=True, validate=validate.Length(min=1, max=64))


class HistoryArgs(WithSchema):
    limit = fields.Int(load_default=50, validate=validate.Range(min=1, max=1000))


class WatchArgs(Schema):
    timeout = Timeout
    #: also wake when work becomes ready for the caller (store/readiness.py)
    ready = fields.Bool(load_default=False)
    #: with `ready`: the event stream id the last watch answered (none: from now on)
    cursor = fields.Str(load_default=None, validate=validate.Regexp(r"^\d{1,19}-\d{1,19}$"))


post_schema, wait_args, with_schema, history_args, watch_args = (PostSchema(), WaitArgs(), WithSchema(),
                                                                 HistoryArgs(), WatchArgs())


@bp.post("/chat")
@doc("Send a chat message", "either", s.ChatPosted, ok=201, body=post_schema, errors=(404,))
@idempotent
def post():
    a = load(post_schema)
    result = chat.post(store(), g.project, g.ws, a["to"], a["body"], a["wait"], logged_as=request_entry())
    if g.get("banner"):  # answering ends the wait this banner was computed before
        answered = result.message.to[0]
        g.banner["waiting"] = [waiter for waiter in g.banner["waiting"] if waiter["alias"] != answered]
    return jsonify(s.posted.dump(result)), 201


@bp.get("/chat/wait")
@doc("Wait for a chat reply", "either", s.ChatMessages, query=wait_args, errors=(404,))
def wait():
    a = load_args(wait_args)
    hold_waiter(f"w{g.ws.id}")
    answer, to_ack = chat.wait(store(), g.project, g.ws, a["with_"], a["after"], a["cursor"], a["timeout"])
    response = jsonify(s.replies.dump(answer))
    if to_ack:  # acknowledged once the waiter has its reply, off the reply's critical path
        st, ws = store(), g.ws
        response.call_on_close(lambda: _ack(st, ws, to_ack))
    return response


def _ack(st, ws, delivery_ids: list[int]) -> None:
    db_connect()
    try:
        messages.ack_deliveries(st, ws, delivery_ids)
    finally:
        db_close()


@bp.post("/chat/done")
@doc("Stop waiting on someone", "either", s.ChatDone, body=with_schema, errors=(404,))
@idempotent
def done():
    return jsonify(s.done.dump(chat.done(store(), g.project, g.ws, load(with_schema)["with_"])))


@bp.get("/chat/pending")
@doc("Conversations with unread messages", "either", s.ChatPending)
def pending():
    return jsonify(s.pending.dump(chat.pending(store(), g.project, g.ws)))


@bp.get("/chat/history")
@doc("A conversation, oldest first", "either", m.Message, many=True, query=history_args, errors=(404,))
def history():
    a = load_args(history_args)
    return jsonify(m.messages.dump(chat.history(store(), g.project, g.ws, a["with_"], a["limit"])))


@bp.get("/watch")
@doc("Block until something arrives", "workspace", w.Watch, query=watch_args)
def watch():
    a = load_args(watch_args)
    timeout = a["timeout"]
    if a["ready"]:
        return jsonify(w.watch.dump(readiness.watch_ready(store(), g.project, g.ws, a["cursor"], timeout,
                                                          seen_entry(), g.banner, start_waiting)))
    if g.banner and (g.banner["new"] or g.banner["waiting"]):
        return jsonify(w.watch.dump({"items": g.banner["new"], "waiting": g.banner["waiting"]}))
    db_close()  # a watcher holds no database connection
    hold_waiter(f"w{g.ws.id}")
    seen, wait_ms = seen_entry(), int(timeout * 1000)
    if seen is None:  # a client that does not confirm: what this read takes is shown once, here
        entries = store().redis.read_group_blocking(g.project.id, g.ws.id, wait_ms)
    else:  # one that does: nothing is consumed, the entries stay until it confirms them
        entries = store().redis.wait_mailbox(g.project.id, g.ws.id, seen, wait_ms)
    items = [messages.banner_item(data, entry) for entry, data in entries]
    return jsonify(w.watch.dump({"items": items, "waiting": []}))
