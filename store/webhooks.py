"""Project webhooks: where humans hear about escalations, and the posts made to them.

A post is a `WebhookDelivery` row committed with the fact that causes it. `attempt()` makes one
try; a failure moves the row's `next_ts` forward with exponential backoff, and the escalation sweep
re-enqueues due rows, so retries survive worker restarts and need no in-memory timer. Attempts
take a lease on the row first, so a duplicate enqueue never posts twice at once.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from typing import Any

from store import db, outbox
from store.errors import Conflict, InvalidInput
from store.models import Project, Webhook, WebhookDelivery
from store.util import iso, now

#: Seconds a webhook receiver may take to answer.
DEFAULT_TIMEOUT = 10.0
#: Seconds before the first retry; each further retry waits twice as long.
DEFAULT_BACKOFF = 10.0
#: Longest wait between two retries.
DEFAULT_MAX_BACKOFF = 900.0
#: Attempts after which a post is given up (`failed`, and a `webhook.failed` event).
DEFAULT_MAX_ATTEMPTS = 8
#: Seconds an attempt holds its row; another attempt of the same row waits at least this long.
DEFAULT_LEASE = 60.0
MAX_URL = 2000
_URL_RE = re.compile(r"^https?://[^\s/?#]+[^\s]*$", re.IGNORECASE)

log = logging.getLogger("beadwire.webhooks")

#: (url, JSON body, timeout) -> None; raises WebhookFailed. Tests may pass their own.
Poster = Callable[[str, bytes, float], None]


class WebhookFailed(Exception):
    """Raised by a poster when the receiver did not take the post (error status, refused, timeout)."""


# -- configuration ----------------------------------------------------------------------------

def webhook_json(project: Project) -> dict[str, Any]:
    row = Webhook.get_or_none(Webhook.project == project.id)
    return {"url": row.url if row else None, "updated_at": iso(row.updated_ts) if row else None}


def set_url(project: Project, url: str | None) -> dict[str, Any]:
    """Set (or with None remove) the project's webhook URL.

    Raises:
        InvalidInput: not an http(s) URL, or longer than MAX_URL.
    """
    with db.transaction():
        if not url:
            Webhook.delete().where(Webhook.project == project.id).execute()
        else:
            if len(url) > MAX_URL or not _URL_RE.match(url):
                raise InvalidInput("the webhook must be an http:// or https:// URL")
            Webhook.insert(project=project.id, url=url, updated_ts=now()).on_conflict(
                conflict_target=[Webhook.project], update={Webhook.url: url, Webhook.updated_ts: now()}).execute()
        outbox.record(project.id, "webhook.changed", {"configured": bool(url)})
    return webhook_json(project)


# -- posts ------------------------------------------------------------------------------------

def enqueue(project_id: int, kind: str, text: str, escalation_id: int | None = None) -> int | None:
    """A post of `{"text": ...}` to the project's webhook, if it has one; call inside the transaction."""
    if not Webhook.select().where(Webhook.project == project_id).exists():
        return None
    ts = now()
    return WebhookDelivery.insert(project=project_id, escalation=escalation_id, kind=kind,
                                  payload=json.dumps({"text": text}), next_ts=ts, created_ts=ts).execute()


def enqueue_test(project: Project) -> int:
    """A test post to the project's webhook.

    Raises:
        Conflict: the project has no webhook.
    """
    with db.transaction():
        post = enqueue(project.id, "webhook.test", f"[{project.slug}] beadwire test: escalations will be "
                                                   "announced here")
    if post is None:
        raise Conflict("no webhook configured: set one with `wire escalations webhook URL`")
    return post


def backoff(attempts: int) -> float:
    """Seconds to wait after the `attempts`-th failed try."""
    return min(DEFAULT_BACKOFF * 2 ** max(attempts - 1, 0), DEFAULT_MAX_BACKOFF)


def due(at: float | None = None, limit: int = 200) -> list[int]:
    """Ids of posts whose next attempt is due (the sweep enqueues them)."""
    query = (WebhookDelivery.select(WebhookDelivery.id)
             .where(WebhookDelivery.status == "pending", WebhookDelivery.next_ts <= (at or now()))
             .order_by(WebhookDelivery.next_ts).limit(limit))
    return [pk for (pk,) in query.tuples()]


def attempt(delivery_id: int, post: Poster | None = None, at: float | None = None) -> str:
    """Try one post now; returns `delivered`, `retry`, `failed`, `dropped` or `skipped` (not due/held)."""
    ts = at or now()
    with db.transaction():
        # the lease: only one attempt at a time, and only when due
        taken = (WebhookDelivery.update(next_ts=ts + DEFAULT_LEASE, attempts=WebhookDelivery.attempts + 1)
                 .where(WebhookDelivery.id == delivery_id, WebhookDelivery.status == "pending",
                        WebhookDelivery.next_ts <= ts).execute())
    if not taken:
        return "skipped"
    row = WebhookDelivery.get_by_id(delivery_id)
    hook = Webhook.get_or_none(Webhook.project == row.project_id)
    if hook is None:  # removed since: nobody to tell
        return _finish(row, "dropped", "no webhook configured")
    try:
        (post or http_post)(hook.url, row.payload.encode(), DEFAULT_TIMEOUT)
    except WebhookFailed as exc:
        log.warning("webhook post %s failed (attempt %s): %s", row.id, row.attempts, exc)
        if row.attempts >= DEFAULT_MAX_ATTEMPTS:
            return _finish(row, "failed", str(exc))
        with db.transaction():
            WebhookDelivery.update(next_ts=now() + backoff(row.attempts), last_error=str(exc)[:500]).where(
                WebhookDelivery.id == row.id).execute()
        return "retry"
    return _finish(row, "delivered", "")


def _finish(row: WebhookDelivery, status: str, error: str) -> str:
    with db.transaction():
        WebhookDelivery.update(status=status, last_error=error[:500],
                               delivered_ts=now() if status == "delivered" else None).where(
            WebhookDelivery.id == row.id).execute()
        if status == "failed":
            outbox.record(row.project_id, "webhook.failed", {"delivery": row.id, "kind": row.kind,
                                                             "attempts": row.attempts, "error": error[:500]})
    return status


def delivery_json(row: WebhookDelivery) -> dict[str, Any]:
    return {"id": row.id, "kind": row.kind, "status": row.status, "attempts": row.attempts,
            "next_at": iso(row.next_ts), "last_error": row.last_error, "delivered_at": iso(row.delivered_ts)}


def http_post(url: str, body: bytes, timeout: float) -> None:
    """POST a JSON body; any 2xx is success.

    Raises:
        WebhookFailed: another status, or the receiver could not be reached in time.
    """
    import http.client
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": "application/json", "User-Agent": "beadwire"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        exc.close()  # it holds the answer's socket
        raise WebhookFailed(f"HTTP {exc.code}") from None
    except (OSError, ValueError, http.client.HTTPException) as exc:
        raise WebhookFailed(str(getattr(exc, "reason", exc)) or type(exc).__name__) from None
    if not 200 <= status < 300:
        raise WebhookFailed(f"HTTP {status}")
