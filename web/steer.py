"""Steering and accountability: binding assignment, pausing an agent, the audit log.

Open to a workspace token (a coordinator may steer; store/steer.py checks) and to human credentials
(the project key). The acting party is named once, by web/common.py `actor()`.
"""

from __future__ import annotations

import datetime as dt
import math

from flask import Blueprint, g, jsonify
from marshmallow import Schema, ValidationError, fields, validate

from store import audit, steer
from store.errors import Forbidden
from web.common import actor, key_or_workspace, load, load_args, store
from web.idempotency import idempotent

bp = Blueprint("steer", __name__, url_prefix="/v1")
bp.before_request(key_or_workspace)

Reason = lambda **kw: fields.Str(validate=validate.Length(max=steer.MAX_REASON), **kw)


class AssignSchema(Schema):
    alias = fields.Str(required=True, validate=validate.Length(min=1, max=64))
    reason = Reason(load_default="")


class PauseSchema(Schema):
    reason = Reason(load_default="")


class Since(fields.Field):
    """An ISO 8601 time (`2026-12-04T12:00:00Z`, a date) or epoch seconds -> epoch seconds."""

    def _deserialize(self, value, attr, data, **kwargs):  # noqa: ANN001, ANN202 - marshmallow's signature
        return parse_since(str(value))


def parse_since(text: str) -> float:
    text, bad = text.strip(), ValidationError("a time like 2026-12-04T12:00:00Z, a date, or epoch seconds")
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
            seconds = (when if when.tzinfo else when.replace(tzinfo=dt.timezone.utc)).timestamp()
        except (ValueError, OverflowError):
            raise bad from None
    if not math.isfinite(seconds):
        raise bad
    return seconds


class AuditArgs(Schema):
    since = Since()
    who = fields.Str(validate=validate.Length(min=1, max=200))
    bead = fields.Str(validate=validate.Length(min=1, max=520))
    action = fields.Str(validate=validate.Length(min=1, max=64))
    limit = fields.Int(load_default=200, validate=validate.Range(min=1, max=audit.MAX_LIMIT))


assign_schema, pause_schema, audit_args = AssignSchema(), PauseSchema(), AuditArgs()


@bp.post("/beads/<path:ref>/assign")
@idempotent
def assign(ref: str):
    a = load(assign_schema)
    return jsonify(steer.assign(g.project, g.ws, actor(), ref, a["alias"], a["reason"]))


@bp.delete("/beads/<path:ref>/assign")
@idempotent
def unassign(ref: str):
    return jsonify(steer.unassign(g.project, g.ws, actor(), ref))


@bp.post("/workspaces/<alias>/pause")
@idempotent
def pause(alias: str):
    return jsonify(steer.pause(store(), g.project, g.ws, actor(), alias, load(pause_schema)["reason"]))


@bp.delete("/workspaces/<alias>/pause")
@idempotent
def resume(alias: str):
    return jsonify(steer.resume(store(), g.project, g.ws, actor(), alias))


@bp.get("/audit")
def audit_log():
    a = load_args(audit_args)
    if not steer.may_steer(actor(), g.ws):
        raise Forbidden("the audit log is for humans and coordinators")
    return jsonify(audit.query(g.project.id, a.get("since"), a.get("who"), a.get("bead"), a.get("action"),
                               a["limit"]))
