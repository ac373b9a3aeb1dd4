"""Escalations to humans: agents raise them, humans (the project key) answer them; the webhook.

Three blueprints by who may call: `bp` acts as a workspace (raise), `read_bp` takes either a person
or a workspace token (list, show), `admin_bp` only a person (answer: a lead; webhook: an admin).
"""

from __future__ import annotations

import logging

from flask import Blueprint, g, jsonify
from marshmallow import Schema, fields, validate

from actors.escalations import deliver_webhook
from store import escalations, webhooks
from web.apidoc import doc
from web.common import acting_human, admin, authenticate, key_or_workspace, load, load_args, store
from web.idempotency import idempotent
from web.schemas import escalations as s

bp = Blueprint("escalations", __name__, url_prefix="/v1")
bp.before_request(authenticate)
read_bp = Blueprint("escalations_read", __name__, url_prefix="/v1")
read_bp.before_request(key_or_workspace)
admin_bp = Blueprint("escalations_admin", __name__, url_prefix="/v1")
admin_bp.before_request(admin)


class LocalContextSchema(Schema):
    """What only the agent's machine knows (the CLI collects it)."""

    branch = fields.Str(load_default="", validate=validate.Length(max=200))
    git_status = fields.List(fields.Str(validate=validate.Length(max=1000)), load_default=list,
                             validate=validate.Length(max=escalations.MAX_GIT_LINES))
    #: porcelain lines left out because there were more than MAX_GIT_LINES
    git_status_more = fields.Int(load_default=0, validate=validate.Range(min=0, max=1_000_000))


class EscalateSchema(Schema):
    subject = fields.Str(required=True, validate=validate.Length(min=1, max=300))
    situation = fields.Str(required=True, validate=validate.Length(min=1, max=escalations.MAX_SITUATION))
    options = fields.List(fields.Str(validate=validate.Length(min=1, max=500)), load_default=list,
                          validate=validate.Length(max=escalations.MAX_OPTIONS))
    severity = fields.Str(load_default="normal", validate=validate.OneOf(escalations.SEVERITIES))
    ttl = fields.Int(load_default=escalations.DEFAULT_TTL,
                     validate=validate.Range(min=escalations.MIN_TTL, max=escalations.MAX_TTL))
    context = fields.Nested(LocalContextSchema, load_default=dict)


class ListArgs(Schema):
    status = fields.Str(load_default=None, validate=validate.OneOf(escalations.STATUSES))
    mine = fields.Bool(load_default=False)
    limit = fields.Int(load_default=50, validate=validate.Range(min=1, max=500))


class RespondSchema(Schema):
    response = fields.Str(required=True, validate=validate.Length(min=1, max=escalations.MAX_RESPONSE))
    note = fields.Str(load_default="", validate=validate.Length(max=4000))
    by = fields.Str(load_default="", validate=validate.Length(max=100))


class WebhookSchema(Schema):
    url = fields.Str(required=True, allow_none=True, validate=validate.Length(max=webhooks.MAX_URL))


escalate_schema, list_args, respond_schema, webhook_schema = (EscalateSchema(), ListArgs(), RespondSchema(),
                                                              WebhookSchema())


@bp.post("/escalations")
@doc("Ask a human", "workspace", s.Escalation, ok=201, body=escalate_schema)
@idempotent
def escalate():
    a = load(escalate_schema)
    answer, posts = escalations.create(store(), g.project, g.ws, a["subject"], a["situation"], a["options"],
                                       a["severity"], a["ttl"], a["context"])
    _send_posts(posts)
    return jsonify(s.escalation.dump(answer)), 201


@read_bp.get("/escalations")
@doc("Escalations the caller may see", "either", s.Escalation, many=True, query=list_args)
def list_escalations():
    a = load_args(list_args)
    return jsonify(s.escalations.dump(escalations.list_escalations(g.project, g.ws, a["status"], a["mine"],
                                                                   a["limit"])))


@read_bp.get("/escalations/<int:escalation_id>")
@doc("One escalation with its context", "either", s.Escalation)
def show(escalation_id: int):
    return jsonify(s.escalation.dump(escalations.get_escalation(g.project, g.ws, escalation_id)))


@admin_bp.post("/escalations/<int:escalation_id>/respond")
@doc("Answer an escalation", "key", s.Escalation, body=respond_schema, errors=(409,))
@idempotent
def respond(escalation_id: int):
    a = load(respond_schema)
    person = acting_human()
    assert person is not None  # `admin` lets only a person (the project key or a personal token) in
    # a personal credential answers in its person's name; the shared project key may say who it is
    by = a["by"] if person.human_id is None else person.name
    answer = escalations.respond(g.project, escalation_id, a["response"], a["note"], by)
    return jsonify(s.escalation.dump(answer))


@admin_bp.get("/project/webhook")
@doc("The project's webhook", "key", s.Webhook)
def get_webhook():
    return jsonify(s.webhook.dump(webhooks.webhook_view(g.project)))


@admin_bp.put("/project/webhook")
@doc("Set or remove the webhook", "key", s.Webhook, body=webhook_schema)
@idempotent
def put_webhook():
    allow_private = store().settings.webhook_allow_private
    return jsonify(s.webhook.dump(webhooks.set_url(g.project, load(webhook_schema)["url"], allow_private)))


@admin_bp.delete("/project/webhook")
@doc("Remove the webhook", "key", s.Webhook)
@idempotent
def delete_webhook():
    return jsonify(s.webhook.dump(webhooks.set_url(g.project, None)))


@admin_bp.post("/project/webhook/test")
@doc("Post a test message once, now, and tell the outcome", "key", s.WebhookTest, errors=(409,))
@idempotent
def test_webhook():
    """One synchronous try (at most the webhook timeout), so the human sees the real outcome."""
    return jsonify(s.webhook_test.dump(webhooks.try_test(g.project, store().settings.webhook_allow_private)))


def _send_posts(ids: list[int]) -> None:
    """Enqueue committed webhook posts; if the broker is down, the escalation sweep sends them."""
    for post_id in ids:
        try:
            deliver_webhook.send(post_id)
        except Exception:  # noqa: BLE001 - the post is committed; the sweep retries it
            logging.getLogger("beadwire.web").warning("could not enqueue webhook post %s", post_id)
