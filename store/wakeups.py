"""Wake-ups for waiters: one Pub/Sub connection per process instead of one blocked Redis read per waiter.

Every script that adds to a stream a waiter may block on (a mailbox, the project event stream) also
publishes the stream's name on the project's wake channel (`Keys.wake_channel`). A process holds one
`Waker`: one Pub/Sub connection subscribed to the wake channels of the projects it has waiters in,
and a listener (a thread, a greenlet under gevent) that sets the `Ticket` of every waiter of the
stream named. A waiter takes a ticket *before* reading the stream without blocking, then waits on
the ticket and reads again when it is set, so an entry added between its read and its wait still
wakes it. 5,000 idle waiters thus cost 5,000 events in memory and one Redis connection, not 5,000
connections each blocked in XREAD.

A mailbox announcement also carries the entry it announces (publish.lua: `<stream>\n<entry id>\n<id>
\n<kind>\n<data>`), so a waiter reading a stream from a cursor (`Waker.await_entries`) takes what woke
it from its ticket instead of reading the stream again: one Redis round trip less between a reply and
its waiter. It reads the stream whenever it cannot be sure the ticket holds every entry: an
announcement came bare (another script, reclaim.lua, or a payload too big to copy to every process),
or its channel was not subscribed for the whole wait (a subscription not confirmed in time, a lost
connection).

When the Pub/Sub connection fails, every waiter is woken (it reads again, and gets the 503 a dead
Redis means) and the channels are subscribed again on a new connection.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import redis

log = logging.getLogger("beadwire.wakeups")

#: Seconds a channel nobody waits on stays subscribed (waiters come back slice after slice).
DEFAULT_LINGER = 60.0
#: Seconds the listener runs on with no channel at all before it stops (started again on demand).
DEFAULT_IDLE_EXIT = 30.0
#: Seconds a new waiter waits for Redis to confirm its channel's subscription before reading.
DEFAULT_CONFIRM_TIMEOUT = 2.0
#: Seconds between reconnection attempts while Redis is unreachable.
DEFAULT_RETRY_PAUSE = 1.0
#: Seconds one listener read may block (bounds how late it notices lingering channels to drop).
_POLL = 1.0
#: Most entries `await_entries` returns at once (as many as one read of the stream gives).
LIMIT = 100


#: Stream entries: (entry id, fields), as XREAD gives them.
Entries = list[tuple[str, dict[str, str]]]


class Ticket:
    """One waiter's interest in one stream: `wait` returns once the stream may have something new."""

    def __init__(self, stream: str, event: threading.Event | None = None, carry: bool = False) -> None:
        self.stream = stream
        #: shared by the tickets of a waiter that waits on several streams at once
        self.event = event or threading.Event()
        #: with `carry`: the entries announced with their fields, in stream order (`Waker.await_entries`)
        self.carried: Entries | None = [] if carry else None

    def wait(self, timeout: float) -> bool:
        """Block up to `timeout` seconds for a wake-up; True when woken (the flag is cleared)."""
        woken = self.event.wait(max(timeout, 0.0))
        self.event.clear()
        return woken


class _Channel:
    """A subscribed wake channel: who waits on which of its streams, and whether Redis confirmed it."""

    def __init__(self) -> None:
        self.tickets: dict[str, set[Ticket]] = {}
        self.confirmed = threading.Event()  # also set when a failure means nobody should wait for it
        self.subscribed = False  # Redis confirmed it on the live connection: announcements arrive
        self.idle_since: float | None = None

    def count(self) -> int:
        return sum(len(t) for t in self.tickets.values())


class Waker:
    """The per-process dispatcher of wake-ups (see the module docstring); safe from many threads."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.lock = threading.Lock()
        self.channels: dict[str, _Channel] = {}
        self.pubsub: Any = None
        self.listener: threading.Thread | None = None
        self.failing = False  # the connection failed and has not delivered anything since (log once)

    @contextlib.contextmanager
    def ticket(self, channel: str, stream: str, event: threading.Event | None = None,
               carry: bool = False) -> Iterator[Ticket]:
        """A ticket for `stream` (announced on `channel`), subscribed before it is handed out; with
        `event`, it sets that event (one waiter on several streams shares one); with `carry`, it
        collects the entries announcements carry (`await_entries`)."""
        ticket = Ticket(stream, event, carry)
        with self.lock:
            found = self.channels.get(channel)
            fresh = found is None
            entry = self.channels.setdefault(channel, _Channel()) if found is None else found
            entry.tickets.setdefault(stream, set()).add(ticket)
            entry.idle_since = None
            self._ensure_listener()
        if fresh:
            self._subscribe(channel)
        entry.confirmed.wait(DEFAULT_CONFIRM_TIMEOUT)  # else a message published meanwhile is lost
        with self.lock:
            if not entry.subscribed:  # announcements may be missed: what it carries is not the whole story
                ticket.carried = None
        try:
            yield ticket
        finally:
            self._drop(channel, ticket)

    def await_entries(self, channel: str, stream: str, cursor: str, timeout: float,
                      read: Callable[[str], Entries]) -> Entries:
        """Entries of `stream` after `cursor` (`read(cursor)` reads up to `LIMIT` of them without
        blocking), waiting up to `timeout` seconds for some: after a wake-up, those its announcements
        carried when they carried every one (see the module docstring), else what `read` finds."""
        deadline = time.monotonic() + timeout
        with self.ticket(channel, stream, carry=True) as ticket:
            found = read(cursor)  # after the ticket: an entry added from here on is announced to it
            while not found and (left := deadline - time.monotonic()) > 0:
                if not ticket.wait(left):
                    break
                with self.lock:
                    carried, ticket.carried = ticket.carried, [] if ticket.carried is not None else None
                found = read(cursor) if carried is None else [e for e in carried if _after(e[0], cursor)]
        return found[:LIMIT]

    def _drop(self, channel: str, ticket: Ticket) -> None:
        with self.lock:
            entry = self.channels.get(channel)
            if entry is None:
                return
            waiting = entry.tickets.get(ticket.stream, set())
            waiting.discard(ticket)
            if not waiting:
                entry.tickets.pop(ticket.stream, None)
            if not entry.tickets:
                entry.idle_since = time.monotonic()  # dropped later: the next slice will want it back

    def _ensure_listener(self) -> None:
        """Start the listener if none runs (called with the lock held)."""
        if self.listener is not None and self.listener.is_alive():
            return
        self.pubsub = self.client.pubsub()
        self.listener = threading.Thread(target=self._listen, name="beadwire-wakeups", daemon=True)
        self.listener.start()

    def _subscribe(self, *channels: str) -> None:
        try:
            self.pubsub.subscribe(*channels)
        except redis.RedisError as exc:  # the listener reconnects and subscribes again
            log.info("wake-up subscription failed: %s", exc)
            self._wake_all()

    def _listen(self) -> None:
        """The listener's loop: route messages to tickets until no channel is left for a while."""
        idle_since = None
        while True:
            with self.lock:
                self._forget_lingering()
                if self.channels:
                    idle_since = None
                elif idle_since is None:
                    idle_since = time.monotonic()
                elif time.monotonic() - idle_since > DEFAULT_IDLE_EXIT:
                    self._stop_listening()
                    return
            try:
                message = self.pubsub.get_message(timeout=_POLL) if self.channels else None
                if message is None and not self.channels:
                    time.sleep(_POLL)
            except Exception as exc:  # noqa: BLE001 - whatever broke the connection, the listener must go on
                self._reconnect(exc)
                continue
            if message is not None:
                self.failing = False
                self._route(message)

    def _route(self, message: dict[str, Any]) -> None:
        channel, kind = _text(message.get("channel")), message.get("type")
        with self.lock:
            entry = self.channels.get(channel)
            if entry is None:
                return
            if kind == "subscribe":
                entry.subscribed = True
                entry.confirmed.set()
            elif kind == "message":
                stream, _, carried = _text(message.get("data")).partition("\n")
                found = _entry(carried) if carried else None
                for ticket in entry.tickets.get(stream, ()):
                    if ticket.carried is not None:
                        if found is None:
                            ticket.carried = None  # a bare announcement: the waiter must read
                        else:
                            ticket.carried.append(found)
                    ticket.event.set()

    def _forget_lingering(self) -> None:
        """Unsubscribe channels nobody has waited on for `DEFAULT_LINGER` s (called with the lock held)."""
        now = time.monotonic()
        gone = [c for c, e in self.channels.items()
                if not e.tickets and e.idle_since is not None and now - e.idle_since > DEFAULT_LINGER]
        for channel in gone:
            del self.channels[channel]
        if gone:
            with contextlib.suppress(redis.RedisError):
                self.pubsub.unsubscribe(*gone)

    def _reconnect(self, exc: BaseException) -> None:
        """The connection failed: wake everyone (messages may be lost), then subscribe again."""
        (log.info if self.failing else log.warning)("wake-up listener lost its Redis connection: %s", exc)
        self.failing = True
        self._wake_all()
        time.sleep(DEFAULT_RETRY_PAUSE)
        with self.lock:
            with contextlib.suppress(Exception):
                self.pubsub.close()
            self.pubsub = self.client.pubsub()
            channels = list(self.channels)
            for entry in self.channels.values():
                entry.confirmed.clear()
                entry.subscribed = False
        if channels:
            self._subscribe(*channels)

    def _wake_all(self) -> None:
        with self.lock:
            for entry in self.channels.values():
                entry.confirmed.set()  # nobody waits for a confirmation that may never come
                entry.subscribed = False  # ...and announcements may have been lost
                for tickets in entry.tickets.values():
                    for ticket in tickets:
                        ticket.carried = None
                        ticket.event.set()

    def _stop_listening(self) -> None:
        """Close the connection; the next ticket starts a new listener (called with the lock held)."""
        with contextlib.suppress(Exception):
            self.pubsub.close()
        self.pubsub, self.listener = None, None


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value or "")


def _entry(carried: str) -> tuple[str, dict[str, str]] | None:
    """The entry a mailbox announcement carries (publish.lua), as XREAD gives it; None if malformed."""
    parts = carried.split("\n", 3)
    if len(parts) != 4:
        return None
    sid, delivery, kind, data = parts
    return sid, {"id": delivery, "kind": kind, "data": data}


def _after(sid: str, cursor: str) -> bool:
    """Whether stream entry id `sid` comes after `cursor` (ids are `<ms>-<seq>`; a cursor that is no id,
    XREAD's `$`, means "from now on": every entry announced since qualifies)."""
    try:
        return _id(sid) > _id(cursor)
    except ValueError:
        return True


def _id(sid: str) -> tuple[int, int]:
    ms, _, seq = sid.partition("-")
    return int(ms), int(seq or 0)
