"""Waiter slots (store/waiters.py): leases in two sorted sets per project, taken by enter.lua."""

from __future__ import annotations

import contextlib

import redis

from store.redis.base import RedisBase
from store.redis.client import unavailable


class Slots(RedisBase):
    """Taking, renewing and giving back waiter slots."""

    def enter_waiter(self, project_id: int, owner: str, lease_id: str, now: float, expires: float,
                     owner_cap: int, project_cap: int) -> int:
        """Take a waiter slot: enter.lua. Returns 1 (taken), -1 (the owner's cap) or -2 (the project's).

        Raises:
            Unavailable: Redis cannot be reached.
        """
        k = self.keys
        return self.scripts.enter(k.waiters_key(project_id), k.owner_waiters_key(project_id, owner), now=now,
                                  lease_id=lease_id, expires=expires, owner_cap=owner_cap,
                                  project_cap=project_cap).run()

    def renew_waiter(self, project_id: int, owner: str, lease_id: str, expires: float) -> None:
        """Push a held slot's lease to `expires` (a slot already given back stays given back).

        Raises:
            Unavailable: Redis cannot be reached.
        """
        pipe = self.client.pipeline(transaction=False)
        for key in (self.keys.waiters_key(project_id), self.keys.owner_waiters_key(project_id, owner)):
            pipe.zadd(key, {lease_id: expires}, xx=True)
        with unavailable():
            pipe.execute()

    def leave_waiter(self, project_id: int, owner: str, lease_id: str) -> None:
        """Give a slot back; a Redis failure only delays that until the lease runs out (no error)."""
        pipe = self.client.pipeline(transaction=False)
        for key in (self.keys.waiters_key(project_id), self.keys.owner_waiters_key(project_id, owner)):
            pipe.zrem(key, lease_id)
        with contextlib.suppress(redis.RedisError):
            pipe.execute()
