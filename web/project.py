"""Project settings: any member (or the project key) reads them; a coordinator or the key changes them."""

from __future__ import annotations

from flask import Blueprint, Response, g, jsonify
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from store import project_settings
from web.apidoc import doc
from web.common import key_or_workspace, load
from web.idempotency import idempotent
from web.schemas import project as s

bp = Blueprint("project", __name__, url_prefix="/v1")
bp.before_request(key_or_workspace)


class SettingsSchema(Schema):
    ready_scope = fields.Str(validate=validate.OneOf(project_settings.READY_SCOPES))
    idle_claim_minutes = fields.Int(strict=True, validate=validate.Range(
        min=project_settings.MIN_IDLE_MINUTES, max=project_settings.MAX_IDLE_MINUTES))

    @validates_schema
    def something(self, data: dict, **kwargs: object) -> None:
        if not data:
            raise ValidationError(f"give at least one of {', '.join(project_settings.NAMES)}")


settings_schema = SettingsSchema()


@bp.get("/project/settings")
@doc("The project's settings", "either", s.ProjectSettings)
def show_settings() -> Response:
    return jsonify(s.settings.dump(project_settings.read(g.project.id)))


@bp.patch("/project/settings")
@doc("Change project settings (a coordinator or the project key)", "either", s.ProjectSettings,
     body=settings_schema)
@idempotent
def change_settings() -> Response:
    changes = load(settings_schema)  # before the role check: a bad body is a 422 for anyone
    return jsonify(s.settings.dump(project_settings.update(g.project, g.ws, changes)))
