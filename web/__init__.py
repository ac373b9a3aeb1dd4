"""The Flask app factory: the only place the web app is wired."""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING

from flask import Flask, current_app

if TYPE_CHECKING:  # imported in create_app: gunicorn's master imports this package for web.worker, and
    # `store` pulls in redis-py and ssl, which gevent must patch first (in the worker, after the fork)
    from store.config import Settings

#: Seconds a thread may hold the GIL while others wait for it (Python's default is 0.005). A request
#: holding the SQLite write lock needs the GIL back after each statement; with 32 threads per worker
#: it waited up to 5 ms for it while every other writer waited on the lock. 1 ms gave c=8 claims
#: ~17% more throughput in interleaved runs (bench/README.md).
GIL_SWITCH_INTERVAL = 0.001


def create_app(settings: Settings | None = None, redis_client: object | None = None) -> Flask:
    """Build the app for `settings` (default: from the environment)."""
    from store import db, open_store
    from store.config import Settings
    from web import (beads, chat, errors, escalations, handoffs, humans, identity, joinkeys, llms, locks, mail,
                     policies, project, steer, sync)
    from web.common import add_banner, audit_request, identify, reset_actor
    from web.keys import bp as keys_bp
    from web.openapi import bp as openapi_bp

    settings = settings or Settings.from_env()
    sys.setswitchinterval(GIL_SWITCH_INTERVAL)
    from store import logs

    logs.configure(settings, "web", replace_kind=True)
    app = Flask(__name__)
    from web.common import IdConverter

    app.url_map.converters["int"] = IdConverter  # before any route is added
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body
    from web.json_provider import FastJSONProvider

    app.json = FastJSONProvider(app)
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.extensions["beadwire"] = open_store(settings, redis_client)
    errors.init_app(app)
    from web import metrics

    metrics.init_app(app)  # first: its timing hooks then wrap every other hook
    for blueprint in (identity.bp, identity.team_bp, beads.bp, sync.bp, mail.bp, chat.bp, locks.bp):
        app.register_blueprint(blueprint)
    for blueprint in (escalations.bp, escalations.read_bp, escalations.admin_bp, policies.read_bp,
                      policies.admin_bp, handoffs.bp, project.bp, steer.bp, keys_bp, humans.bp, humans.invite_bp,
                      openapi_bp, joinkeys.bp, llms.bp):
        app.register_blueprint(blueprint)
    from web import idempotency

    idempotency.init_app(app)  # `Idempotency-Key` on every write route, those added later too
    from web import dashboard

    dashboard.init_app(app)  # the human dashboard (`/`), its link API and the `/v1/ws` event feed

    @app.before_request
    def _connect() -> None:
        db.connect()
        reset_actor()

    @app.after_request
    def _deliver(response):
        _send_outbox(response.status_code)
        return identify(add_banner(audit_request(response)))

    @app.teardown_request
    def _close(exc: BaseException | None) -> None:
        from store.outbox import take_rows

        take_rows()  # a failed request leaves nothing to send
        db.close()

    return app


def _send_outbox(status: int) -> None:
    """Publish what this request committed; hand what could not be published (or, with
    `publish_inline` off, everything) to the delivery actor."""
    from store.outbox import publish_committed, take_rows

    rows = take_rows()
    if not rows or status >= 400:
        return
    st = current_app.extensions["beadwire"]
    failed = publish_committed(st, rows) if st.settings.publish_inline else [row["id"] for row in rows]
    if failed:
        from actors.outbox import deliver_outbox

        for outbox_id in failed:
            try:
                deliver_outbox.send(outbox_id)
            except Exception:  # noqa: BLE001 - committed all the same: the redelivery sweep sends it
                logging.getLogger("beadwire.web").warning("outbox %s waits for the sweep", outbox_id)
