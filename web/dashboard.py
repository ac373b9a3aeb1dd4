"""The human dashboard: server-rendered pages (Team, Work, Chat, Mail, Escalations, Activity, Policy),
live through the `/v1/ws` event feed (web/ws.py), behind a session cookie.

Security: every page is rendered by Jinja with autoescape (agent text is never marked safe); a strict
Content-Security-Policy allows only our own static script and stylesheet (no inline code); sessions
are opaque HttpOnly SameSite=Lax cookies whose records live in Redis (store/dashboard.py); every
POST carries the session's CSRF token. `api_bp` mints login links for `wire dashboard`.
"""

from __future__ import annotations

import hmac
import json
import re
from typing import Any
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Flask,
    abort,
    g,
    jsonify,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from marshmallow import EXCLUDE, Schema, ValidationError, fields, pre_load, validate

from store import audit, dashboard, steer
from store.errors import BeadwireError, NotFound, Unauthorized
from store.escalations import MAX_RESPONSE, respond
from web.common import act_as_caller, actor, key_or_workspace, limit_ip, load_args, store
from web.steer import parse_since

bp = Blueprint("dashboard", __name__)
api_bp = Blueprint("dashboard_api", __name__, url_prefix="/v1")
api_bp.before_request(key_or_workspace)

#: The session cookie (its value is `<project id>.<secret>`; the record lives in Redis).
COOKIE = "bw_session"
#: The pre-login CSRF cookie of the key form (double submit: no session exists yet).
LOGIN_CSRF_COOKIE = "bw_login_csrf"
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
       "form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
PUBLIC = {"dashboard.login", "dashboard.login_post", "dashboard.login_link", "dashboard.login_link_post"}
#: Event kinds (prefixes) each page refreshes on; "*" is everything.
LIVE = {"team": "claim. bead. presence. workspace. reservation. agent.", "work": "claim. bead. beads.",
        "bead": "claim. bead. beads.", "graph": "claim. bead. beads.", "chat": "chat",
        "conversation": "chat", "mail": "mail notice", "escalations": "escalation.", "activity": "*",
        "policy": "policy."}
_THREAD = re.compile(r"^c:\d+:\d+$")


class PageArgs(Schema):
    """Query arguments of a page: an empty field of a filter form means "any"; unknown ones are ignored."""

    class Meta:
        unknown = EXCLUDE

    @pre_load
    def _drop_empty(self, data: Any, **_: Any) -> Any:
        return {k: v for k, v in data.items() if v != ""} if isinstance(data, dict) else data


class TeamArgs(PageArgs):
    q = fields.Str(load_default="", validate=validate.Length(max=100))
    status = fields.Str(load_default="", validate=validate.OneOf(("", *dashboard.PRESENCE_STATES)))
    role = fields.Str(load_default="", validate=validate.Length(max=64))
    repo = fields.Int(load_default=0, validate=validate.Range(min=0))
    page = fields.Int(load_default=1, validate=validate.Range(min=1, max=100_000))


class WorkArgs(PageArgs):
    q = fields.Str(load_default="", validate=validate.Length(max=100))
    repo = fields.Int(load_default=0, validate=validate.Range(min=0))
    priority = fields.Int(load_default=None, allow_none=True, validate=validate.Range(min=0, max=4))
    holder = fields.Str(load_default="", validate=validate.Length(max=64))
    type = fields.Str(load_default="", validate=validate.Length(max=64))
    more = fields.Str(load_default="", validate=validate.OneOf(("", *dashboard.COLUMNS)))


class MailArgs(PageArgs):
    q = fields.Str(load_default="", validate=validate.Length(max=100))
    page = fields.Int(load_default=1, validate=validate.Range(min=1, max=100_000))


class ActivityArgs(PageArgs):
    group = fields.Str(load_default="", validate=validate.OneOf(("", *dashboard.ACTIVITY_GROUPS)))
    alias = fields.Str(load_default="", validate=validate.Length(max=64))


class GraphArgs(PageArgs):
    repo = fields.Int(load_default=0, validate=validate.Range(min=0))


class AuditPageArgs(PageArgs):
    who = fields.Str(load_default="", validate=validate.Length(max=200))
    action = fields.Str(load_default="", validate=validate.Length(max=64))
    bead = fields.Str(load_default="", validate=validate.Length(max=520))
    #: an ISO time or a date (the form's datetime-local field sends `2026-12-04T12:00`)
    since = fields.Str(load_default="", validate=validate.Length(max=40))
    limit = fields.Int(load_default=200, validate=validate.Range(min=1, max=10_000))


audit_page_args = AuditPageArgs()
team_args, work_args, mail_args, activity_args, graph_args = (TeamArgs(), WorkArgs(), MailArgs(), ActivityArgs(),
                                                              GraphArgs())


def init_app(app: Flask) -> None:
    """Register the dashboard, its link API and the websocket feed; ping idle sockets."""
    from web import ws

    app.register_blueprint(bp)
    app.register_blueprint(api_bp)
    ws.init_app(app)
    app.config.setdefault("SOCK_SERVER_OPTIONS", {"ping_interval": 25})
    app.jinja_env.filters["bw_when"] = _when


def _when(value: str | None) -> str:
    """`2026-11-21T10:13:36.123456Z` -> `2026-11-21 10:13:36` (UTC)."""
    return value[:19].replace("T", " ") if value else ""


# -- before and after every dashboard request ----------------------------------------------------

@bp.before_request
def _session():
    if request.endpoint in PUBLIC:
        return None
    cookie = request.cookies.get(COOKIE)
    record = dashboard.session(store(), cookie)
    if record is None:
        return _ended("Your session has ended: log in again.")
    try:
        g.dash, g.project = record, dashboard.project_of(record)
    except Unauthorized as exc:  # key rotated, viewer revoked: the session ends here
        dashboard.close_session(store(), cookie)
        return _ended(exc.message)
    act_as_caller()
    if request.method == "POST":
        _check_csrf(record["csrf"])
    return None


def _ended(message: str):
    """Back to the login page: a redirect for a page, a 401 for a form or the live script (which reloads)."""
    if request.method != "GET" or request.headers.get("X-Fragment"):
        return _page("login.html", 401, message=message)
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
def _headers(response):
    """Strict headers on every page, static file and websocket handshake of the dashboard."""
    if request.blueprint == "dashboard" or request.endpoint == "static":
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Referrer-Policy"] = "same-origin"  # "no-referrer" would make form POSTs say `Origin: null`
    if request.blueprint == "dashboard":
        response.headers["Cache-Control"] = "no-store"
    return response


@bp.errorhandler(BeadwireError)
def _error(exc: BeadwireError):
    response = _page("error.html", exc.status_code, message=exc.message)
    if getattr(exc, "retry_after", None):  # RateLimited: say when, as the API does
        response.headers["Retry-After"] = str(exc.retry_after)  # type: ignore[attr-defined]
    return response


@bp.errorhandler(403)
@bp.errorhandler(404)
def _http_error(exc):
    return _page("error.html", exc.code, message=exc.description)


def _page(template: str, status: int = 200, **context: Any):
    return make_response(render_template(f"dashboard/{template}", **context), status)


def _render(template: str, name: str, **context: Any):
    """A page, or only its main part when the live script asks for a fresh copy (`X-Fragment`)."""
    fragment = bool(request.headers.get("X-Fragment"))
    return render_template(f"dashboard/{template}", page=name, project=g.project, access=g.dash["access"],
                           csrf=g.dash["csrf"], live=LIVE.get(name, ""), fragment=fragment,
                           since=store().redis.last_event_id(g.project.id), pending=_pending_count(), **context)


def _viewer() -> dict[str, Any] | None:
    """None for a human session (sees everything), else the workspace a read-only session reads as."""
    return None if g.dash["access"] == "human" else g.dash.get("viewer") or {"ws": 0, "alias": "", "role": ""}


def _pending_count() -> int:
    from store.models import Escalation

    return Escalation.select().where(Escalation.project == g.project.id, Escalation.status == "pending").count()


# -- login -------------------------------------------------------------------------------------------

def _set_session(response, cookie: str):
    response.set_cookie(COOKIE, cookie, max_age=dashboard.DEFAULT_SESSION_MAX, httponly=True, samesite="Lax",
                        secure=request.is_secure, path="/")
    return response


def _safe_next(value: str | None) -> str:
    """Only a path of this site (no `//host`, no scheme): never an open redirect.

    Browsers drop tabs and line breaks from a URL and read `\\` as `/`, so `/\t/evil.example` is
    `//evil.example` to them: any control character, whitespace or backslash makes it unsafe.
    """
    if (value and value.startswith("/") and not value.startswith("//") and value.isprintable()
            and not any(c.isspace() or c == "\\" for c in value)):
        return value
    return url_for("dashboard.team")


def _login_page(status: int = 200, **context: Any):
    """A login form (key, or a link's confirmation) with its pre-login CSRF cookie (double submit)."""
    import secrets

    token = request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(24)
    context.setdefault("next", _safe_next(request.args.get("next")))
    response = _page("login.html", status, login_csrf=token, **context)
    response.set_cookie(LOGIN_CSRF_COOKIE, token, max_age=3600, httponly=True, samesite="Strict",
                        secure=request.is_secure, path="/login")
    return response


def _check_login_csrf() -> str:
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not expected or not hmac.compare_digest(request.form.get("csrf_token", ""), expected):
        abort(403, "missing or wrong CSRF token: reload the login page and try again")
    return expected


@bp.get("/login")
def login():
    return _login_page()


@bp.post("/login")
def login_post():
    limit_ip()  # guessing keys costs the caller's address its request budget (429 past it)
    expected = _check_login_csrf()
    try:
        cookie, _ = dashboard.login_with_key(store(), request.form.get("key", "")[:200])
    except Unauthorized as exc:
        return _page("login.html", 401, message=exc.message, login_csrf=expected,
                     next=_safe_next(request.form.get("next")))
    return _set_session(redirect(_safe_next(request.form.get("next")), 303), cookie)


@bp.get("/login/<token>")
def login_link(token: str):
    """A one-time link from `wire dashboard`: opening it only shows a button (a GET must not use it up:
    link previews and mail scanners fetch links); pressing the button logs in."""
    limit_ip()
    try:
        record = dashboard.check_link(store(), token)
    except Unauthorized as exc:
        return _page("login.html", 401, message=exc.message, login_csrf="", next="")
    return _login_page(link=token, link_access=record.get("access", ""), link_by=record.get("by", ""))


@bp.post("/login/<token>")
def login_link_post(token: str):
    """Use the link: CSRF-checked, so another site cannot log a browser into its own project."""
    limit_ip()
    _check_login_csrf()
    try:
        cookie, _ = dashboard.redeem_link(store(), token)
    except Unauthorized as exc:
        return _page("login.html", 401, message=exc.message, login_csrf="", next="")
    return _set_session(redirect(url_for("dashboard.team"), 303), cookie)


@bp.post("/logout")
def logout():
    dashboard.close_session(store(), request.cookies.get(COOKIE))
    response = redirect(url_for("dashboard.login"), 303)
    response.delete_cookie(COOKIE, path="/")
    return response


# -- pages -------------------------------------------------------------------------------------------

@bp.get("/")
def home():
    return redirect(url_for("dashboard.team"))


@bp.get("/team")
def team():
    a = load_args(team_args)
    f = dashboard.Filters(q=a["q"], status=a["status"], role=a["role"], repo=a["repo"], page=a["page"])
    return _render("team.html", "team", team=dashboard.team(store(), g.project, f), f=f)


@bp.get("/work")
def work():
    a = load_args(work_args)
    f = dashboard.BoardFilters(q=a["q"], repo=a["repo"], priority=a["priority"], holder=a["holder"],
                               issue_type=a["type"], more=a["more"])
    return _render("work.html", "work", board=dashboard.board(g.project, f), f=f, columns=dashboard.COLUMNS)


@bp.get("/work/graph")
def graph():
    a = load_args(graph_args)
    return _render("graph.html", "graph", pic=dashboard.repo_picture(g.project, a["repo"]),
                   repos=dashboard.repo_names(g.project.id), repo=a["repo"])


@bp.get("/work/bead/<int:pk>")
def bead(pk: int):
    return _render("bead.html", "bead", b=dashboard.bead_page(store(), g.project, pk))


@bp.get("/chat")
def chat():
    return _render("chat.html", "chat", chats=dashboard.conversations(store(), g.project, _viewer()))


@bp.get("/chat/<thread>")
def conversation(thread: str):
    if not _THREAD.match(thread):
        raise NotFound("no such conversation")
    return _render("conversation.html", "conversation", c=dashboard.conversation(store(), g.project, thread, _viewer()))


@bp.get("/mail")
def mail():
    a = load_args(mail_args)
    return _render("mail.html", "mail", m=dashboard.mail(g.project, a["page"], a["q"], _viewer()), q=a["q"])


@bp.get("/escalations")
def escalations():
    return _render("escalations.html", "escalations", e=dashboard.escalations(g.project, _viewer()))


@bp.post("/escalations/<int:escalation_id>/answer")
def answer(escalation_id: int):
    """A human's answer: an option button or free text; the agent's banner shows it on its next call."""
    if g.dash["access"] != "human":
        abort(403, "this session can only read: log in with the project key (or a link minted with it) to answer")
    text = (request.form.get("response") or request.form.get("text") or "").strip()
    if not text or len(text) > MAX_RESPONSE:
        return _render("escalations.html", "escalations", e=dashboard.escalations(g.project),
                       message="Write an answer (or pick an option) first."), 422
    note = (request.form.get("note") or "").strip()[:4000]
    respond(g.project, escalation_id, text, note, "dashboard")
    return redirect(url_for("dashboard.escalations"), 303)


@bp.get("/activity")
def activity():
    a = load_args(activity_args)
    return _render("activity.html", "activity", feed=dashboard.activity(store(), g.project, a["group"], a["alias"], _viewer()),
                   a=a)


@bp.get("/policy")
def policy():
    return _render("policy.html", "policy", p=dashboard.policy(g.project))


# -- steering agents, the audit log ----------------------------------------------------------------

def _human_only(what: str) -> None:
    if g.dash["access"] != "human":
        abort(403, f"this session can only read: log in with the project key (or a link minted with it) to {what}")


@bp.post("/team/<alias>/pause")
def pause(alias: str):
    """Pause an agent from the team page: its `wire claim` refuses new claims until resumed."""
    _human_only("pause agents")
    reason = (request.form.get("reason") or "").strip()
    steer.pause(g.project, None, actor(), alias, reason)
    return redirect(url_for("dashboard.team"), 303)


@bp.post("/team/<alias>/resume")
def resume(alias: str):
    _human_only("resume agents")
    steer.resume(g.project, None, actor(), alias)
    return redirect(url_for("dashboard.team"), 303)


def _audit_rows() -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The filters of the audit page (and its exports) and the rows they select."""
    _human_only("read the audit log")
    a = load_args(audit_page_args)
    try:
        since = parse_since(a["since"]) if a["since"] else None
    except ValidationError as exc:
        raise ValidationError({"since": exc.messages}) from None
    rows = audit.query(g.project.id, since, a["who"] or None, a["bead"] or None, a["action"] or None, a["limit"])
    return a, rows


@bp.get("/audit")
def audit_page():
    a, rows = _audit_rows()
    export = {k: v for k, v in a.items() if v not in ("", None)}
    for row in rows:  # readable text, autoescaped by the template (`tojson` would show \u003c for `<`)
        row["detail_text"] = json.dumps(row["detail"], ensure_ascii=False, sort_keys=True)
    return _render("audit.html", "audit", rows=rows, a=a, export=export)


@bp.get("/audit.json")
def audit_json():
    return jsonify(_audit_rows()[1])


@bp.get("/audit.csv")
def audit_csv():
    import csv
    import io

    out = io.StringIO()
    columns = ("at", "who", "who_kind", "credential", "action", "bead", "detail", "address", "host")
    writer = csv.writer(out)
    writer.writerow(columns)
    for row in _audit_rows()[1]:
        writer.writerow([_csv_cell(json.dumps(row[c], sort_keys=True) if c == "detail" else row[c])
                         for c in columns])
    response = make_response(out.getvalue())
    response.headers["Content-Type"] = "text/csv; charset=utf-8"
    response.headers["Content-Disposition"] = f'attachment; filename="audit-{g.project.slug}.csv"'
    return response


def _csv_cell(value: Any) -> str:
    """Agent-written text may start with `=`, `+`, `-`, `@`: a spreadsheet would run it as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


# -- the link API (`wire dashboard`) -------------------------------------------------------------------

@api_bp.post("/dashboard/link")
def mint_link():
    """A one-time login link: `human` access with the project key, `viewer` (read only) with a workspace token."""
    return jsonify(dashboard.mint_link(store(), g.project, g.ws)), 201
