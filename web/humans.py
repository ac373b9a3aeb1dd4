"""Personal human accounts (store/humans.py): admins add and remove persons; a person redeems an invite
for a personal token. `bp` takes a person (list and whoami: any role; add, invite, remove: an admin);
`invite_bp` takes no bearer (the invite is the credential; a person's token may come along to join
the new project to their login)."""

from __future__ import annotations

from flask import Blueprint, g, jsonify
from marshmallow import Schema, fields, validate

from store import humans
from store.humans import Person
from web.apidoc import doc
from web.common import acting_human, admin, bearer, limit_ip, load
from web.idempotency import idempotent
from web.schemas import humans as s

bp = Blueprint("humans", __name__, url_prefix="/v1")
bp.before_request(admin)
invite_bp = Blueprint("invites", __name__, url_prefix="/v1")


class AddSchema(Schema):
    name = fields.Str(required=True, validate=validate.Length(min=1, max=64))
    email = fields.Str(load_default="", validate=validate.Length(max=254))
    role = fields.Str(load_default="lead", validate=validate.OneOf(humans.ROLES))


class RedeemSchema(Schema):
    invite = fields.Str(required=True, validate=validate.Length(min=1, max=200))


add_schema, redeem_schema = AddSchema(), RedeemSchema()


@bp.get("/humans")
@doc("The persons of the project", "key", s.Human, many=True)
def list_humans():
    return jsonify(s.humans.dump(humans.people(g.project)))


@bp.post("/humans")
@doc("Add a person (an admin): their one-time invite", "key", s.HumanInvite, ok=201, body=add_schema,
     errors=(409,))
@idempotent
def add_human():
    a = load(add_schema)
    row, invite = humans.add(g.project, a["name"], a["email"], a["role"], _caller())
    return jsonify(s.human_invite.dump(humans.invite_view(row, g.project, invite))), 201


@bp.post("/humans/<name>/invite")
@doc("A new invite for a person (the old one stops working)", "key", s.HumanInvite, ok=201, errors=(404,))
@idempotent
def reinvite(name: str):
    row, invite = humans.reinvite(g.project, name)
    return jsonify(s.human_invite.dump(humans.invite_view(row, g.project, invite))), 201


@bp.delete("/humans/<name>")
@doc("Remove a person: their token and sessions end at once", "key", s.HumanRemoved)
@idempotent
def remove_human(name: str):
    return jsonify(s.human_removed.dump(humans.remove(g.project, name)))


@bp.get("/humans/me")
@doc("The calling person and every project of their login", "key", s.HumanMe)
def whoami():
    return jsonify(s.human_me.dump(humans.me(_caller(), g.project)))


@invite_bp.post("/invites/redeem")
@doc("Redeem an invite: the person's token, shown once", "none", s.Redeemed, ok=201, body=redeem_schema,
     errors=(401,))
@idempotent
def redeem():
    """The invite's personal token, shown this once (`wire human login LINK`)."""
    limit_ip()  # guessing invites costs the caller's address its budget
    a = load(redeem_schema)
    joined = _person_of_bearer()
    row, token = humans.redeem_invite(a["invite"].rsplit("/", 1)[-1], joined)
    return jsonify(s.redeemed.dump(humans.redeemed(row, token))), 201


def _caller() -> Person:
    person = acting_human()
    assert person is not None  # `admin` lets only a person (the project key or a personal token) in
    return person


def _person_of_bearer() -> Person | None:
    """The person of a personal token sent along, whose login the new project joins (else None)."""
    token = bearer()
    if not token.startswith(humans.HUMAN_TOKEN_PREFIX):
        return None
    return humans.authenticate_token(token)[0]
