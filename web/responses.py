"""Marshmallow schemas of the answers of the resources not moved to web/schemas/ yet.

These views still build their answers in `store/` as plain dicts; the schemas here only describe
them for the OpenAPI document (web/openapi.py), and tests/test_openapi.py checks real answers against
them. A resource moves to `web/schemas/<resource>.py` when its store returns domain objects that its
schemas dump (as beads and handoffs have).
"""

from __future__ import annotations

from marshmallow import fields

from web.schemas import Open, maybe_str, required_str
from web.schemas.beads import Claim


class Workspace(Open):
    id = fields.Int(required=True)
    alias = required_str()
    role = required_str()
    human = required_str()
    repo = required_str()
    hostname = required_str()
    path = required_str()
    branch = required_str()
    online = fields.Bool(required=True)
    status = required_str()
    last_seen = maybe_str()
    claims = fields.List(fields.Nested(Claim), required=True)
    idle_with_claim = fields.Bool()
    idle_since = fields.Str()
    idle_minutes = fields.Int()


class ProjectRef(Open):
    id = fields.Int(required=True)
    slug = required_str()


class Project(ProjectRef):
    name = fields.Str()
    stale_claim_seconds = fields.Int(allow_none=True)


class Me(Workspace):
    project = fields.Nested(ProjectRef, required=True)


class Status(Open):
    project = fields.Nested(Project, required=True)
    me = fields.Nested(Workspace, required=True)
    team = fields.List(fields.Nested(Workspace), required=True)


class Init(Open):
    project = fields.Nested(Project, required=True)
    workspace = fields.Nested(Workspace, required=True)
    token = required_str()
    project_key = fields.Str()


class Health(Open):
    status = required_str()
    redis = required_str()
    database = required_str()


class Subscribed(Open):
    bead = required_str()
    subscribed = fields.Bool(required=True)


class Message(Open):
    id = fields.Int(required=True)
    from_ = fields.Str(data_key="from", required=True, allow_none=True)  # `from` is a keyword
    kind = required_str()
    to = fields.List(fields.Str(), required=True)
    subject = required_str()
    body = required_str()
    thread = required_str()
    priority = required_str()
    created_at = required_str()
    acked = fields.Bool()
    data = fields.Dict(required=True)


class Sent(Open):
    message = fields.Nested(Message, required=True)
    recipients = fields.List(fields.Str(), required=True)


class Acked(Open):
    id = fields.Int(required=True)
    acked = fields.Bool(required=True)


class ChatPosted(Open):
    message = fields.Nested(Message, required=True)
    cursor = required_str()


class ChatMessages(Open):
    messages = fields.List(fields.Nested(Message), required=True)
    cursor = required_str()


class ChatDone(Open):
    waiting = fields.Bool(required=True)


class Waiter(Open):
    alias = required_str()
    seconds = fields.Int(required=True)


class Conversation(Open):
    unread = fields.Int(required=True)
    last = fields.Nested(Message, required=True, allow_none=True)


class ChatPending(Open):
    conversations = fields.List(fields.Nested(Conversation), required=True)
    waiting_on_you = fields.List(fields.Nested(Waiter), required=True)


class BannerItem(Open):
    id = fields.Int(required=True)
    kind = required_str()
    entry = required_str()  # its mailbox entry id: send the newest shown back in `X-Wire-Seen`


class ReadyNews(Open):
    """A bead that became ready for the watcher (`/v1/watch?ready=1`)."""

    id = required_str()
    repo = required_str()
    title = required_str()
    role = maybe_str()
    why = required_str()


class Watch(Open):
    items = fields.List(fields.Nested(BannerItem), required=True)
    waiting = fields.List(fields.Nested(Waiter), required=True)
    #: with `ready=1` only
    ready = fields.List(fields.Nested(ReadyNews))
    cursor = fields.Str()
