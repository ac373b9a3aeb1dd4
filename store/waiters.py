"""Caps on waiters: requests and websockets held open while they wait (`watch`, chat waits, `/v1/ws`).

A waiter costs the server almost nothing while it waits (store/wakeups.py), but not nothing: each
holds a socket, a greenlet and a wake-up ticket. So each credential (a workspace token, the project
key, a dashboard session) and each project may hold only so many at once (`Settings.waiters_token`,
`Settings.waiters_project`); one more is refused with 429 and `Retry-After`. A slot is a lease in two
Redis sorted sets (enter.lua): a process that dies without leaving frees its slots when the lease
runs out, and a websocket renews its lease while it stays open.
"""

from __future__ import annotations

import uuid

from store import Store
from store.errors import TooManyWaiters
from store.util import now

#: Seconds a slot is held without renewal (longer than the longest wait slice, 30 s, plus slack).
DEFAULT_LEASE = 90
#: Seconds a refused waiter is told to wait before trying again (`Retry-After`).
DEFAULT_RETRY_AFTER = 15


class Slot:
    """A held waiter slot; `renew` keeps it past its lease, `leave` gives it back (idempotent)."""

    def __init__(self, st: Store, project_id: int, owner: str, lease_id: str) -> None:
        self.st, self.project_id, self.owner, self.lease_id = st, project_id, owner, lease_id
        self.held = True

    def renew(self) -> None:
        """Push the lease `DEFAULT_LEASE` s ahead (a websocket calls this while it stays open).

        Raises:
            Unavailable: Redis cannot be reached.
        """
        self.st.redis.renew_waiter(self.project_id, self.owner, self.lease_id, now() + DEFAULT_LEASE)

    def leave(self) -> None:
        """Give the slot back (a second call does nothing)."""
        if self.held:
            self.held = False
            self.st.redis.leave_waiter(self.project_id, self.owner, self.lease_id)


def enter(st: Store, project_id: int, owner: str) -> Slot:
    """Take a waiter slot for `owner` (`w<workspace id>`, `key`, `s<session digest>`) in the project.

    Raises:
        TooManyWaiters: the owner or the project holds its cap of waiters already.
        Unavailable: Redis cannot be reached.
    """
    settings, lease_id, ts = st.settings, uuid.uuid4().hex, now()
    taken = st.redis.enter_waiter(project_id, owner, lease_id, ts, ts + DEFAULT_LEASE, settings.waiters_token,
                                  settings.waiters_project)
    if taken == -1:
        raise TooManyWaiters(f"this credential already holds {settings.waiters_token} waiting requests or "
                             f"websockets (the cap): end one, or retry in {DEFAULT_RETRY_AFTER} s",
                             retry_after=DEFAULT_RETRY_AFTER)
    if taken == -2:
        raise TooManyWaiters(f"this project already holds {settings.waiters_project} waiting requests or "
                             f"websockets (the cap): retry in {DEFAULT_RETRY_AFTER} s",
                             retry_after=DEFAULT_RETRY_AFTER)
    return Slot(st, project_id, owner, lease_id)
