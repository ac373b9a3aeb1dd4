"""History retention: what is older than the retention window and no longer needed goes."""

from __future__ import annotations

from peewee import ModelCompoundSelectQuery, fn

from store import Store, audit, db, joinkeys, requests, sync_history
from store.models import Delivery, Event, Handoff, Message, Outbox, Row
from store.util import now

#: Rows deleted per statement, so a first purge of a large history does not hold the lock long.
DEFAULT_PURGE_BATCH = 5_000


def purge_history(st: Store) -> dict[str, int]:
    """Delete audit events, delivered outbox rows, fully read messages and old handoffs past the window
    (and join keys once used or expired).

    Unread messages and undelivered outbox rows are kept whatever their age: nothing
    acknowledged-but-unread is ever lost to retention.
    """
    cutoff = now() - st.settings.retention_days * 86400
    unread = Delivery.select(Delivery.message).where(Delivery.acked_ts.is_null())
    return {
        "events": _purge(Event, Event.created_ts < cutoff),
        "outbox": _purge(Outbox, Outbox.delivered_ts.is_null(False) & (Outbox.created_ts < cutoff)),
        "messages": _purge(Message, (Message.created_ts < cutoff) & Message.id.not_in(unread)),
        "requests": requests.purge(DEFAULT_PURGE_BATCH),  # request ids: their own, shorter window
        "handoffs": _purge(Handoff, (Handoff.created_ts < cutoff) & Handoff.id.not_in(_latest_handoffs())),
        # what syncs replaced, for `wire sync --undo`: their own, shorter window
        "syncs": sync_history.purge(now() - st.settings.sync_history_days * 86400),
        "join_keys": joinkeys.purge(),  # used or expired: good for nothing, whatever the window
        # the audit log: its own, longer window (a year by default); nothing else ever deletes a row
        "audit": audit.purge(now() - st.settings.audit_days * 86400, DEFAULT_PURGE_BATCH),
    }


def _latest_handoffs() -> ModelCompoundSelectQuery:
    """The newest note each workspace left for its own next run, and the newest each was left by
    another: kept whatever their age, since a workspace may start its next run months later and
    `wire prime` shows that note first (store/handoffs.py `latest`)."""
    by_author = Handoff.select(fn.MAX(Handoff.id)).where(Handoff.to_workspace.is_null()).group_by(
        Handoff.workspace)
    to_taker = Handoff.select(fn.MAX(Handoff.id)).where(Handoff.to_workspace.is_null(False)).group_by(
        Handoff.to_workspace)
    return by_author | to_taker


def _purge(model: type[Row], condition: object) -> int:
    total = 0
    while True:
        batch = model.select(model.id).where(condition).limit(DEFAULT_PURGE_BATCH)
        with db.transaction():
            deleted = model.delete().where(model.id.in_(batch)).execute()
        total += deleted
        if deleted < DEFAULT_PURGE_BATCH:
            return total
