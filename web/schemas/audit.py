"""What the audit log answers (`GET /v1/audit` in web/steer.py, and the dashboard's audit page and
exports): store/audit.py's `AuditRowView`."""

from __future__ import annotations

from marshmallow import fields

from web.schemas import Open, required_str


class AuditRow(Open):
    id = fields.Int(required=True)
    at = required_str()
    who = required_str()
    who_kind = required_str()  # agent | human | system
    credential = required_str()
    action = required_str()
    bead = required_str()
    detail = fields.Dict(required=True)
    address = required_str()
    host = required_str()


audit_rows = AuditRow(many=True)
