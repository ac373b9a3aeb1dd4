"""What the mail routes answer (web/mail.py): messages, a send, an ack, a subscription.

Each schema dumps a domain object of store/mailviews.py; field order is the order of the keys sent.
"""

from __future__ import annotations

from marshmallow import fields

from web.schemas import Open, required_str


class Message(Open):
    id = fields.Int(required=True)
    kind = required_str()
    from_ = fields.Str(data_key="from", required=True, allow_none=True)  # `from` is a keyword
    to = fields.List(fields.Str(), required=True)
    subject = required_str()
    body = required_str()
    thread = required_str()
    priority = required_str()
    created_at = required_str()
    data = fields.Dict(required=True)
    acked = fields.Bool()


class Sent(Open):
    message = fields.Nested(Message, required=True)
    recipients = fields.List(fields.Str(), required=True)


class Acked(Open):
    id = fields.Int(required=True)
    acked = fields.Bool(required=True)


class Subscribed(Open):
    bead = required_str()
    subscribed = fields.Bool(required=True)


messages, sent, acked, subscribed = Message(many=True), Sent(), Acked(), Subscribed()
