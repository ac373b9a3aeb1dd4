"""The dashboard's blueprint and what every page of it shares: the session check before each request,
the strict headers after it, the error pages, rendering, and who acts with what permission.

Security: every page is rendered by Jinja with autoescape (agent text is never marked safe); a strict
Content-Security-Policy allows only our own static script and stylesheet (no inline code); sessions
are opaque HttpOnly SameSite=Lax cookies whose records live in Redis (store/sessions.py); every
POST carries the session's CSRF token. `api_bp` mints login links for `wire dashboard`.
"""

from __future__ import annotations

import hmac
import re
from typing import Any
from urllib.parse import unquote, urlsplit

from flask import Blueprint, Response, abort, g, make_response, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from marshmallow import EXCLUDE, Schema, pre_load
from werkzeug.exceptions import HTTPException

from store import dashboard, humans, sessions
from store.acting import SHARED_NAME
from store.errors import BeadwireError, Unauthorized
from store.humans import Person, require_role
from web.common import act_as_caller, acting_human, key_or_workspace, store

bp = Blueprint("dashboard", __name__)
api_bp = Blueprint("dashboard_api", __name__, url_prefix="/v1")
api_bp.before_request(key_or_workspace)

#: The session cookie (its value is `<project id>.<secret>`; the record lives in Redis).
COOKIE = "bw_session"
#: The pre-login CSRF cookie of the key form (double submit: no session exists yet).
LOGIN_CSRF_COOKIE = "bw_login_csrf"
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
       "form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
PUBLIC = {"dashboard.login", "dashboard.login_post", "dashboard.login_link", "dashboard.login_link_post",
          "dashboard.invite", "dashboard.invite_post"}
#: Event kinds (prefixes) each page refreshes on; "*" is everything.
LIVE = {"team": "claim. bead. presence. workspace. reservation. agent.", "work": "claim. bead. beads.",
        "bead": "claim. bead. beads.", "graph": "claim. bead. beads.", "chat": "chat",
        "conversation": "chat", "mail": "mail notice", "escalations": "escalation.", "activity": "*",
        "policy": "policy."}
THREAD = re.compile(r"^c:\d+:\d+$")
#: Permission levels, lowest first: `require(level)` lets a session at that level or above through.
LEVELS = ("viewer", "lead", "admin")
#: A one-shot message for the page a form redirects to (value URL-quoted; shown escaped).
FLASH_COOKIE = "bw_flash"


class PageArgs(Schema):
    """Query arguments of a page: an empty field of a filter form means "any"; unknown ones are ignored."""

    class Meta:
        unknown = EXCLUDE

    @pre_load
    def _drop_empty(self, data: Any, **_: Any) -> Any:
        return {k: v for k, v in data.items() if v != ""} if isinstance(data, dict) else data


def when(value: str | None) -> str:
    """`2026-11-21T10:13:36.123456Z` -> `2026-11-21 10:13:36` (UTC): the templates' `bw_when` filter."""
    return value[:19].replace("T", " ") if value else ""


# -- before and after every dashboard request ----------------------------------------------------

@bp.before_request
def _session() -> ResponseReturnValue | None:
    if request.endpoint in PUBLIC:
        return None
    cookie = request.cookies.get(COOKIE)
    record = sessions.session(store(), cookie)
    if record is None:
        return _ended("Your session has ended: log in again.")
    try:
        g.project, g.person = sessions.session_actor(record)
        g.dash = record
    except Unauthorized as exc:  # key rotated, person removed, viewer revoked: the session ends here
        sessions.close_session(store(), cookie)
        return _ended(exc.message)
    act_as_caller()
    if request.method == "POST":
        _check_csrf(record["csrf"])
    return None


def _ended(message: str) -> ResponseReturnValue:
    """Back to the login page: a redirect for a page, a 401 for a form or the live script (which reloads)."""
    if request.method != "GET" or request.headers.get("X-Fragment"):
        return plain_page("login.html", 401, message=message)
    return redirect(url_for("dashboard.login", next=request.full_path.rstrip("?")))


def _check_csrf(expected: str) -> None:
    """The form's token must be the session's; a cross-site Origin is refused outright."""
    origin = request.headers.get("Origin")
    if origin and not same_site(origin):
        abort(403, "cross-site request refused")
    if not hmac.compare_digest(request.form.get("csrf_token", ""), expected):
        abort(403, "missing or wrong CSRF token: reload the page and try again")


def same_site(origin: str) -> bool:
    """Whether an Origin header names this host (ports aside: cookies are shared across ports anyway)."""
    return urlsplit(origin).hostname == urlsplit("//" + request.host).hostname


@bp.after_app_request
def _headers(response: Response) -> Response:
    """Strict headers on every page, static file and websocket handshake of the dashboard."""
    req = request._get_current_object()  # type: ignore[attr-defined]  # once: it runs on every answer
    dashboard = req.blueprint == "dashboard"
    if dashboard or req.endpoint == "static":
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["X-Frame-Options"] = "DENY"
        # "no-referrer" would make form POSTs say `Origin: null`
        response.headers["Referrer-Policy"] = "same-origin"
    if dashboard:
        response.headers["Cache-Control"] = "no-store"
    return response


@bp.errorhandler(BeadwireError)
def _error(exc: BeadwireError) -> Response:
    response = plain_page("error.html", exc.status_code, message=exc.message)
    if getattr(exc, "retry_after", None):  # RateLimited: say when, as the API does
        response.headers["Retry-After"] = str(exc.retry_after)  # type: ignore[attr-defined]
    return response


@bp.errorhandler(403)
@bp.errorhandler(404)
def _http_error(exc: HTTPException) -> Response:
    return plain_page("error.html", exc.code or 500, message=exc.description)


def plain_page(template: str, status: int = 200, **context: Any) -> Response:
    """A dashboard template outside the page frame's context (login, errors)."""
    return make_response(render_template(f"dashboard/{template}", **context), status)


def render(template: str, name: str, **context: Any) -> str:
    """A page, or only its main part when the live script asks for a fresh copy (`X-Fragment`)."""
    fragment = bool(request.headers.get("X-Fragment"))
    person = acting_human()
    return render_template(f"dashboard/{template}", page=name, project=g.project, access=g.dash["access"],
                           who=_who(person), may=_may(person), person=person, projects=_projects(person),
                           csrf=g.dash["csrf"], live=LIVE.get(name, ""), fragment=fragment,
                           since=store().redis.last_event_id(g.project.id),
                           pending=dashboard.pending_count(g.project.id), flash=_flash(),
                           level=_level(), can=can, **context)


# -- who acts, and what they may do (the one place both are decided) -------------------------------

def actor_name() -> str:
    """The name a form's action carries (comments, mail, released claims, answers): the person
    logged in (`acting_human`: a personal session, or "project key"); a read-only session is the
    workspace it reads as."""
    person = acting_human()
    if person is None:
        return (g.dash.get("viewer") or {}).get("alias") or "viewer"
    # the shared key has no person behind it: it acts as the `dashboard` workspace agents can address
    return person.name if person.human_id is not None else SHARED_NAME


def _level() -> str:
    """The session's level: the person's role (store/humans.py); a read-only session is a viewer."""
    person = acting_human()
    level = person.role if person is not None else "viewer"
    return level if level in LEVELS else "viewer"


def require(level: str) -> None:
    """403 unless the session is at `level` or above (viewer < lead < admin): `require_role`."""
    require_role(acting_human(), level)


def can(level: str) -> bool:
    """For templates: whether to show a form at all (the handler still calls `require`)."""
    return LEVELS.index(_level()) >= LEVELS.index(level)


def _flash() -> tuple[str, str] | None:
    """The message a form left for this page: (kind, text)."""
    if g.get("flash"):
        flash: tuple[str, str] = g.flash
        return flash
    text = request.cookies.get(FLASH_COOKIE)
    if not text or request.headers.get("X-Fragment"):
        return None
    g.flash_read = True
    kind, _, message = unquote(text).partition(":")
    return ("error" if kind == "error" else "ok"), message[:500]


@bp.after_request
def _drop_flash(response: Response) -> Response:
    if g.get("flash_read"):
        response.delete_cookie(FLASH_COOKIE, path="/")
    return response


def _who(person: Person | None) -> str:
    """What the header says about the session: `maria (lead)`, `project key (admin)`, `viewer`."""
    return f"{person.name} ({person.role})" if person is not None else "viewer"


def _may(person: Person | None) -> dict[str, bool]:
    """Which roles' forms a page shows (the routes check again: `require_role`)."""
    return {role: person is not None and humans.has_role(person, role) for role in humans.ROLES}


def _projects(person: Person | None) -> list[str]:
    """The slugs of the projects a person's login shows (the header's switcher, when there are several)."""
    if person is None or person.human_id is None:
        return []
    return [p.slug for p, _ in humans.memberships(person)]


def viewer() -> dict[str, Any] | None:
    """None for a human session (sees everything), else the workspace a read-only session reads as."""
    return None if g.dash["access"] == "human" else g.dash.get("viewer") or {"ws": 0, "alias": "", "role": ""}
