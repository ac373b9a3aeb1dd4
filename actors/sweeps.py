"""TTL sweeps: presence expiry and stale claims. Each is idempotent and safe to run twice."""

from __future__ import annotations

import dramatiq

from actors.middleware import get_store
from store import claims, workspaces


@dramatiq.actor(max_retries=0)
def expire_presence() -> None:
    """Drop presence entries older than the presence TTL."""
    workspaces.expire_presence(get_store())


@dramatiq.actor(max_retries=0)
def reap_stale_claims() -> None:
    """Mark claims of long-gone holders stale and tell the team once."""
    claims.mark_stale_claims(get_store())
