"""Identity and presence: health, init, whoami, status, workspaces."""

from __future__ import annotations

import hmac
import ipaddress
import socket

from flask import Blueprint, g, jsonify, request
from marshmallow import Schema, fields, validate

from actors.mailbox import rebuild_mailboxes
from store.db import ping
from store.teamviews import Health
from store.workspaces import init_workspace, status, team
from store.workspaces import whoami as caller
from web.apidoc import doc
from web.common import bearer, limit_ip, load, seen_entry, store, workspace_or_human
from web.idempotency import idempotent
from web.schemas import identity as s

bp = Blueprint("identity", __name__, url_prefix="/v1")


#: A role name (a playbook's): letters, digits, '-' and '_'.
ROLE = validate.Regexp(r"^[A-Za-z0-9_-]{1,64}\Z")


class InitSchema(Schema):
    project = fields.Str(required=True, validate=validate.Length(min=1, max=64))
    repo_origin = fields.Str(required=True, validate=validate.Length(min=1, max=500))
    alias = fields.Str(load_default=None, allow_none=True, validate=validate.Length(min=1, max=64))
    #: None keeps the role on re-init; a new workspace defaults to developer
    role = fields.Str(load_default=None, allow_none=True, validate=ROLE)
    human = fields.Str(load_default="", validate=validate.Length(max=100))
    hostname = fields.Str(load_default="", validate=validate.Length(max=255))
    path = fields.Str(load_default="", validate=validate.Length(max=1024))
    branch = fields.Str(load_default="", validate=validate.Length(max=200))


init_schema = InitSchema()


@bp.get("/health")
@doc("Health of Redis and the database", "none", s.Health, more={503: s.Health})
def health():
    redis, database = store().redis.ping(), ping()
    ok = redis == database == "ok"
    return jsonify(s.health.dump(Health("ok" if ok else "degraded", redis, database))), 200 if ok else 503


@bp.post("/init")
@doc("Register a worktree (create or join a project)", "none", s.Init, ok=201, body=init_schema, errors=(403,
     409, 410), more={200: s.Init})
@idempotent
def init():
    limit_ip()  # no token to charge yet: the caller's address pays
    args = load(init_schema)
    result = init_workspace(store(), args["project"], bearer(), args["repo_origin"], args["alias"],
                            args["role"], args["human"], args["hostname"], args["path"],
                            may_create=_may_create_project(), branch=args["branch"], seen=seen_entry())
    if result.rebuild:  # the first beat found the mailboxes not built (new or flushed Redis)
        rebuild_mailboxes.send(result.project.id)
    return jsonify(s.init.dump(result)), 201 if result.created else 200


#: Request header carrying the instance's admin token (`Settings.admin_token`) to create a project.
ADMIN_TOKEN_HEADER = "X-Wire-Admin-Token"


def _may_create_project() -> bool:
    """Anyone on a server bound to loopback (or with open sign-up), else only with the admin token."""
    settings = store().settings
    given, wanted = request.headers.get(ADMIN_TOKEN_HEADER, ""), settings.admin_token
    if wanted and given and hmac.compare_digest(given.encode(), wanted.encode()):
        return True
    return settings.open_signup if settings.open_signup is not None else bound_to_loopback()


def bound_to_loopback() -> bool:
    """Whether the server listens on a loopback address only, as gunicorn tells the app: its
    `SERVER_NAME` is the address the listener is bound to (0.0.0.0 for every interface), never the
    caller's Host header, except on a Unix socket, which is therefore counted as exposed. The test
    client and the development server say `localhost`."""
    sock = request.environ.get("gunicorn.socket")
    if sock is not None and getattr(sock, "family", None) == socket.AF_UNIX:
        return False
    name = request.environ.get("SERVER_NAME", "")
    if name == "localhost":
        return sock is None
    try:
        return ipaddress.ip_address(name.strip("[]")).is_loopback
    except ValueError:
        return False


#: the routes that act as a workspace (every call authenticates and refreshes presence); a person may list the
#: team (web/common.py HUMAN_ROLES)
team_bp = Blueprint("team", __name__, url_prefix="/v1")
team_bp.before_request(workspace_or_human)


@team_bp.get("/whoami")
@doc("The caller's workspace", "workspace", s.Me)
def whoami():
    return jsonify(s.me.dump(caller(store(), g.project, g.ws)))


@team_bp.get("/status")
@doc("The caller and the team", "workspace", s.Status)
def team_status():
    return jsonify(s.status.dump(status(store(), g.project, g.ws)))


@team_bp.get("/workspaces")
@doc("The team", "either", s.Workspace, many=True)
def workspaces():
    return jsonify(s.team.dump(team(store(), g.project)))

