"""Join keys: `POST /v1/join-keys` makes a single-use key that lets one agent join this project
(`wire init --join-key KEY`; store/joinkeys.py). For a human (the project key) or a coordinator."""

from __future__ import annotations

from flask import Blueprint, g, jsonify

from store import joinkeys
from store.errors import Forbidden
from web.common import key_or_workspace
from web.idempotency import idempotent

bp = Blueprint("joinkeys", __name__, url_prefix="/v1")
bp.before_request(key_or_workspace)


@bp.post("/join-keys")
@idempotent
def create():
    if g.ws is not None and g.ws.role != joinkeys.COORDINATOR:
        raise Forbidden("only a coordinator or a human with the project key makes join keys")
    return jsonify(joinkeys.create(g.project, "project key" if g.ws is None else g.ws.alias)), 201
