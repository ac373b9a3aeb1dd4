"""Request helpers shared by the blueprints: the JSON body, the store, the caller."""

from __future__ import annotations

from typing import Any

from flask import current_app, g, request
from marshmallow import Schema

from store import Store
from store.errors import BeadwireError, Unauthorized


class BadRequest(BeadwireError):
    """Raised when the body is not a JSON object."""

    status_code = 400
    code = "bad_request"


def store() -> Store:
    return current_app.extensions["beadwire"]


def load(schema: Schema) -> dict[str, Any]:
    """The JSON body validated by `schema` (marshmallow raises ValidationError -> 422)."""
    data = request.get_json(silent=True) if request.content_length else {}
    if not isinstance(data, dict):
        raise BadRequest("the body must be a JSON object (Content-Type: application/json)")
    return schema.load(data)


def load_args(schema: Schema) -> dict[str, Any]:
    return schema.load(request.args.to_dict())


def bearer() -> str:
    header = request.headers.get("Authorization", "")
    return header[7:].strip() if header[:7].lower() == "bearer " else ""


def authenticate() -> None:
    """before_request of the authenticated blueprints: resolve the token, refresh presence."""
    from store.workspaces import authenticate as auth, heartbeat

    token = bearer()
    if not token:
        raise Unauthorized("missing bearer token: run `wire init` in your worktree")
    g.ws, g.project = auth(token)
    heartbeat(store(), g.ws, request.headers.get("X-Wire-Branch", ""), request.headers.get("X-Wire-Host", ""))
