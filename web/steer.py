"""Steering and accountability: binding assignment, pausing an agent, the audit log.

Open to a workspace token (a coordinator may steer; store/steer.py checks) and to human credentials
(the project key). The acting party is named once, by web/common.py `actor()`.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from flask import Blueprint, g, jsonify
from marshmallow import Schema, ValidationError, fields, validate

from store import audit, steer
from store.errors import Forbidden
from web.apidoc import doc
from web.common import actor, key_or_workspace, load, load_args, store
from web.idempotency import idempotent
from web.schemas import audit as audit_schemas
from web.schemas import beads as s
from web.schemas import steer as steer_schemas

bp = Blueprint("steer", __name__, url_prefix="/v1")
bp.before_request(key_or_workspace)

def Reason(**kw: Any) -> fields.Str:  # a field factory, named like the field classes it stands beside
    return fields.Str(validate=validate.Length(max=steer.MAX_REASON), **kw)


class AssignSchema(Schema):
    alias = fields.Str(required=True, validate=validate.Length(min=1, max=64))
    reason = Reason(load_default="")


class PauseSchema(Schema):
    reason = Reason(load_default="")


class Since(fields.Field):
    """An ISO 8601 time (`2026-12-04T12:00:00Z`, a date) or epoch seconds -> epoch seconds."""

    def _deserialize(self, value, attr, data, **kwargs):
        return parse_since(str(value))


def parse_since(text: str) -> float:
    text, bad = text.strip(), ValidationError("a time like 2026-12-04T12:00:00Z, a date, or epoch seconds")
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
            seconds = (when if when.tzinfo else when.replace(tzinfo=dt.UTC)).timestamp()
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
@doc("Assign a bead to an agent (a coordinator or a human): it heads the agent's ready, "
     "others' claims are refused", "either", s.Bead, body=assign_schema, errors=(404, 409))
@idempotent
def assign(ref: str):
    a = load(assign_schema)
    return jsonify(s.bead.dump(steer.assign(g.project, g.ws, actor(), ref, a["alias"], a["reason"])))


@bp.delete("/beads/<path:ref>/assign")
@doc("Remove a bead's assignment (a coordinator or a human)", "either", s.Bead, errors=(404, 409))
@idempotent
def unassign(ref: str):
    return jsonify(s.bead.dump(steer.unassign(g.project, g.ws, actor(), ref)))


@bp.post("/workspaces/<alias>/pause")
@doc("Pause an agent: it may claim nothing new until resumed (a coordinator or a human)", "either",
     steer_schemas.PauseState, body=pause_schema, errors=(404,))
@idempotent
def pause(alias: str):
    paused = steer.pause(store(), g.project, g.ws, actor(), alias, load(pause_schema)["reason"])
    return jsonify(steer_schemas.pause_state.dump(paused))


@bp.delete("/workspaces/<alias>/pause")
@doc("Resume a paused agent (a coordinator or a human)", "either", steer_schemas.PauseState, errors=(404,))
@idempotent
def resume(alias: str):
    return jsonify(steer_schemas.pause_state.dump(steer.resume(store(), g.project, g.ws, actor(), alias)))


@bp.get("/audit")
@doc("The audit log, newest first (a coordinator or a human)", "either", audit_schemas.AuditRow, many=True,
     query=audit_args)
def audit_log():
    a = load_args(audit_args)
    if not steer.may_steer(actor(), g.ws):
        raise Forbidden("the audit log is for humans and coordinators")
    rows = audit.query(g.project.id, a.get("since"), a.get("who"), a.get("bead"), a.get("action"), a["limit"])
    return jsonify(audit_schemas.audit_rows.dump(rows))
