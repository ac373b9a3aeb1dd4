"""The project event stream: appending events with no SQL fact behind them, reading, and long-lived feeds."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, cast

from store.redis.base import DEFAULT_STREAM_MAXLEN, Entries, RedisBase, compact
from store.redis.client import unavailable
from store.wakeups import Ticket


class Events(RedisBase):
    """Readers and the one direct writer of `Keys.events_key` (publish.lua writes the rest)."""

    @contextlib.contextmanager
    def event_feed(self, project_id: int) -> Iterator[EventFeed]:
        """A reader of the project's event stream that waits without holding a Redis connection
        and reads only when woken (a websocket's whole life: store/wakeups.py)."""
        stream = self.keys.events_key(project_id)
        with self.waker.ticket(self.keys.wake_channel(project_id), stream) as ticket:
            yield EventFeed(self, stream, ticket)

    def recent_events(self, project_id: int, count: int, before: str = "+") -> Entries:
        """The newest events of a project up to `before` (exclusive unless "+"), newest first.

        Raises:
            Unavailable: Redis cannot be reached.
        """
        top = before if before == "+" else f"({before}"
        with unavailable():
            found = self.client.xrevrange(self.keys.events_key(project_id), max=top, count=count)
        return cast(Entries, found)

    def last_event_id(self, project_id: int) -> str:
        """The id of the newest event ("0-0" when none): a cursor that misses nothing from now on."""
        newest = self.recent_events(project_id, 1)
        return newest[0][0] if newest else "0-0"

    def add_event(self, project_id: int, kind: str, payload: dict[str, Any]) -> str:
        """Append an event that has no SQL fact behind it (reservations live only in Redis).

        Raises:
            Unavailable: Redis cannot be reached.
        """
        stream = self.keys.events_key(project_id)
        with unavailable():
            sid = self.client.xadd(stream, {"id": "", "kind": kind, "data": compact(payload)},
                                   maxlen=DEFAULT_STREAM_MAXLEN, approximate=True)
            self._announce(project_id, stream)
        return cast(str, sid)

    def events_stream(self, project_id: int) -> str:
        """The name of the project event stream (what `await_streams` waits on)."""
        return self.keys.events_key(project_id)

    def events_after(self, project_id: int, cursor: str, count: int = 200) -> Entries:
        """Entries of the project event stream after `cursor`, without blocking.

        Raises:
            Unavailable: Redis cannot be reached.
        """
        return self._xread(self.keys.events_key(project_id), cursor, count)


class EventFeed:
    """The project event stream as one long-lived reader sees it (`RedisStore.event_feed`)."""

    #: Most events one read returns (a reader that got this many reads again at once).
    COUNT = 200

    def __init__(self, store: RedisBase, stream: str, ticket: Ticket) -> None:
        self.store, self.stream, self.ticket = store, stream, ticket
        self.due = True  # read at once: events may have come after the caller's cursor

    def read(self, cursor: str, block_ms: int) -> Entries:
        """Events after `cursor`, waiting up to `block_ms` for a wake-up when nothing is due.

        Raises:
            Unavailable: Redis cannot be reached.
        """
        if not self.due and not self.ticket.wait(block_ms / 1000):
            return []
        found = self.store._xread(self.stream, cursor, self.COUNT)
        self.due = len(found) >= self.COUNT
        return found
