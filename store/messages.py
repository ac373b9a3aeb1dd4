"""Mail and notices: durable messages in SQL, delivered into each recipient's mailbox stream.

A message is one `Message` row plus one `Delivery` per recipient, committed with one outbox row
per delivery; the outbox actor puts each delivery into the recipient's mailbox (a Redis stream
read through a consumer group). Acknowledging a delivery records it in SQL and acks the entry.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from peewee import JOIN, ModelSelect

from store import Store, audit, db, outbox, queries
from store.acting import is_human
from store.audit import Entry
from store.beadviews import ABSENT
from store.errors import InvalidInput, NotFound, WorkspaceNotFound
from store.mailviews import Acked, MessageView, Sent, Subscribed
from store.models import Bead, Delivery, Message, Outbox, Project, Subscription, Workspace
from store.queries import Addressee
from store.redis import Beat
from store.unit import UnitOfWork
from store.util import iso, now

PRIORITIES = ("low", "normal", "high", "urgent")
#: Largest mail or chat body.
MAX_BODY = 64 * 1024
#: Characters of a message the banner shows.
DEFAULT_PREVIEW = 120
_BEAD_TAG = re.compile(r"^\s*\[([A-Za-z0-9_.:-]+-[A-Za-z0-9_.-]+)\]")


# -- recipients -------------------------------------------------------------------------------

def resolve_recipients(project: Project, sender: Workspace | None, to: str) -> list[Addressee]:
    """`alias`, `a,b`, `@role` or `@all` (never the sender itself for groups; None: a person sends).

    Raises:
        WorkspaceNotFound: an alias is unknown (with close matches), or a group is empty.
    """
    found: dict[int, Addressee] = {}
    for part in (p.strip() for p in to.split(",")):
        if not part:
            continue
        if part.startswith("@"):
            query = Workspace.select(Workspace.id, Workspace.alias).where(
                Workspace.project == project.id, Workspace.revoked == False,
                Workspace.id != (sender.id if sender else 0))
            rows = query if part == "@all" else query.where(Workspace.role == part[1:])
            group = [Addressee(*row) for row in rows.tuples()]
        else:
            group = queries.live_by_alias(project.id, part)
            if not group:
                raise _unknown(project, part)
        if not group:
            raise WorkspaceNotFound(f"nobody matches {part!r} in this project", suggestions=[])
        found.update((w.id, w) for w in group)
    if not found:
        raise InvalidInput("no recipient given")
    return list(found.values())


def _unknown(project: Project, alias: str) -> WorkspaceNotFound:
    query = Workspace.select(Workspace.alias).where(Workspace.project == project.id)
    aliases = [a for (a,) in query.tuples()]
    close = difflib.get_close_matches(alias, aliases, n=5, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    return WorkspaceNotFound(f"no workspace {alias!r} in this project{hint}", suggestions=close)


def thread_for(subject: str, body: str, thread: str | None) -> str:
    """The explicit thread, else the bead a message is about (`[bd-12] ...`), else none."""
    if thread:
        return thread
    match = _BEAD_TAG.match(subject) or _BEAD_TAG.match(body)
    return match.group(1) if match else ""


# -- writing ----------------------------------------------------------------------------------

def insert_view(project_id: int, kind: str, sender_id: int | None, sender_alias: str | None, to: list[str],
                thread: str, subject: str, body: str, priority: str, data: dict[str, Any]) -> MessageView:
    """Insert a Message row (inside the caller's transaction) and answer it as the API shows it
    (`message_view` of the row), without a model instance or reading `data` back."""
    ts = now()
    pk = queries.insert_message(project_id, kind, sender_id, thread, subject, body, priority,
                                json.dumps(data) if data else "{}", ts)
    return MessageView(pk, kind, sender_alias, to, subject, body, thread, priority, iso(ts), data)


def deliver_view(uow: UnitOfWork, project_id: int, view: MessageView,
                 recipients: Sequence[Addressee | Workspace]) -> None:
    """Delivery rows and their outbox rows for the message `view` (addressed to every recipient); the
    first also goes to the project event stream, each other recipient's copy names that recipient."""
    for i, ws in enumerate(recipients):
        delivery_id = queries.insert_delivery(view.id, ws.id, project_id)
        # the copy that also goes to the event stream names every recipient (dashboards show and scope by it)
        copy = view if i == 0 else replace(view, to=[ws.alias])
        payload = {"delivery": delivery_id, **copy.as_dict()}
        outbox.record(uow, project_id, view.kind, payload, recipient_id=ws.id, delivery_id=delivery_id,
                      to_events=i == 0, audit=False)


def send_mail(project: Project, sender: Workspace, to: str, body: str, subject: str = "",
              thread: str | None = None, priority: str = "normal", logged_as: Entry | None = None) -> Sent:
    """Mail one or many workspaces; durable once this returns. `logged_as`: the audit row of the
    sending request, written in the mail's own transaction (without it the caller logs the send).

    Raises:
        WorkspaceNotFound: unknown recipient (with suggestions).
        InvalidInput: empty or oversize body, unknown priority.
    """
    _check_body(body)
    if priority not in PRIORITIES:
        raise InvalidInput(f"priority must be one of {', '.join(PRIORITIES)}")
    with db.transaction() as uow:
        # looked up in the write transaction: on SQLite a read of its own would begin (and check its
        # cached pages against the WAL) once more, ~0.1 ms a mail; an unknown one just rolls back
        recipients = resolve_recipients(project, sender, to)
        view = insert_view(project.id, "mail", sender.id, sender.alias, [w.alias for w in recipients],
                           thread_for(subject, body, thread), subject, body, priority, sender_details(sender))
        deliver_view(uow, project.id, view, recipients)
        if logged_as is not None:
            audit.record(uow, project.id, logged_as.action, detail=logged_as.detail)
    return Sent(view, list(view.to))


def sender_name(message: Message) -> str | None:
    """The alias of a message's sender workspace (a person's is their name), None for the server's."""
    sender = message.sender if message.sender_id else None
    return sender.alias if sender is not None else None


def sender_details(sender: Workspace) -> dict[str, Any]:
    """A message's `data`: a person's messages say so (banners read `mail from maria (human)`)."""
    return {"human": True} if is_human(sender) else {}


def notify(uow: UnitOfWork, project_id: int, recipient_id: int, text: str, data: dict[str, Any]) -> None:
    """A notice from the server (claim taken over, subscribed bead changed, ...); inside a transaction."""
    recipient = Workspace.get_by_id(recipient_id)
    view = insert_view(project_id, "notice", None, None, [recipient.alias], data.get("bead", ""), "", text,
                       "normal", data)
    deliver_view(uow, project_id, view, [recipient])


def notify_subscribers(uow: UnitOfWork, bead: Bead, actor: Workspace, text: str, status: str) -> None:
    """Tell every subscriber of `bead` (except whoever changed it) that its status changed."""
    rows = Subscription.select(Subscription.workspace).where(Subscription.bead == bead.id,
                                                             Subscription.workspace != actor.id).tuples()
    for (ws_id,) in rows:
        notify(uow, bead.project_id, ws_id, text, {"bead": bead.ref, "status": status, "by": actor.alias})


def subscribe(project: Project, ws: Workspace, bead: Bead, on: bool) -> Subscribed:
    with db.transaction():
        if on:
            (Subscription.insert(project=project.id, workspace=ws.id, bead=bead.id)
             .on_conflict_ignore().execute())
        else:
            mine = (Subscription.workspace == ws.id) & (Subscription.bead == bead.id)
            Subscription.delete().where(mine).execute()
    return Subscribed(bead.ref, on)


def _check_body(body: str) -> None:
    if not body.strip():
        raise InvalidInput("the message body is empty")
    if len(body.encode()) > MAX_BODY:
        raise InvalidInput(f"the message body is larger than {MAX_BODY // 1024} KiB")


# -- reading ----------------------------------------------------------------------------------

def message_view(message: Message, sender_alias: str | None, to: list[str],
                 acked: Any = ABSENT) -> MessageView:
    """A message row as the API shows it (`acked`: for the caller's own deliveries)."""
    return MessageView(message.id, message.kind, sender_alias, to, message.subject, message.body,
                       message.thread, message.priority, iso(message.created_ts), json.loads(message.data),
                       acked)


def _received(ws: Workspace) -> ModelSelect[Delivery]:
    return (Delivery.select(Delivery, Message, Workspace).join(Message)
            .join(Workspace, on=(Message.sender == Workspace.id), join_type=JOIN.LEFT_OUTER)
            .where(Delivery.recipient == ws.id))


def _delivery_view(d: Delivery, me: Workspace) -> MessageView:
    return message_view(d.message, sender_name(d.message), [me.alias], acked=d.acked_ts is not None)


def inbox(ws: Workspace, unread: bool = False, sender: str | None = None,
          limit: int = 50) -> list[MessageView]:
    """Mail and notices received, newest first."""
    query = _received(ws).where(Message.kind != "chat")
    if unread:
        query = query.where(Delivery.acked_ts.is_null())
    if sender:
        query = query.where(Workspace.alias == sender)
    return [_delivery_view(d, ws) for d in query.order_by(Message.id.desc()).limit(limit)]


def sent(ws: Workspace, limit: int = 50) -> list[MessageView]:
    messages = list(Message.select().where(Message.sender == ws.id, Message.kind == "mail")
                    .order_by(Message.id.desc()).limit(limit))
    return [message_view(m, ws.alias, _recipients(m)) for m in messages]


def _recipients(message: Message) -> list[str]:
    return [a for (a,) in Workspace.select(Workspace.alias)
            .join(Delivery, on=(Delivery.recipient == Workspace.id))
            .where(Delivery.message == message.id).tuples()]


def search(ws: Workspace, text: str, limit: int = 50) -> list[MessageView]:
    """Mail this workspace sent or received whose subject or body contains `text`."""
    needle = text.strip()
    if not needle:
        raise InvalidInput("search text is empty")
    mine = Delivery.select(Delivery.message).where(Delivery.recipient == ws.id)
    query = (Message.select().where(Message.project == ws.project_id, Message.kind == "mail",
                                    (Message.sender == ws.id) | Message.id.in_(mine),
                                    Message.subject.contains(needle) | Message.body.contains(needle))
             .order_by(Message.id.desc()).limit(limit))
    return [message_view(m, sender_name(m), _recipients(m)) for m in query]


def open_mail(st: Store, ws: Workspace, message_id: int | None = None,
              sender: str | None = None) -> list[MessageView]:
    """Show and acknowledge one message, every unread one from `sender`, or every unread one.

    Raises:
        NotFound: `message_id` was not addressed to this workspace.
    """
    query = _received(ws).where(Message.kind != "chat")
    if message_id is not None:
        query = query.where(Message.id == message_id)
    else:
        query = query.where(Delivery.acked_ts.is_null())
        if sender:
            query = query.where(Workspace.alias == sender)
    rows = list(query.order_by(Message.id))
    if message_id is not None and not rows:
        raise NotFound(f"no message {message_id} in your mailbox")
    shown = [_delivery_view(d, ws) for d in rows]
    ack_deliveries(st, ws, [d.id for d in rows if d.acked_ts is None])
    return shown


def ack_message(st: Store, ws: Workspace, message_id: int) -> Acked:
    """Acknowledge one message by id.

    Raises:
        NotFound: it was not addressed to this workspace.
    """
    row = Delivery.get_or_none(Delivery.message == message_id, Delivery.recipient == ws.id)
    if row is None:
        raise NotFound(f"no message {message_id} in your mailbox")
    ack_deliveries(st, ws, [row.id])
    return Acked(message_id, True)


def ack_deliveries(st: Store, ws: Workspace, delivery_ids: list[int]) -> None:
    """Record reads in SQL first (the truth), then drop the entries from the mailbox."""
    if not delivery_ids:
        return
    with db.transaction():
        queries.ack(delivery_ids, now())
    st.redis.ack(ws.project_id, ws.id, delivery_ids)


# -- the banner -------------------------------------------------------------------------------

def banner_item(fields: dict[str, str], entry: str | None = None) -> dict[str, Any]:
    """A mailbox entry as the banner shows it (short; the full text is one `wire mail open` away);
    `entry` is its stream id, which a client confirms back in `X-Wire-Seen` once shown."""
    data = json.loads(fields.get("data", "{}"))
    text = data.get("body", "")
    item = {"id": data.get("id"), "kind": fields.get("kind"), "from": data.get("from"),
            "subject": data.get("subject", "")[:DEFAULT_PREVIEW], "text": text[:DEFAULT_PREVIEW],
            "entry": entry}
    details = data.get("data") or {}
    if details.get("bead"):
        item["bead"] = details["bead"]
    if details.get("human"):
        item["human"] = True
    # `wire watch` says why it woke: `bd-12 is ready (you subscribed)`
    if details.get("event") == "bead.ready":
        item["event"], item["why"] = "bead.ready", details.get("why", "")
    return item


def banner(beat: Beat, now_ts: float) -> dict[str, Any] | None:
    """What the caller must know now, or None: who waits on it, new items (once), unread count."""
    if not (beat.waiting or beat.new or beat.pending):  # most calls of a quiet workspace: nothing built
        return None
    waiting = [{"alias": w["alias"], "seconds": int(now_ts - w["since"])} for w in beat.waiting]
    return {"waiting": waiting, "new": [banner_item(fields, entry) for entry, fields in beat.new],
            "unread": beat.pending}


def rebuild_mailboxes(st: Store, project_id: int) -> int:
    """Put every unread delivery of a project back into its mailbox (after Redis lost them).

    Publishing is deduplicated per outbox row, so entries still present are not added twice; each
    delivery is checked unread again right before it is published, so one acknowledged while the
    rebuild runs is not brought back.
    """
    started = now()
    unread = Delivery.select(Delivery.id).where(Delivery.project == project_id, Delivery.acked_ts.is_null())
    rows = (Outbox.select(Outbox.id, Outbox.delivery_id).where(Outbox.delivery_id.in_(unread))
            .order_by(Outbox.id))
    count = 0
    # read it all first: on SQLite a half-read SELECT keeps this connection on an old snapshot, and
    # the write transaction below then fails with "database is locked" once another process wrote
    for outbox_id, delivery_id in list(rows.tuples()):
        still_unread = Delivery.select().where(Delivery.id == delivery_id,
                                               Delivery.acked_ts.is_null()).exists()
        count += still_unread and outbox.deliver(st, outbox_id, force=True)
    st.redis.mark_rebuilt(project_id, started)  # only now: a rebuild that died is requested again
    return count


def remind_stuck(st: Store) -> int:
    """Sweep: show again, once, every mailbox entry left unread past `remind_after` (XAUTOCLAIM)."""
    idle_ms = st.settings.remind_after * 1000
    rows = Workspace.select(Workspace.id, Workspace.project).where(Workspace.revoked == False).tuples()
    return sum(st.redis.reclaim_stuck(project_id, ws_id, idle_ms) for ws_id, project_id in rows)
