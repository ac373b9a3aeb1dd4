"""The Flask app factory: the only place the web app is wired (`web.create_app` imports it late)."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from typing import Any

from flask import Flask, Request, Response

import actors
from actors.outbox import deliver_outbox
from store import Store, db, logs, open_store, unit
from store.config import Settings
from store.outbox import publish_committed
from web import (
    beads,
    chat,
    dashboard,
    errors,
    escalations,
    handoffs,
    humans,
    idempotency,
    identity,
    joinkeys,
    llms,
    locks,
    mail,
    metrics,
    policies,
    project,
    steer,
    sync,
)
from web.common import IdConverter, add_banner, audit_request, identify, reset_actor
from web.json_provider import FastJSONProvider
from web.keys import bp as keys_bp
from web.openapi import bp as openapi_bp
from web.routing import Rule

log = logging.getLogger("beadwire.web")


class App(Flask):
    """Flask, with a cheaper answer to "is this view or hook a coroutine?", which Flask asks (through
    `inspect.iscoroutinefunction`, ~1.5 us) of each of the ~8 hooks and the view of every request."""

    def ensure_sync(self, func: Callable[..., Any]) -> Callable[..., Any]:
        code = getattr(func, "__code__", None)
        if code is not None and not code.co_flags & inspect.CO_COROUTINE:
            return func  # a plain function or method (`async def` sets CO_COROUTINE)
        return super().ensure_sync(func)


def _request_class(max_body: int) -> type[Request]:
    """Flask's request with this app's body limit set up front. Flask's `max_content_length` (3.1)
    otherwise reads `current_app.config` through the app proxy each time (a failed attribute lookup,
    then `__getattr__`: ~0.6 us; twice for a request with a body); its value is the same one."""
    return type("Request", (Request,), {"_max_content_length": max_body})


def create_app(settings: Settings | None = None, redis_client: object | None = None) -> Flask:
    """Build the app for `settings` (default: from the environment)."""
    settings = settings or Settings.from_env()
    logs.configure(settings, "web", replace_kind=True)
    app = App("web")
    app.url_rule_class = Rule  # URL builders compiled once per process (web/routing.py)
    app.url_map.converters["int"] = IdConverter  # before any route is added
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body
    app.request_class = _request_class(settings.max_body)
    app.json = FastJSONProvider(app)
    app.json.sort_keys = False
    st = app.extensions["beadwire"] = open_store(settings, redis_client)
    st.broker = actors.configure(settings, st)  # the app enqueues deliveries and rebuilds on it
    errors.init_app(app)
    metrics.init_app(app)  # first: its timing hooks then wrap every other hook
    for blueprint in (identity.bp, identity.team_bp, beads.bp, sync.bp, mail.bp, chat.bp, locks.bp):
        app.register_blueprint(blueprint)
    for blueprint in (escalations.bp, escalations.read_bp, escalations.admin_bp, policies.read_bp,
                      policies.admin_bp, handoffs.bp, project.bp, steer.bp, keys_bp, humans.bp,
                      humans.invite_bp, openapi_bp, joinkeys.bp, llms.bp):
        app.register_blueprint(blueprint)
    idempotency.init_app(app)  # stores the answers of the `@idempotent` write routes
    dashboard.init_app(app)  # the human dashboard (`/`), its link API and the `/v1/ws` event feed

    @app.before_request
    def _connect() -> None:
        unit.open_scope()  # this request's work: nothing of the previous request's on this thread
        db.connect()
        reset_actor()

    @app.after_request
    def _deliver(response: Response) -> Response:
        _send_outbox(st, unit.scope().take(), response.status_code)
        return identify(add_banner(audit_request(response)))

    @app.teardown_request
    def _close(exc: BaseException | None) -> None:
        unit.open_scope()  # a failed request leaves nothing to send
        db.close()

    return app


def _send_outbox(st: Store, rows: list[unit.Row], status: int) -> None:
    """Publish what this request committed; hand what could not be published (or, with
    `publish_inline` off, everything) to the delivery actor."""
    if not rows or status >= 400:
        return
    failed = publish_committed(st, rows) if st.settings.publish_inline else [row["id"] for row in rows]
    for outbox_id in failed:
        try:
            deliver_outbox.send(outbox_id)
        except Exception:  # noqa: BLE001 - committed all the same: the redelivery sweep sends it
            log.warning("outbox %s waits for the sweep", outbox_id)
