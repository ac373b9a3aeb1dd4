"""Outbox delivery: committed side effects go into the project event stream and mailboxes."""

from __future__ import annotations

from actors.middleware import actor, get_store
from store import outbox


@actor(max_retries=10, min_backoff=200, max_backoff=60_000)
def deliver_outbox(outbox_id: int) -> None:
    """Publish one outbox row; a retry after a crash is harmless (publish.lua deduplicates)."""
    outbox.deliver(get_store(), outbox_id)


@actor(max_retries=0)
def redeliver_pending() -> None:
    """Sweep: publish rows the request did not (Redis was down, process died) and record, in
    batches, that rows were delivered."""
    while due := outbox.pending():
        outbox.redeliver(get_store(), due)
