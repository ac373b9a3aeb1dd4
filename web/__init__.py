"""The Flask app factory: the only place the web app is wired."""

from __future__ import annotations

import logging

from flask import Flask

from store.config import Settings


def create_app(settings: Settings | None = None, redis_client: object | None = None) -> Flask:
    """Build the app for `settings` (default: from the environment)."""
    from store import db, open_store
    from web import beads, errors, identity, sync

    settings = settings or Settings.from_env()
    logging.basicConfig(level=settings.log_level)
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.extensions["beadwire"] = open_store(settings, redis_client)
    errors.init_app(app)
    for blueprint in (identity.bp, identity.team_bp, beads.bp, sync.bp):
        app.register_blueprint(blueprint)

    @app.before_request
    def _connect() -> None:
        db.connect()

    @app.after_request
    def _deliver(response):
        _send_outbox(response.status_code)
        return response

    @app.teardown_request
    def _close(exc: BaseException | None) -> None:
        from store.outbox import take_pending

        take_pending()  # a failed request leaves nothing to send
        db.close()

    return app


def _send_outbox(status: int) -> None:
    """Hand the rows this request committed to the delivery actor (send only, after commit)."""
    from store.outbox import take_pending

    ids = take_pending()
    if not ids or status >= 400:
        return
    from actors.outbox import deliver_outbox

    for outbox_id in ids:
        try:
            deliver_outbox.send(outbox_id)
        except Exception:  # noqa: BLE001 - the fact is committed; the redelivery sweep sends it later
            logging.getLogger("beadwire.web").warning("could not enqueue outbox %s; the sweep will", outbox_id)
