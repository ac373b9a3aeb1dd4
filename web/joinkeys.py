"""Join keys: `POST /v1/join-keys` makes a single-use key that lets one agent join this project
(`wire init --join-key KEY`; store/joinkeys.py). For a human (the project key) or a coordinator."""

from __future__ import annotations

from flask import Blueprint, g, jsonify
from flask.typing import ResponseReturnValue

from store import joinkeys
from store.errors import Forbidden
from web.apidoc import doc
from web.common import key_or_workspace
from web.idempotency import idempotent
from web.schemas import joinkeys as s

bp = Blueprint("joinkeys", __name__, url_prefix="/v1")
bp.before_request(key_or_workspace)


@bp.post("/join-keys")
@doc("A single-use join key (24 h) for one agent (project key or a coordinator)", "either", s.JoinKeyMade,
     ok=201)
@idempotent
def create() -> ResponseReturnValue:
    if g.ws is not None and g.ws.role != joinkeys.COORDINATOR:
        raise Forbidden("only a coordinator or a human with the project key makes join keys")
    made = joinkeys.create(g.project, "project key" if g.ws is None else g.ws.alias)
    return jsonify(s.join_key_made.dump(made)), 201
