"""Mailbox maintenance: rebuild from SQL what Redis lost."""

from __future__ import annotations

import dramatiq

from actors.middleware import get_store
from store import messages


@dramatiq.actor(max_retries=5, min_backoff=500)
def rebuild_mailboxes(project_id: int) -> None:
    """Re-deliver every unread message of a project (Redis was flushed, replaced, or is new)."""
    messages.rebuild_mailboxes(get_store(), project_id)
