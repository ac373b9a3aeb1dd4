"""`Idempotency-Key` on writes: every view is wrapped so a keyed POST/PUT/PATCH/DELETE is applied at
most once and its repeats get the first answer (store/requests.py; docs/API.md, "Request ids").

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
#: Set on an answer that is a stored one (the request was not applied again).
REPLAYED_HEADER = "Idempotent-Replayed"
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

log = logging.getLogger("beadwire.web")


def init_app(app: Flask) -> None:
    """Wrap every view, those registered before and after this call alike."""
    app.view_functions = _KeyedViews(app.view_functions)
    app.after_request(_record)


class _KeyedViews(dict):
    """`app.view_functions` that wraps each view as it is registered: no per-request cost, and no
    ordering rule for `create_app` to keep."""

    def __init__(self, views: dict[str, Callable[..., Any]]) -> None:
        super().__init__()
        for endpoint, view in views.items():
            self[endpoint] = view

    def __setitem__(self, endpoint: str, view: Callable[..., Any]) -> None:
        super().__setitem__(endpoint, view if endpoint == "static" else _keyed(view))

    def get(self, endpoint: str, default: Any = None) -> Any:
        """The view as registered: Flask compares it when one function serves several rules."""
        view = super().get(endpoint, default)
        return view.__wrapped__ if getattr(view, "keyed", False) else view


def _keyed(view: Callable[..., Any]) -> Callable[..., Any]:
    if getattr(view, "keyed", False):
        return view

    @functools.wraps(view)
    def keyed_view(**kwargs: Any) -> Any:
        key = request.headers.get(HEADER)
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
