"""`Idempotency-Key` on writes: every write route is marked `@idempotent`, so a keyed POST/PUT/PATCH/DELETE
is applied at most once and its repeats get the first answer (store/requests.py; docs/API.md, "Request ids").

A request without the header, or a read, goes straight to its view: no lookup, no extra write.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from flask import Flask, Response, g, request

from store import requests
from store.errors import RequestInProgress

HEADER = "Idempotency-Key"
#: The header as the WSGI environ names it (what `request.headers.get(HEADER)` looks up; a missing
#: header there costs a KeyError raised and caught, on every write without a key)
HEADER_ENVIRON = "HTTP_IDEMPOTENCY_KEY"
#: Set on an answer that is a stored one (the request was not applied again).
REPLAYED_HEADER = "Idempotent-Replayed"
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

log = logging.getLogger("beadwire.web")


def init_app(app: Flask) -> None:
    """Store the answers of keyed requests (the routes themselves are marked `@idempotent`)."""
    app.after_request(_record)


def idempotent(view: Callable[..., Any]) -> Callable[..., Any]:
    """Mark a write route: a request carrying an `Idempotency-Key` is applied at most once, and its
    repeats get the first answer. Put it below the route decorator, on every route that writes."""

    @functools.wraps(view)
    def keyed_view(**kwargs: Any) -> Any:
        key = request.environ.get(HEADER_ENVIRON)
        # unauthenticated routes (`/v1/init`) have no caller to scope a key to: they ignore it
        if key is None or request.method not in WRITE_METHODS or g.get("project") is None:
            return view(**kwargs)
        ws = g.get("ws")
        pending = requests.Pending(g.project.id, ws.id if ws is not None else 0, requests.check_key(key),
                                   requests.fingerprint(request.method, request.path, request.query_string,
                                                        request.get_data(cache=True)),
                                   requests.legacy_fingerprint(request.method, request.path))
        stored = requests.lookup(pending)
        if stored is not None:
            return _replay(stored)
        try:
            with requests.keyed(pending):
                return view(**kwargs)
        except RequestInProgress:
            # the same request committed while this one ran (ours rolled back): answer like it
            stored = requests.lookup(pending)
            if stored is None:
                raise
            return _replay(stored)
        finally:
            g.request_key = pending

    keyed_view.keyed = True  # type: ignore[attr-defined]
    return keyed_view


def _replay(stored: requests.Answer) -> Response:
    response = Response(stored.body, status=stored.status, mimetype="application/json")
    response.headers[REPLAYED_HEADER] = "true"
    return response


def _record(response: Response) -> Response:
    """after_request: store the answer of a keyed request whose fact committed (error answers too)."""
    pending = g.pop("request_key", None)
    if pending is not None and pending.committed and REPLAYED_HEADER not in response.headers:
        try:
            requests.record(pending, response.status_code, response.get_data(as_text=True))
        except Exception:  # the fact is committed; a repeat then answers already_applied
            log.exception("could not record the answer of request %s", pending.key)
    return response
