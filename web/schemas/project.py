"""What the project settings routes answer (web/project.py): store/project_settings.py `Settings`."""

from __future__ import annotations

from marshmallow import fields

from web.schemas import Open, required_str


class ProjectSettings(Open):
    ready_scope = required_str()
    idle_claim_minutes = fields.Int(required=True)


settings = ProjectSettings()
