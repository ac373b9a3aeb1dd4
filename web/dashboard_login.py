"""Getting into the dashboard and out of it: the project key form, one-time login links, a person's
invite, switching project, logging out, and the link API behind `wire dashboard`.

Before a session exists the forms are CSRF-checked by double submit (`LOGIN_CSRF_COOKIE`); the
links and invites only show a button on GET, since link previews and mail scanners fetch them.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Any

from flask import abort, g, jsonify, make_response, redirect, request, url_for
from flask.typing import ResponseReturnValue
from werkzeug.wrappers import Response

from store import humans, sessions
from store.errors import Unauthorized
from store.humans import Person
from web.apidoc import doc
from web.common import acting_human, limit_ip, store
from web.dashboard_base import COOKIE, LOGIN_CSRF_COOKIE, api_bp, bp, plain_page, render
from web.idempotency import idempotent
from web.schemas import humans as human_schemas


def _set_session(response: Response, cookie: str) -> Response:
    response.set_cookie(COOKIE, cookie, max_age=sessions.DEFAULT_SESSION_MAX, httponly=True, samesite="Lax",
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


def _login_page(status: int = 200, cookie_path: str = "/login", **context: Any) -> Response:
    """A login form (key, or a link's or an invite's confirmation) with its pre-login CSRF cookie
    (double submit), sent back only to `cookie_path`."""
    token = request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(24)
    context.setdefault("next", _safe_next(request.args.get("next")))
    response = plain_page("login.html", status, login_csrf=token, **context)
    response.set_cookie(LOGIN_CSRF_COOKIE, token, max_age=3600, httponly=True, samesite="Strict",
                        secure=request.is_secure, path=cookie_path)
    return response


def _check_login_csrf() -> str:
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not expected or not hmac.compare_digest(request.form.get("csrf_token", ""), expected):
        abort(403, "missing or wrong CSRF token: reload the login page and try again")
    return expected


def _refused(exc: Unauthorized) -> Response:
    """The login page saying why a link or an invite did not work (no form on it)."""
    return plain_page("login.html", 401, message=exc.message, login_csrf="", next="")


@bp.get("/login")
def login() -> ResponseReturnValue:
    return _login_page()


@bp.post("/login")
@idempotent
def login_post() -> ResponseReturnValue:
    limit_ip()  # guessing keys costs the caller's address its request budget (429 past it)
    expected = _check_login_csrf()
    try:
        cookie, _ = sessions.login_with_key(store(), request.form.get("key", "")[:200])
    except Unauthorized as exc:
        return plain_page("login.html", 401, message=exc.message, login_csrf=expected,
                          next=_safe_next(request.form.get("next")))
    return _set_session(redirect(_safe_next(request.form.get("next")), 303), cookie)


@bp.get("/login/<token>")
def login_link(token: str) -> ResponseReturnValue:
    """A one-time link from `wire dashboard`: opening it only shows a button (a GET must not use it up:
    link previews and mail scanners fetch links); pressing the button logs in."""
    limit_ip()
    try:
        record = sessions.check_link(store(), token)
    except Unauthorized as exc:
        return _refused(exc)
    return _login_page(link=token, link_access=record.get("access", ""), link_by=record.get("by", ""))


@bp.post("/login/<token>")
@idempotent
def login_link_post(token: str) -> ResponseReturnValue:
    """Use the link: CSRF-checked, so another site cannot log a browser into its own project."""
    limit_ip()
    _check_login_csrf()
    try:
        cookie, _ = sessions.redeem_link(store(), token)
    except Unauthorized as exc:
        return _refused(exc)
    return _set_session(redirect(url_for("dashboard.team"), 303), cookie)


@bp.get("/invite/<token>")
def invite(token: str) -> ResponseReturnValue:
    """A person's one-time invite (`wire human add`): opening it shows who it is for and a button (a GET
    must not use it up); pressing the button logs in as that person."""
    limit_ip()
    try:
        row = humans.check_invite(token)
    except Unauthorized as exc:
        return _refused(exc)
    return _login_page(cookie_path="/invite", invite=token, invite_name=row.name, invite_role=row.role,
                       invite_project=row.project.slug)


@bp.post("/invite/<token>")
@idempotent
def invite_post(token: str) -> ResponseReturnValue:
    """Use the invite: a session as the person, and their personal token for the CLI, shown this once.
    A browser already logged in as a person joins the new project to that login (humans.redeem_invite)."""
    limit_ip()
    _check_login_csrf()
    try:
        row, personal = humans.redeem_invite(token, _logged_in_person())
    except Unauthorized as exc:
        return _refused(exc)
    cookie, record = sessions.open_person_session(store(), humans.person_of(row, "session"))
    g.project, g.person, g.dash = row.project, humans.person_of(row, "session"), record
    response = make_response(render("welcome.html", "welcome", token=personal))
    return _set_session(response, cookie)


def _logged_in_person() -> Person | None:
    """The person of this browser's live session, if any (an invite opened there joins their login)."""
    record = sessions.session(store(), request.cookies.get(COOKIE))
    try:
        person = sessions.session_actor(record)[1] if record else None
    except Unauthorized:
        return None
    return person if person is not None and person.human_id is not None else None


@bp.post("/switch")
@idempotent
def switch() -> ResponseReturnValue:
    """Show another project of the person's (the header's switcher)."""
    sessions.switch_project(store(), request.cookies.get(COOKIE, ""), g.dash, request.form.get("project", ""))
    return redirect(url_for("dashboard.team"), 303)


@bp.post("/logout")
@idempotent
def logout() -> ResponseReturnValue:
    sessions.close_session(store(), request.cookies.get(COOKIE))
    response = redirect(url_for("dashboard.login"), 303)
    response.delete_cookie(COOKIE, path="/")
    return response


# -- the link API (`wire dashboard`) -------------------------------------------------------------------

@api_bp.post("/dashboard/link")
@doc("A one-time dashboard login link", "either", human_schemas.DashboardLink, ok=201)
@idempotent
def mint_link() -> ResponseReturnValue:
    """A one-time login link: `human` access with the project key, `viewer` (read only) with a
    workspace token."""
    link = sessions.mint_link(store(), g.project, g.ws, acting_human())
    return jsonify(human_schemas.dashboard_link.dump(link)), 201
