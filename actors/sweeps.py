"""Periodic sweeps: presence expiry, stale claims, holders idle with a claim, stuck mailbox entries,
history retention, reservation expiry.

Each is idempotent; a short Redis lease (one per period) keeps several workers from doing the
same pass at once, and the SQL updates they make are conditional anyway.
"""

from __future__ import annotations

from actors.middleware import actor, get_store
from store import claims, gitstate, messages, outbox, reservations, retention, workspaces


def _leased(name: str, seconds: int) -> bool:
    return get_store().redis.try_lock(name, seconds)


@actor(max_retries=0)
def expire_presence() -> None:
    """Drop presence entries older than the presence TTL."""
    if _leased("presence", 30):
        workspaces.expire_presence(get_store())


@actor(max_retries=0)
def reap_stale_claims() -> None:
    """Mark claims of long-gone holders stale and tell their team once."""
    if _leased("stale-claims", 30):
        claims.mark_stale_claims(get_store())
        outbox.publish_pending(get_store())


@actor(max_retries=0)
def notice_idle_claims() -> None:
    """Tell the coordinators, once per idle spell, of holders idle with a claim (store/gitstate.py)."""
    if _leased("idle-claims", 30):
        gitstate.notice_idle_claims(get_store())


@actor(max_retries=0)
def remind_stuck_mail() -> None:
    """Show again, once, mailbox entries left unread too long (XAUTOCLAIM)."""
    if _leased("remind", 120):
        messages.remind_stuck(get_store())


@actor(max_retries=0, time_limit=30 * 60 * 1000)
def purge_history() -> None:
    """Delete history older than the retention window (read messages, audit events, outbox)."""
    if _leased("retention", 3000):
        retention.purge_history(get_store())


@actor(max_retries=0)
def expire_reservations() -> None:
    """Drop file reservations past their lease and emit `reservation.expired` for each (reads hide
    them at once already; this tells the project's event stream and frees Redis)."""
    if _leased("reservations", 10):
        reservations.expire(get_store())
        outbox.publish_pending(get_store())  # now, not at the next redelivery sweep
