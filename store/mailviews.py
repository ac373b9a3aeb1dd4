"""Mail and chat as the API shows them: domain objects.

The store answers with these; the schemas in web/schemas/mail.py and web/schemas/chat.py dump them,
so each shape is written once, there. Field order is the order of the keys sent; a field holding
`ABSENT` is left out. Banner items and the waiters of a banner stay dicts: the banner header
(web/common.py) sends them as they are, and `watch` passes them on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from store.beadviews import ABSENT


@dataclass
class MessageView:
    """A message (mail, notice or chat); `acked` only where the caller received it."""

    id: int
    kind: str
    from_: str | None  # the sender's alias, None for the server's notices
    to: list[str]
    subject: str
    body: str
    thread: str
    priority: str
    created_at: str | None  # never None: `iso` of a row's timestamp
    data: dict[str, Any]
    acked: Any = ABSENT

    def as_dict(self) -> dict[str, Any]:
        """The message as the mailbox and event streams carry it: the keys of the API, in its order."""
        return {("from" if name == "from_" else name): value for name, value in vars(self).items()
                if value is not ABSENT}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MessageView:
        """A message read back from a stream entry (`as_dict`)."""
        return cls(**{("from_" if name == "from" else name): value for name, value in data.items()})


@dataclass
class Sent:
    message: MessageView
    recipients: list[str]


@dataclass
class Acked:
    id: int
    acked: bool


@dataclass
class Subscribed:
    bead: str
    subscribed: bool


@dataclass
class ChatPosted:
    """A chat message sent, and the sender's mailbox cursor to wait for the reply from."""

    message: MessageView
    cursor: str | None  # None only without Redis (`outbox.publish_pending`)


@dataclass
class ChatMessages:
    messages: list[MessageView]
    cursor: str


@dataclass
class ChatDone:
    waiting: bool
    extra: dict[str, Any]  # {"with": alias} (`with` is a keyword)


@dataclass
class Waiter:
    """Someone blocked waiting for the caller's reply, for how long."""

    alias: str
    seconds: int


@dataclass
class Conversation:
    extra: dict[str, Any]  # {"with": alias}, sent first
    unread: int = 0
    last: MessageView | None = None


@dataclass
class ChatPending:
    conversations: list[Conversation]
    waiting_on_you: list[Waiter] = field(default_factory=list)
