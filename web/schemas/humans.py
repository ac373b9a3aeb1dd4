"""What the persons' routes answer (web/humans.py), and a dashboard login link (web/dashboard_login.py):
the views of store/humans.py and store/sessions.py."""

from __future__ import annotations

from marshmallow import fields

from web.schemas import Open, required_str


class Human(Open):
    name = required_str()
    email = required_str()
    role = required_str()  # viewer | lead | admin
    joined = fields.Bool(required=True)
    invite_pending = fields.Bool(required=True)
    created_at = required_str()
    created_by = required_str()


class HumanInvite(Human):
    project = required_str()
    invite = required_str()
    invite_path = required_str()
    invite_expires_at = required_str()


class HumanRemoved(Open):
    name = required_str()
    removed = fields.Bool(required=True)


class HumanMe(Open):
    name = required_str()
    role = required_str()
    credential = required_str()  # project_key | personal_token
    project = required_str()
    projects = fields.List(fields.Dict(), required=True)


class Redeemed(Open):
    name = required_str()
    role = required_str()
    project = required_str()
    token = required_str()


class DashboardLink(Open):
    token = required_str()
    path = required_str()
    access = required_str()  # human | viewer
    project = required_str()
    expires_at = required_str()


humans, human_invite, human_removed, human_me = Human(many=True), HumanInvite(), HumanRemoved(), HumanMe()
redeemed, dashboard_link = Redeemed(), DashboardLink()
