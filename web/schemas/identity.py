"""What the identity and team routes answer (web/identity.py): the caller, the team, an init, health.

Each schema dumps a domain object of store/teamviews.py; field order is the order of the keys sent.
"""

from __future__ import annotations

from marshmallow import fields

from web.schemas import Open, maybe_str, required_str
from web.schemas.beads import Claim


class Workspace(Open):
    id = fields.Int(required=True)
    alias = required_str()
    role = required_str()
    human = required_str()
    repo = required_str()
    hostname = required_str()
    path = required_str()
    branch = required_str()
    online = fields.Bool(required=True)
    status = required_str()
    last_seen = maybe_str()
    claims = fields.List(fields.Nested(Claim), required=True)
    idle_with_claim = fields.Bool()
    idle_since = fields.Str()
    idle_minutes = fields.Int()


class ProjectRef(Open):
    id = fields.Int(required=True)
    slug = required_str()


class Project(ProjectRef):
    name = fields.Str()
    stale_claim_seconds = fields.Int(allow_none=True)


class Me(Workspace):
    project = fields.Nested(ProjectRef, required=True)


class Status(Open):
    project = fields.Nested(Project, required=True)
    me = fields.Nested(Workspace, required=True)
    team = fields.List(fields.Nested(Workspace), required=True)


class Init(Open):
    project = fields.Nested(Project, required=True)
    workspace = fields.Nested(Workspace, required=True)
    token = required_str()
    project_key = fields.Str()


class Health(Open):
    status = required_str()
    redis = required_str()
    database = required_str()


me, status, team, init, health = Me(), Status(), Workspace(many=True), Init(), Health()
