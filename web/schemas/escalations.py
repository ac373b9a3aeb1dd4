"""What the escalation and webhook routes answer (web/escalations.py): store/escalations.py's
`EscalationView` and store/webhooks.py's `WebhookView` and `WebhookTestView`."""

from __future__ import annotations

from marshmallow import fields

from web.schemas import Open, maybe_str, required_str


class Escalation(Open):
    id = fields.Int(required=True)
    from_ = fields.Str(data_key="from", required=True)
    role = required_str()
    human = required_str()
    subject = required_str()
    situation = required_str()
    options = fields.List(fields.Str(), required=True)
    severity = required_str()
    status = required_str()
    response = required_str()
    note = required_str()
    responder = required_str()
    created_at = required_str()
    remind_at = required_str()
    expires_at = required_str()
    reannounced_at = maybe_str()
    answered_at = maybe_str()
    expired_at = maybe_str()
    context = fields.Dict()


class Webhook(Open):
    url = maybe_str()
    updated_at = fields.Str(allow_none=True)


class WebhookTest(Open):
    url = required_str()
    delivered = fields.Bool(required=True)
    error = fields.Str(required=True, allow_none=True)


escalation, escalations, webhook, webhook_test = Escalation(), Escalation(many=True), Webhook(), WebhookTest()
