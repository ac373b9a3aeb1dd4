"""Escalations: webhook posts to the humans (retried with backoff) and the expiry sweep."""

from __future__ import annotations

from actors.middleware import actor, get_store
from store import escalations, outbox, webhooks


@actor(max_retries=0)
def deliver_webhook(post_id: int) -> None:
    """Make one attempt at a webhook post. A failure sets the row's next attempt with backoff in
    SQL, where the sweep finds it again: retries survive restarts, and a duplicate is a no-op."""
    webhooks.attempt(post_id, allow_private=get_store().settings.webhook_allow_private)
    _send_outbox()  # `webhook.failed` when it gave up


@actor(max_retries=0)
def sweep_escalations() -> None:
    """Re-announce (once) and expire pending escalations, then enqueue the webhook posts now due.

    A short lease keeps several workers from sweeping at once (the updates are conditional anyway).
    """
    if not get_store().redis.try_lock("escalations", 5):
        return
    escalations.sweep()
    _send_outbox()
    for post_id in webhooks.due():
        deliver_webhook.send(post_id)


def _send_outbox() -> None:
    """Publish what this message committed now, rather than at the next redelivery sweep."""
    outbox.publish_pending(get_store())
