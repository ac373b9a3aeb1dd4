"""The transactional outbox: side effects recorded with the fact, delivered to Redis after commit.

Delivery has a fast path and a guarantee. The request that committed a row publishes it right
away from memory (`publish_committed`), so mail and chat reach mailboxes in milliseconds without
a queue hop. Whatever that misses (Redis down, process killed between commit and publish) the
delivery actor and the redelivery sweep publish later; the sweep also records in SQL, in batches,
that rows were delivered. Publishing is idempotent per outbox id (publish.lua), so the paths
can overlap freely.
"""

from __future__ import annotations

import json
from typing import Any

from store import Store, db, queries, unit
from store import audit as audit_log
from store.errors import Unavailable
from store.models import Outbox
from store.unit import UnitOfWork
from store.util import now

#: Seconds an undelivered outbox row waits before the sweep re-enqueues it.
DEFAULT_REDELIVER_AFTER = 10
#: Delivery attempts after which the sweep stops retrying a row (it stays for inspection).
DEFAULT_MAX_ATTEMPTS = 20




def publish_pending(st: Store, cursor_of: tuple[int, int] | None = None) -> str | None:
    """Publish what the transactions of this request or message committed (store/unit.py `Scope`):
    actors and sweeps after their work, chat right after its post.

    With `cursor_of` (project id, workspace id) it also returns that mailbox's cursor, read in the
    same round trip just before the rows land ("0-0" when Redis could not be asked).
    """
    _, cursor = _publish(st, unit.scope().take(), cursor_of)
    return cursor if cursor is not None or cursor_of is None else "0-0"


def record(uow: UnitOfWork, project_id: int, kind: str, payload: dict[str, Any],
           recipient_id: int | None = None, workspace_id: int | None = None, bead_ref: str = "",
           delivery_id: int | None = None, to_events: bool = True, audit: bool = True) -> int:
    """Add an outbox row (and an event, and an audit row naming who acts) to `uow`, the transaction
    of the fact itself: it is published once that commits, never if it rolls back. Every durable
    change passes here: this is where the audit log is written, so it is complete and commits or
    rolls back with the change (store/audit.py)."""
    ts = now()
    body = json.dumps({**payload, "ts": ts})
    if audit:
        queries.insert_event(project_id, kind, workspace_id, bead_ref, body, ts)
        audit_log.record(uow, project_id, kind, bead_ref, payload)
    outbox_id = queries.insert_outbox(project_id, kind, recipient_id, delivery_id, to_events, body, ts)
    row = {"id": outbox_id, "project": project_id, "kind": kind, "payload": body, "recipient": recipient_id,
           "delivery": delivery_id, "to_events": to_events}
    uow.rows.append(row)
    return outbox_id


def publish_committed(st: Store, rows: list[dict[str, Any]]) -> list[int]:
    """The fast path: publish rows a request committed (`Scope.take`), from memory; returns the ids
    it could not."""
    return _publish(st, rows)[0]


def _publish(st: Store, rows: list[dict[str, Any]],
             cursor_of: tuple[int, int] | None = None) -> tuple[list[int], str | None]:
    """The ids not published, and the cursor `cursor_of` asked for (read in the same round trip)."""
    if cursor_of is None:
        failed = []
        for row in rows:
            try:
                st.redis.publish(row["project"], row["id"], row["kind"], row["payload"], row["recipient"],
                                 row["delivery"], row["to_events"])
            except Unavailable:
                failed.append(row["id"])
        return failed, None
    calls = [(row["project"], row["id"], row["kind"], row["payload"], row["recipient"], row["delivery"],
              row["to_events"]) for row in rows]
    try:
        cursor, done = st.redis.publish_many(calls, cursor_of)
    except Unavailable:
        return [row["id"] for row in rows], None
    return [row["id"] for row, ok in zip(rows, done) if ok is None], cursor


def deliver(st: Store, outbox_id: int, force: bool = False) -> bool:
    """Publish one outbox row into Redis once; True when this call delivered it.

    `force` publishes rows already marked delivered (rebuilding mailboxes Redis lost); the
    publish itself still deduplicates on the outbox id.

    Raises:
        Unavailable: Redis is down (the actor retries).
    """
    row = Outbox.get_or_none(Outbox.id == outbox_id)
    if row is None or (row.delivered_ts is not None and not force):
        return False
    delivered = st.redis.publish(row.project_id, row.id, row.kind, row.payload, row.recipient_id,
                                 row.delivery_id, row.to_events)
    with db.transaction():
        Outbox.update(delivered_ts=now(), attempts=Outbox.attempts + 1).where(
            Outbox.id == outbox_id).execute()
    return delivered


def pending(older_than: float = DEFAULT_REDELIVER_AFTER, limit: int = 500) -> list[int]:
    """Undelivered rows due for another try, each try counted (the redelivery sweep's input).

    A row is first retried `older_than` seconds after it was written, then with exponential
    backoff: try n waits until the row is `older_than * 2**n` old, so a row Redis keeps refusing
    is not hammered.
    """
    ts = now()
    rows = (Outbox.select(Outbox.id, Outbox.created_ts, Outbox.attempts)
            .where(Outbox.delivered_ts.is_null(), Outbox.created_ts < ts - older_than,
                   Outbox.attempts < DEFAULT_MAX_ATTEMPTS)
            .order_by(Outbox.id).limit(limit).tuples())
    due = [pk for pk, created, tries in rows if ts >= created + older_than * 2 ** min(tries, 20)]
    if due:
        with db.transaction():
            Outbox.update(attempts=Outbox.attempts + 1).where(Outbox.id.in_(due)).execute()
    return due


def redeliver(st: Store, outbox_ids: list[int]) -> int:
    """Publish rows (deduplicated: those the fast path sent are no-ops) and mark them delivered
    in one statement. Returns how many were published by this call.

    Most rows were published by their request already, so each project's rows go in one pipelined
    round trip rather than one call each: the sweep's cost stays small under heavy mail.

    Raises:
        Unavailable: Redis is down (nothing is marked; the next sweep tries again).
    """
    rows = list(Outbox.select().where(Outbox.id.in_(outbox_ids), Outbox.delivered_ts.is_null()))
    by_project: dict[int, list[Outbox]] = {}
    for r in rows:
        by_project.setdefault(r.project_id, []).append(r)
    sent, delivered = 0, []
    for group in by_project.values():
        _, done = st.redis.publish_many([(r.project_id, r.id, r.kind, r.payload, r.recipient_id,
                                          r.delivery_id, r.to_events) for r in group])
        sent += sum(1 for ok in done if ok)
        delivered += [r.id for r, ok in zip(group, done) if ok is not None]
    if delivered:
        with db.transaction():
            Outbox.update(delivered_ts=now()).where(Outbox.id.in_(delivered)).execute()
    return sent
