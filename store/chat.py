"""Chat: synchronous conversations between two workspaces.

A chat message is a `Message` like mail, published by the request itself as soon as it commits
(the outbox's fast path; its durability is waited for after), so a blocked waiter wakes within
milliseconds. Waiting is push, not polling: the waiter waits on its own mailbox stream from a cursor
(store/wakeups.py: woken with the entry itself) holding no database connection, and resumes after a
restart from the last message id it saw.
"""

from __future__ import annotations

import json

from store import Store, audit, db, outbox, queries
from store.audit import Entry
from store.errors import InvalidInput
from store.mailviews import ChatDone, ChatMessages, ChatPending, ChatPosted, Conversation, MessageView, Waiter
from store.messages import (
    _check_body,
    ack_deliveries,
    deliver_view,
    insert_view,
    message_view,
    resolve_recipients,
    sender_details,
)
from store.models import Delivery, Message, Project, Workspace
from store.queries import Addressee
from store.util import now

#: Longest single wait slice the server holds a request for (the CLI loops over slices).
MAX_SLICE = 30
#: Longest total wait a chat may announce.
MAX_WAIT = 3600


def conversation(a: Workspace, b: Addressee) -> str:
    low, high = sorted((a.id, b.id))
    return f"c:{low}:{high}"


def partner(project: Project, ws: Workspace, alias: str) -> Addressee:
    """The one workspace `alias` names (chat is between two).

    Raises:
        WorkspaceNotFound: unknown alias.
        InvalidInput: a group, or oneself.
    """
    if "," in alias or alias.startswith("@"):
        raise InvalidInput("chat is with one workspace: use mail for groups")
    (other,) = resolve_recipients(project, ws, alias)
    if other.id == ws.id:
        raise InvalidInput("you cannot chat with yourself")
    return other


def post(st: Store, project: Project, ws: Workspace, to: str, body: str, wait: int = 0,
         logged_as: Entry | None = None) -> ChatPosted:
    """Send a chat message; with `wait` > 0 the recipient sees that `ws` is waiting for its reply.
    `logged_as`: the audit row of the posting request, written in the message's own transaction
    (without it the caller logs the post).

    Returns the message and the caller's mailbox cursor to wait from.
    """
    _check_body(body)
    if not 0 <= wait <= MAX_WAIT:
        raise InvalidInput(f"wait must be between 0 and {MAX_WAIT} seconds")
    cursor: list[str | None] = []

    def publish() -> None:
        # one round trip wakes the waiter: our cursor, then the message. The cursor is read before the
        # message lands, so no reply to it can come before the cursor; anything the other side committed
        # meanwhile is newer than `message` and `wait` finds it in SQL first. Sent as soon as the
        # transaction commits, while the disk makes it durable: a waiter reading SQL would see the
        # message from then on anyway, and our own answer still waits for the disk.
        cursor.append(outbox.publish_pending(st, cursor_of=(project.id, ws.id)))

    with db.transaction(on_commit=publish) as uow:
        other = partner(project, ws, to)  # in the transaction, as mail's recipients (store/messages.py)
        view = insert_view(project.id, "chat", ws.id, ws.alias, [other.alias], conversation(ws, other), "",
                           body, "normal", sender_details(ws))
        deliver_view(uow, project.id, view, [other])
        read = _mark_read(ws, other)  # answering means having read what the other side said
        if logged_as is not None:  # one commit and one fsync per post, not a second for the catch-all row
            audit.record(uow, project.id, logged_as.action, detail=logged_as.detail)
    # the bookkeeping below is not on the waiter's clock: what we read leaves our mailbox, the other
    # side's wait on us ends, and with `wait` ours on it starts, in one round trip
    ts = now()
    st.redis.end_turn(project.id, ws.id, other.id, read, ts + wait if wait else 0,
                      {"alias": ws.alias, "since": ts})
    if not cursor:  # inside an enclosing transaction: nothing committed yet, the cursor is read now
        cursor.append(outbox.publish_pending(st, cursor_of=(project.id, ws.id)))
    return ChatPosted(view, cursor[0])


def done(st: Store, project: Project, ws: Workspace, alias: str) -> ChatDone:
    """The caller stopped waiting for `alias`."""
    other = partner(project, ws, alias)
    st.redis.set_waiting(project.id, other.id, ws.id, 0, {})
    return ChatDone(False, {"with": other.alias})


def wait(st: Store, project: Project, ws: Workspace, alias: str, after: int, cursor: str,
         timeout: float) -> tuple[ChatMessages, list[int]]:
    """Block until `alias` says something newer than message `after`, or `timeout` seconds pass.

    Returns the answer and the deliveries to acknowledge (`ack_deliveries`) once it is sent:
    the waiter gets the reply first, the bookkeeping follows.
    """
    other = partner(project, ws, alias)
    found = _unread_from(ws, other, after)
    deadline = now() + min(max(timeout, 0.0), MAX_SLICE)
    if not found:
        db.close()  # a waiter holds no database connection
        found, cursor = _block(st, project, ws, other, after, cursor, deadline)
    return ChatMessages([m for _, m in found], cursor), [d for d, _ in found]


def _block(st: Store, project: Project, ws: Workspace, other: Addressee, after: int, cursor: str,
           deadline: float) -> tuple[list[tuple[int, MessageView]], str]:
    found: list[tuple[int, MessageView]] = []
    while not found and (left := deadline - now()) > 0:
        for sid, fields in st.redis.wait_mailbox(project.id, ws.id, cursor, int(left * 1000)):
            cursor = sid
            data = json.loads(fields.get("data", "{}"))
            if fields.get("kind") == "chat" and data.get("from") == other.alias and data.get("id", 0) > after:
                sent = {k: v for k, v in data.items() if k not in ("delivery", "ts")}
                found.append((data["delivery"], MessageView.from_dict(sent)))
    return found, cursor


def _unread_from(ws: Workspace, other: Addressee, after: int) -> list[tuple[int, MessageView]]:
    rows = (Delivery.select(Delivery, Message).join(Message)
            .where(Delivery.recipient == ws.id, Message.sender == other.id, Message.kind == "chat",
                   Message.id > after).order_by(Message.id))
    return [(d.id, message_view(d.message, other.alias, [ws.alias])) for d in rows]


def _read_from(st: Store, ws: Workspace, other: Addressee) -> None:
    ack_deliveries(st, ws, queries.unread_from(ws.id, other.id, "chat"))  # what `ws` has not read yet


def _mark_read(ws: Workspace, other: Addressee) -> list[int]:
    """Inside the caller's transaction: record that `ws` read what `other` said to it (the deliveries
    `ack_deliveries` would mark); returns them, for the caller to drop from the mailbox once committed."""
    unread = queries.unread_from(ws.id, other.id, "chat")
    if unread:
        queries.ack(unread, now())
    return unread


def pending(st: Store, project: Project, ws: Workspace) -> ChatPending:
    """Conversations with unread messages, and who is blocked waiting for the caller."""
    rows = (Delivery.select(Delivery, Message, Workspace).join(Message)
            .join(Workspace, on=(Message.sender == Workspace.id))
            .where(Delivery.recipient == ws.id, Delivery.acked_ts.is_null(), Message.kind == "chat")
            .order_by(Message.id))
    conversations: dict[str, Conversation] = {}
    for d in rows:
        sender = d.message.sender
        assert sender is not None  # joined on the sender above
        alias = sender.alias
        entry = conversations.setdefault(alias, Conversation({"with": alias}))
        entry.unread += 1
        entry.last = message_view(d.message, alias, [ws.alias])
    ts = now()
    waiting = [Waiter(w["alias"], int(ts - w["since"])) for w in st.redis.waiting_on(project.id, ws.id, ts)]
    return ChatPending(list(conversations.values()), waiting)


def history(st: Store, project: Project, ws: Workspace, alias: str, limit: int = 50) -> list[MessageView]:
    """The conversation with `alias`, oldest first (the latest `limit` messages); marks it read."""
    other = partner(project, ws, alias)
    rows = list(Message.select().where(Message.project == project.id, Message.kind == "chat",
                                       Message.thread == conversation(ws, other))
                .order_by(Message.id.desc()).limit(limit))
    _read_from(st, ws, other)
    names = {ws.id: ws.alias, other.id: other.alias}
    return [message_view(m, names.get(m.sender_id or 0), [names[other.id if m.sender_id == ws.id else ws.id]])
            for m in reversed(rows)]

