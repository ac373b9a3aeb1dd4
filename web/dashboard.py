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
from urllib.parse import unquote, urlsplit

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

from store import audit, dashboard, humans, steer
from store.acting import SHARED_NAME
from store.errors import BeadwireError, InvalidInput, NotFound, Unauthorized
from store.escalations import MAX_RESPONSE, respond
from store.humans import Person, require_role
from store.util import iso
from web.common import act_as_caller, acting_human, actor, key_or_workspace, limit_ip, load_args, store
from web.idempotency import idempotent
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
PUBLIC = {"dashboard.login", "dashboard.login_post", "dashboard.login_link", "dashboard.login_link_post",
          "dashboard.invite", "dashboard.invite_post"}
#: Event kinds (prefixes) each page refreshes on; "*" is everything.
LIVE = {"team": "claim. bead. presence. workspace. reservation. agent.", "work": "claim. bead. beads.",
        "bead": "claim. bead. beads.", "graph": "claim. bead. beads.", "chat": "chat",
        "conversation": "chat", "mail": "mail notice", "escalations": "escalation.", "activity": "*",
        "policy": "policy."}
_THREAD = re.compile(r"^c:\d+:\d+$")
#: Permission levels, lowest first: `_require(level)` lets a session at that level or above through.
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
    from web import dashboard_actions, ws  # noqa: F401  (the forms register on `bp`)

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
        g.project, g.person = dashboard.session_actor(record)
        g.dash = record
    except Unauthorized as exc:  # key rotated, person removed, viewer revoked: the session ends here
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
    person = acting_human()
    return render_template(f"dashboard/{template}", page=name, project=g.project, access=g.dash["access"],
                           who=_who(person), may=_may(person), person=person, projects=_projects(person),
                           csrf=g.dash["csrf"], live=LIVE.get(name, ""), fragment=fragment,
                           since=store().redis.last_event_id(g.project.id), pending=_pending_count(), flash=_flash(),
                           level=_level(), can=_can, **context)


# -- who acts, and what they may do (the one place both are decided) -------------------------------

def _actor() -> str:
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


def _require(level: str) -> None:
    """403 unless the session is at `level` or above (viewer < lead < admin): `require_role`."""
    require_role(acting_human(), level)


def _can(level: str) -> bool:
    """For templates: whether to show a form at all (the handler still calls `_require`)."""
    return LEVELS.index(_level()) >= LEVELS.index(level)


def _flash() -> tuple[str, str] | None:
    """The message a form left for this page: (kind, text)."""
    if g.get("flash"):
        return g.flash
    text = request.cookies.get(FLASH_COOKIE)
    if not text or request.headers.get("X-Fragment"):
        return None
    g.flash_read = True
    kind, _, message = unquote(text).partition(":")
    return ("error" if kind == "error" else "ok"), message[:500]


@bp.after_request
def _drop_flash(response):
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


def _login_page(status: int = 200, cookie_path: str = "/login", **context: Any):
    """A login form (key, or a link's or an invite's confirmation) with its pre-login CSRF cookie
    (double submit), sent back only to `cookie_path`."""
    import secrets

    token = request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(24)
    context.setdefault("next", _safe_next(request.args.get("next")))
    response = _page("login.html", status, login_csrf=token, **context)
    response.set_cookie(LOGIN_CSRF_COOKIE, token, max_age=3600, httponly=True, samesite="Strict",
                        secure=request.is_secure, path=cookie_path)
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
@idempotent
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
@idempotent
def login_link_post(token: str):
    """Use the link: CSRF-checked, so another site cannot log a browser into its own project."""
    limit_ip()
    _check_login_csrf()
    try:
        cookie, _ = dashboard.redeem_link(store(), token)
    except Unauthorized as exc:
        return _page("login.html", 401, message=exc.message, login_csrf="", next="")
    return _set_session(redirect(url_for("dashboard.team"), 303), cookie)


@bp.get("/invite/<token>")
def invite(token: str):
    """A person's one-time invite (`wire human add`): opening it shows who it is for and a button (a GET
    must not use it up); pressing the button logs in as that person."""
    limit_ip()
    try:
        row = humans.check_invite(token)
    except Unauthorized as exc:
        return _page("login.html", 401, message=exc.message, login_csrf="", next="")
    return _login_page(cookie_path="/invite", invite=token, invite_name=row.name, invite_role=row.role, invite_project=row.project.slug)


@bp.post("/invite/<token>")
@idempotent
def invite_post(token: str):
    """Use the invite: a session as the person, and their personal token for the CLI, shown this once.
    A browser already logged in as a person joins the new project to that login (humans.redeem_invite)."""
    limit_ip()
    _check_login_csrf()
    try:
        row, personal = humans.redeem_invite(token, _logged_in_person())
    except Unauthorized as exc:
        return _page("login.html", 401, message=exc.message, login_csrf="", next="")
    cookie, record = dashboard.open_person_session(store(), humans.person_of(row, "session"))
    g.project, g.person, g.dash = row.project, humans.person_of(row, "session"), record
    response = make_response(_render("welcome.html", "welcome", token=personal))
    return _set_session(response, cookie)


def _logged_in_person() -> Person | None:
    """The person of this browser's live session, if any (an invite opened there joins their login)."""
    record = dashboard.session(store(), request.cookies.get(COOKIE))
    try:
        person = dashboard.session_actor(record)[1] if record else None
    except Unauthorized:
        return None
    return person if person is not None and person.human_id is not None else None


@bp.get("/overview")
def overview():
    """Every project of the person's login: agents online, claims held, escalations pending."""
    person = acting_human()
    members = humans.memberships(person) if person is not None else []
    return _render("overview.html", "overview", rows=dashboard.overview(store(), [p for p, _ in members] or [g.project]))


@bp.get("/people")
def people():
    require_role(acting_human(), "viewer")  # a workspace's read-only session reads no persons (as its token)
    return _render("people.html", "people", people=humans.people(g.project), roles=humans.ROLES)


@bp.post("/people")
@idempotent
def add_person():
    """An admin adds a person; the page shows their invite link once."""
    person = require_role(acting_human(), "admin")
    form = {k: (request.form.get(k) or "").strip()[:300] for k in ("name", "email", "role")}
    try:
        row, invite = humans.add(g.project, form["name"], form["email"], form["role"] or "lead", person)
    except (InvalidInput, humans.HumanTaken) as exc:
        return _render("people.html", "people", people=humans.people(g.project), roles=humans.ROLES,
                       message=exc.message), exc.status_code
    made = {**humans.human_json(row), "url": request.host_url.rstrip("/") + url_for("dashboard.invite", token=invite),
            "invite_expires_at": iso(row.invite_expires_ts)}
    return _render("people.html", "people", people=humans.people(g.project), roles=humans.ROLES, invite=made), 201


@bp.post("/people/<name>/remove")
@idempotent
def remove_person(name: str):
    """An admin removes a person: their token and sessions end at once."""
    require_role(acting_human(), "admin")
    humans.remove(g.project, name)
    return redirect(url_for("dashboard.people"), 303)


@bp.post("/switch")
@idempotent
def switch():
    """Show another project of the person's (the header's switcher)."""
    dashboard.switch_project(store(), request.cookies.get(COOKIE, ""), g.dash, request.form.get("project", ""))
    return redirect(url_for("dashboard.team"), 303)


@bp.post("/logout")
@idempotent
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
    return _render("work.html", "work", board=dashboard.board(g.project, f), f=f, columns=dashboard.COLUMNS,
                   repos=dashboard.repo_names(g.project.id))


@bp.get("/work/graph")
def graph():
    a = load_args(graph_args)
    return _render("graph.html", "graph", pic=dashboard.repo_picture(g.project, a["repo"]),
                   repos=dashboard.repo_names(g.project.id), repo=a["repo"])


@bp.get("/work/bead/<int:pk>")
def bead(pk: int):
    from store.beads import STATUSES

    b = dashboard.bead_page(store(), g.project, pk)
    agents = dashboard.agent_aliases(g.project.id) if _can("lead") else []
    return _render("bead.html", "bead", b=b, statuses=STATUSES, agents=agents)


@bp.get("/chat")
def chat():
    return _render("chat.html", "chat", chats=dashboard.conversations(store(), g.project, _viewer()))


@bp.get("/chat/<thread>")
def conversation(thread: str):
    if not _THREAD.match(thread):
        raise NotFound("no such conversation")
    from store import acting

    me = acting.find_human(g.project, _actor()) if g.dash["access"] == "human" else None
    return _render("conversation.html", "conversation", c=dashboard.conversation(store(), g.project, thread, _viewer()),
                   thread=thread, reply_to=acting.other_in(g.project, me, thread))


@bp.get("/mail")
def mail():
    a = load_args(mail_args)
    return _render("mail.html", "mail", m=dashboard.mail(g.project, a["page"], a["q"], _viewer()), q=a["q"])


@bp.get("/escalations")
def escalations():
    return _render("escalations.html", "escalations", e=dashboard.escalations(g.project, _viewer()))


@bp.post("/escalations/<int:escalation_id>/answer")
@idempotent
def answer(escalation_id: int):
    """A human's answer: an option button or free text; the agent's banner shows it on its next call."""
    person = require_role(acting_human(), "lead")
    text = (request.form.get("response") or request.form.get("text") or "").strip()
    if not text or len(text) > MAX_RESPONSE:
        return _render("escalations.html", "escalations", e=dashboard.escalations(g.project),
                       message="Write an answer (or pick an option) first."), 422
    note = (request.form.get("note") or "").strip()[:4000]
    respond(g.project, escalation_id, text, note, person.name)
    return redirect(url_for("dashboard.escalations"), 303)


@bp.get("/agents/add")
def add_agent():
    """The text a human pastes to a new agent; a join key for it comes from the button (a POST)."""
    return _render("add_agent.html", "add_agent", paste=_paste_text(None), made=None)


@bp.post("/agents/add")
@idempotent
def add_agent_post():
    """A fresh single-use join key, shown once inside the paste-to-your-agent text."""
    from store import joinkeys

    if g.dash["access"] != "human":
        abort(403, "this session can only read: log in with the project key (or a link minted with it) to make "
                   "join keys")
    made = joinkeys.create(g.project, f"dashboard ({g.dash.get('by') or 'human'})")
    return _render("add_agent.html", "add_agent", paste=_paste_text(made), made=made)


def _paste_text(made: dict[str, Any] | None) -> str:
    """What the new agent reads: where the guide is, the project, its join key (autoescaped in the page)."""
    url = request.url_root.rstrip("/")
    key = made["join_key"] if made else "<join-key: press \"Make a join key\" first>"
    until = f" (single use, valid until {made['expires_at'][:16].replace('T', ' ')} UTC)" if made else ""
    return (f"Join the beadwire project \"{g.project.slug}\" as one of its coding agents.\n"
            f"Read {url}/llms.txt and follow it step by step.\n"
            f"Project: {g.project.slug}\n"
            f"Join key{until}: {key}\n"
            "Ask me first for your role and your name, and whether to add worktrees for more agents.")


@bp.get("/activity")
def activity():
    a = load_args(activity_args)
    return _render("activity.html", "activity", feed=dashboard.activity(store(), g.project, a["group"], a["alias"], _viewer()),
                   a=a)


@bp.get("/policy")
def policy():
    return _render("policy.html", "policy", p=dashboard.policy(g.project))


# -- steering agents, the audit log ----------------------------------------------------------------

@bp.post("/team/<alias>/pause")
@idempotent
def pause(alias: str):
    """Pause an agent from the team page: its `wire claim` refuses new claims until resumed."""
    _require("lead")
    reason = (request.form.get("reason") or "").strip()
    steer.pause(store(), g.project, None, actor(), alias, reason)
    return redirect(url_for("dashboard.team"), 303)


@bp.post("/team/<alias>/resume")
@idempotent
def resume(alias: str):
    _require("lead")
    steer.resume(store(), g.project, None, actor(), alias)
    return redirect(url_for("dashboard.team"), 303)


def _audit_rows() -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The filters of the audit page (and its exports) and the rows they select."""
    _require("viewer")  # a person: a workspace's read-only session is refused
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
@idempotent
def mint_link():
    """A one-time login link: `human` access with the project key, `viewer` (read only) with a workspace token."""
    return jsonify(dashboard.mint_link(store(), g.project, g.ws, acting_human())), 201
