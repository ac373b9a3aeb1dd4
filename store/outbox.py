"""The transactional outbox: side effects recorded with the fact, delivered to Redis later."""

from __future__ import annotations

import json
import threading
from typing import Any

from store import Store, db
from store.models import Event, Outbox
from store.util import now

#: Seconds an undelivered outbox row waits before the sweep re-enqueues it.
DEFAULT_REDELIVER_AFTER = 10
#: Delivery attempts after which the sweep stops retrying a row (it stays for inspection).
DEFAULT_MAX_ATTEMPTS = 20


_local = threading.local()


def take_pending() -> list[tuple[int, bool]]:
    """(outbox id, urgent) recorded by this thread since the last call; send them once committed."""
    ids = getattr(_local, "ids", [])
    _local.ids = []
    return ids


def record(project_id: int, kind: str, payload: dict[str, Any], recipient_id: int | None = None,
           workspace_id: int | None = None, bead_ref: str = "", delivery_id: int | None = None,
           to_events: bool = True, audit: bool = True, urgent: bool = False) -> int:
    """Add an outbox row (and an audit event); call inside the transaction of the fact itself.

    `urgent` rows are published by the request itself right after commit (chat: the waiter is
    blocked on it); the others go through the delivery actor.
    """
    ts = now()
    body = json.dumps({**payload, "ts": ts})
    if audit:
        Event.create(project=project_id, kind=kind, workspace_id=workspace_id, bead_ref=bead_ref,
                     data=body, created_ts=ts)
    outbox_id = Outbox.insert(project=project_id, kind=kind, recipient_id=recipient_id, payload=body,
                              created_ts=ts, delivery_id=delivery_id, to_events=to_events).execute()
    _local.ids = [*getattr(_local, "ids", []), (outbox_id, urgent)]
    return outbox_id


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
        Outbox.update(delivered_ts=now(), attempts=Outbox.attempts + 1).where(Outbox.id == outbox_id).execute()
    return delivered


def pending(older_than: float = DEFAULT_REDELIVER_AFTER, limit: int = 500) -> list[int]:
    """Undelivered rows due for another try, each try counted (the redelivery sweep's input).

    A row is first retried `older_than` seconds after it was written, then with exponential
    backoff: try n waits `older_than * 2**n`, so a row Redis keeps refusing is not hammered.
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
