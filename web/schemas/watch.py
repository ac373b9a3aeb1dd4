"""What `GET /v1/watch` answers (web/chat.py): banner items, who waits on the caller, ready work.

Banner items and the waiters of a banner are the dicts the banner header carries (store/messages.py
`banner`); ready work is built by store/readiness.py. The schemas describe them and send them as they
are (`Given`) or field by field (the waiters, whose shape the schema holds whole).
"""

from __future__ import annotations

from marshmallow import fields

from web.schemas import Given, Open, maybe_str, required_str
from web.schemas.chat import Waiter


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
    items = Given(BannerItem, many=True, required=True)
    waiting = fields.List(fields.Nested(Waiter), required=True)
    #: with `ready=1` only
    ready = Given(ReadyNews, many=True)
    cursor = fields.Str()


watch = Watch()
