"""Mailbox maintenance: rebuild from SQL what Redis lost."""

from __future__ import annotations

from actors.middleware import actor, get_store
from store import messages


@actor(max_retries=5, min_backoff=500)
def rebuild_mailboxes(project_id: int) -> None:
    """Re-deliver every unread message of a project (Redis was flushed, replaced, or is new)."""
    messages.rebuild_mailboxes(get_store(), project_id)
