"""The human dashboard: server-rendered pages (Team, Work, Chat, Mail, Escalations, Activity, Policy),
live through the `/v1/ws` event feed (web/ws.py), behind a session cookie.

One blueprint (`dashboard`, web/dashboard_base.py: sessions, CSRF, headers, rendering) whose routes
live by page family: logins and the link API (web/dashboard_login.py), the pages
(web/dashboard_pages.py), people, steering and the audit log (web/dashboard_admin.py), and the forms
(web/dashboard_actions.py). Importing them here registers their routes.
"""

from __future__ import annotations

from flask import Flask

from web import dashboard_actions, dashboard_admin, dashboard_login, dashboard_pages, ws
from web.dashboard_base import api_bp, bp, when

#: The modules whose routes make up the dashboard (imported for their `@bp` registrations).
ROUTES = (dashboard_login, dashboard_pages, dashboard_admin, dashboard_actions)


def init_app(app: Flask) -> None:
    """Register the dashboard, its link API and the websocket feed; ping idle sockets."""
    app.register_blueprint(bp)
    app.register_blueprint(api_bp)
    ws.init_app(app)
    app.config.setdefault("SOCK_SERVER_OPTIONS", {"ping_interval": 25})
    app.jinja_env.filters["bw_when"] = when
