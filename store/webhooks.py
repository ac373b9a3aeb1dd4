"""Project webhooks: where humans hear about escalations, and the posts made to them.

A post is a `WebhookDelivery` row committed with the fact that causes it. `attempt()` makes one
try; a failure moves the row's `next_ts` forward with exponential backoff, and the escalation sweep
re-enqueues due rows, so retries survive worker restarts and need no in-memory timer. Attempts
take a lease on the row first, so a duplicate enqueue never posts twice at once. Posts go out
through `store.egress`: public addresses only (unless `allow_private`), no redirects followed.
"""

from __future__ import annotations

import http.client
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from store import db, egress, outbox
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

log = logging.getLogger("beadwire.webhooks")

#: (url, JSON body, timeout) -> None; raises WebhookFailed. Tests may pass their own.
Poster = Callable[[str, bytes, float], None]


class WebhookFailed(Exception):
    """Raised by a poster when the receiver did not take the post (error status, refused, timeout)."""


# -- configuration ----------------------------------------------------------------------------

@dataclass
class WebhookView:
    """The project's webhook as the API shows it (web/schemas/escalations.py): None when unset."""

    url: str | None
    updated_at: str | None


@dataclass
class WebhookTestView:
    """The outcome of one test post."""

    url: str
    delivered: bool
    error: str | None


def webhook_view(project: Project) -> WebhookView:
    row = Webhook.get_or_none(Webhook.project == project.id)
    return WebhookView(row.url if row else None, iso(row.updated_ts) if row else None)


def set_url(project: Project, url: str | None, allow_private: bool = False) -> WebhookView:
    """Set (or with None remove) the project's webhook URL.

    A host that resolves only to refused addresses is refused now; one that does not resolve yet is
    kept (every post checks again, on the address it connects to).

    Raises:
        InvalidInput: not an http(s) URL, longer than MAX_URL, or its host is not public.
    """
    if url:
        check_target(url, allow_private)
    with db.transaction() as uow:
        if not url:
            Webhook.delete().where(Webhook.project == project.id).execute()
        else:
            Webhook.insert(project=project.id, url=url, updated_ts=now()).on_conflict(
                conflict_target=[Webhook.project],
                update={Webhook.url: url, Webhook.updated_ts: now()}).execute()
        outbox.record(uow, project.id, "webhook.changed", {"configured": bool(url)})
    return webhook_view(project)


def check_target(url: str, allow_private: bool) -> None:
    """Raises: InvalidInput: the URL may not be posted to (scheme, credentials, a non-public host)."""
    if len(url) > MAX_URL or not url.isprintable() or any(c.isspace() for c in url):
        raise InvalidInput("the webhook must be an http:// or https:// URL")
    try:
        parts = egress.check_url(url)
        try:
            addresses = egress.resolve(parts.hostname or "", parts.port or 443)
        except (OSError, UnicodeError):
            return  # not resolvable now: each post resolves and checks again
        egress.allowed(addresses, parts.hostname or "", allow_private)
    except egress.EgressRefused as exc:
        raise InvalidInput(f"the webhook URL is refused: {exc}") from None


# -- posts ------------------------------------------------------------------------------------

def enqueue(project_id: int, kind: str, text: str, escalation_id: int | None = None) -> int | None:
    """A post of `{"text": ...}` to the project's webhook, if it has one; call inside the transaction."""
    if not Webhook.select().where(Webhook.project == project_id).exists():
        return None
    ts = now()
    return WebhookDelivery.insert(project=project_id, escalation=escalation_id, kind=kind,
                                  payload=json.dumps({"text": text}), next_ts=ts, created_ts=ts).execute()


def try_test(project: Project, allow_private: bool = False, post: Poster | None = None) -> WebhookTestView:
    """Post a test message to the project's webhook once, now, and say what happened (nothing is
    queued or retried: the human asking wants the real outcome).

    Raises:
        Conflict: the project has no webhook.
    """
    hook = Webhook.get_or_none(Webhook.project == project.id)
    if hook is None:
        raise Conflict("no webhook configured: set one with `wire escalations webhook URL`")
    text = f"[{project.slug}] beadwire test: escalations will be announced here"
    try:
        (post or poster(allow_private))(hook.url, json.dumps({"text": text}).encode(), DEFAULT_TIMEOUT)
    except WebhookFailed as exc:
        return WebhookTestView(hook.url, False, str(exc))
    return WebhookTestView(hook.url, True, None)


def backoff(attempts: int) -> float:
    """Seconds to wait after the `attempts`-th failed try."""
    return min(DEFAULT_BACKOFF * 2 ** max(attempts - 1, 0), DEFAULT_MAX_BACKOFF)


def due(at: float | None = None, limit: int = 200) -> list[int]:
    """Ids of posts whose next attempt is due (the sweep enqueues them)."""
    query = (WebhookDelivery.select(WebhookDelivery.id)
             .where(WebhookDelivery.status == "pending", WebhookDelivery.next_ts <= (at or now()))
             .order_by(WebhookDelivery.next_ts).limit(limit))
    return [pk for (pk,) in query.tuples()]


def attempt(delivery_id: int, post: Poster | None = None, at: float | None = None,
            allow_private: bool = False) -> str:
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
        (post or poster(allow_private))(hook.url, row.payload.encode(), DEFAULT_TIMEOUT)
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
    with db.transaction() as uow:
        WebhookDelivery.update(status=status, last_error=error[:500],
                               delivered_ts=now() if status == "delivered" else None).where(
            WebhookDelivery.id == row.id).execute()
        if status == "failed":
            outbox.record(uow, row.project_id, "webhook.failed", {"delivery": row.id, "kind": row.kind,
                                                             "attempts": row.attempts, "error": error[:500]})
    return status


def delivery_json(row: WebhookDelivery) -> dict[str, Any]:
    return {"id": row.id, "kind": row.kind, "status": row.status, "attempts": row.attempts,
            "next_at": iso(row.next_ts), "last_error": row.last_error, "delivered_at": iso(row.delivered_ts)}


def poster(allow_private: bool) -> Poster:
    """The real poster: `http_post` with the deployment's choice about private addresses."""
    return lambda url, body, timeout: http_post(url, body, timeout, allow_private)


def http_post(url: str, body: bytes, timeout: float, allow_private: bool = False) -> None:
    """POST a JSON body to a public address (`store.egress`); any 2xx is success, a redirect is not
    followed (it fails like any other status).

    Raises:
        WebhookFailed: a refused address, another status, or the receiver could not be reached in time.
    """
    try:
        answer = egress.post_json(url, body, timeout, allow_private)
    except egress.EgressRefused as exc:
        raise WebhookFailed(f"refused: {exc}") from None
    except (OSError, ValueError, http.client.HTTPException) as exc:
        raise WebhookFailed(_reason(exc)) from None
    if 300 <= answer.status < 400:
        raise WebhookFailed(f"HTTP {answer.status}: redirects are not followed (give the final URL)")
    if not 200 <= answer.status < 300:
        raise WebhookFailed(f"HTTP {answer.status}")


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
