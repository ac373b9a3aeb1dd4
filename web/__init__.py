"""The Flask app factory: the only place the web app is wired."""

from __future__ import annotations

import logging

from flask import Flask, current_app

from store.config import Settings


def create_app(settings: Settings | None = None, redis_client: object | None = None) -> Flask:
    """Build the app for `settings` (default: from the environment)."""
    from store import db, open_store
    from web import beads, chat, errors, identity, mail, sync
    from web.common import add_banner

    settings = settings or Settings.from_env()
    logging.basicConfig(level=settings.log_level)
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.extensions["beadwire"] = open_store(settings, redis_client)
    errors.init_app(app)
    for blueprint in (identity.bp, identity.team_bp, beads.bp, sync.bp, mail.bp, chat.bp):
        app.register_blueprint(blueprint)

    @app.before_request
    def _connect() -> None:
        db.connect()

    @app.after_request
    def _deliver(response):
        _send_outbox(response.status_code)
        return add_banner(response)

    @app.teardown_request
    def _close(exc: BaseException | None) -> None:
        from store.outbox import take_pending

        take_pending()  # a failed request leaves nothing to send
        db.close()

    return app


def _send_outbox(status: int) -> None:
    """Deliver what this request committed: urgent rows now, the rest through the actor."""
    from store.outbox import deliver, take_pending

    rows = take_pending()
    if not rows or status >= 400:
        return
    from actors.outbox import deliver_outbox

    for outbox_id, urgent in rows:
        try:
            if urgent:
                deliver(current_app.extensions["beadwire"], outbox_id)
            else:
                deliver_outbox.send(outbox_id)
        except Exception:  # noqa: BLE001 - the fact is committed; the redelivery sweep sends it later
            logging.getLogger("beadwire.web").warning("could not deliver outbox %s; the sweep will", outbox_id)
