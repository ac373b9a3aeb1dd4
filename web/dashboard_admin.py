"""The dashboard's people and oversight pages: persons and their invites, pausing an agent, and the
audit log with its JSON and CSV exports.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict
from typing import Any

from flask import g, jsonify, make_response, redirect, request, url_for
from flask.typing import ResponseReturnValue
from marshmallow import ValidationError, fields, validate

from store import audit, humans, steer
from store.errors import InvalidInput
from store.humans import require_role
from store.util import iso
from web.common import acting_human, actor, load_args, store
from web.dashboard_base import PageArgs, bp, render, require
from web.idempotency import idempotent
from web.schemas.audit import audit_rows
from web.steer import parse_since


class AuditPageArgs(PageArgs):
    who = fields.Str(load_default="", validate=validate.Length(max=200))
    action = fields.Str(load_default="", validate=validate.Length(max=64))
    bead = fields.Str(load_default="", validate=validate.Length(max=520))
    #: an ISO time or a date (the form's datetime-local field sends `2026-12-04T12:00`)
    since = fields.Str(load_default="", validate=validate.Length(max=40))
    limit = fields.Int(load_default=200, validate=validate.Range(min=1, max=10_000))


audit_page_args = AuditPageArgs()


# -- people ------------------------------------------------------------------------------------------

def _people_page(**context: Any) -> str:
    return render("people.html", "people", people=humans.people(g.project), roles=humans.ROLES, **context)


@bp.get("/people")
def people() -> ResponseReturnValue:
    require_role(acting_human(), "viewer")  # a workspace's read-only session reads no persons (as its token)
    return _people_page()


@bp.post("/people")
@idempotent
def add_person() -> ResponseReturnValue:
    """An admin adds a person; the page shows their invite link once."""
    person = require_role(acting_human(), "admin")
    form = {k: (request.form.get(k) or "").strip()[:300] for k in ("name", "email", "role")}
    try:
        row, invite = humans.add(g.project, form["name"], form["email"], form["role"] or "lead", person)
    except (InvalidInput, humans.HumanTaken) as exc:
        return _people_page(message=exc.message), exc.status_code
    url = request.host_url.rstrip("/") + url_for("dashboard.invite", token=invite)
    made = {**asdict(humans.human_view(row)), "url": url, "invite_expires_at": iso(row.invite_expires_ts)}
    return _people_page(invite=made), 201


@bp.post("/people/<name>/remove")
@idempotent
def remove_person(name: str) -> ResponseReturnValue:
    """An admin removes a person: their token and sessions end at once."""
    require_role(acting_human(), "admin")
    humans.remove(g.project, name)
    return redirect(url_for("dashboard.people"), 303)


# -- steering agents -------------------------------------------------------------------------------

@bp.post("/team/<alias>/pause")
@idempotent
def pause(alias: str) -> ResponseReturnValue:
    """Pause an agent from the team page: its `wire claim` refuses new claims until resumed."""
    require("lead")
    reason = (request.form.get("reason") or "").strip()
    steer.pause(store(), g.project, None, actor(), alias, reason)
    return redirect(url_for("dashboard.team"), 303)


@bp.post("/team/<alias>/resume")
@idempotent
def resume(alias: str) -> ResponseReturnValue:
    require("lead")
    steer.resume(store(), g.project, None, actor(), alias)
    return redirect(url_for("dashboard.team"), 303)


# -- the audit log -----------------------------------------------------------------------------------

def _audit_rows() -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The filters of the audit page (and its exports) and the rows they select."""
    require("viewer")  # a person: a workspace's read-only session is refused
    a = load_args(audit_page_args)
    try:
        since = parse_since(a["since"]) if a["since"] else None
    except ValidationError as exc:
        raise ValidationError({"since": exc.messages}) from None
    rows = audit.query(g.project.id, since, a["who"] or None, a["bead"] or None, a["action"] or None,
                       a["limit"])
    return a, audit_rows.dump(rows)


@bp.get("/audit")
def audit_page() -> ResponseReturnValue:
    a, rows = _audit_rows()
    export = {k: v for k, v in a.items() if v not in ("", None)}
    for row in rows:  # readable text, autoescaped by the template (`tojson` would show \u003c for `<`)
        row["detail_text"] = json.dumps(row["detail"], ensure_ascii=False, sort_keys=True)
    return render("audit.html", "audit", rows=rows, a=a, export=export)


@bp.get("/audit.json")
def audit_json() -> ResponseReturnValue:
    return jsonify(_audit_rows()[1])


@bp.get("/audit.csv")
def audit_csv() -> ResponseReturnValue:
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
