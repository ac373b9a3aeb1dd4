"""What the chat routes answer (web/chat.py): a message posted, the replies waited for, the pending
conversations and who waits on the caller.

Each schema dumps a domain object of store/mailviews.py; field order is the order of the keys sent.
"""

from __future__ import annotations

from marshmallow import fields

from web.schemas import Open, required_str
from web.schemas.mail import Message


class ChatPosted(Open):
    message = fields.Nested(Message, required=True)
    cursor = required_str()


class ChatMessages(Open):
    messages = fields.List(fields.Nested(Message), required=True)
    cursor = required_str()


class ChatDone(Open):
    waiting = fields.Bool(required=True)

    EXTRA_AFTER = "waiting"  # `with`: the alias no longer waited on


class Waiter(Open):
    alias = required_str()
    seconds = fields.Int(required=True)


class Conversation(Open):
    unread = fields.Int(required=True)
    last = fields.Nested(Message, required=True, allow_none=True)

    EXTRA_AFTER = ""  # `with`: the other side's alias, first


class ChatPending(Open):
    conversations = fields.List(fields.Nested(Conversation), required=True)
    waiting_on_you = fields.List(fields.Nested(Waiter), required=True)


posted, replies, done, pending = ChatPosted(), ChatMessages(), ChatDone(), ChatPending()
