"""File reservations of a repo (store/reservations.py): entries are dicts, each in the field
"<ws>\\0<pattern>"."""

from __future__ import annotations

import json
from typing import Any, NamedTuple

from store.redis.base import RedisBase, compact
from store.redis.client import unavailable

#: Seconds an expired reservation is kept for the expiry sweep to report (then writers drop it).
DEFAULT_RESERVATION_GRACE = 120


class Reserved(NamedTuple):
    """What `RedisStore.reserve` did: others' live entries, and the caller's entries as written."""

    others: list[dict[str, Any]]
    granted: list[dict[str, Any]]


class AutoReserved(NamedTuple):
    """What `RedisStore.auto_reserve` did: others' entries that may overlap, and the caller's changes."""

    others: list[dict[str, Any]]
    added: list[str]
    released: list[str]


def _prefix(workspace_id: int) -> str:
    """The start of every reservation field of one workspace (its id, then NUL, then the pattern)."""
    return f"{workspace_id}\0"


class Reservations(RedisBase):
    """reserve, autoreserve, unreserve and expire.lua, and the read-only listing."""

    def reserve(self, project_id: int, repo_id: int, workspace_id: int, entries: list[dict[str, Any]],
                now: float) -> Reserved:
        """Set or renew a workspace's reservations; returns the other workspaces' live entries and the
        entries written (a renewal without a reason or bead keeps those of the live entry it renews).

        Raises:
            Unavailable: Redis cannot be reached.
        """
        prefix = _prefix(workspace_id)
        triples = [(prefix + entry["pattern"], compact(entry), entry["expires"]) for entry in entries]
        others, written = self.scripts.reserve(*self._keys(project_id, repo_id), now=now,
                                               grace=DEFAULT_RESERVATION_GRACE, prefix=prefix,
                                               triples=triples).run()
        return Reserved(others, written)

    def auto_reserve(self, project_id: int, repo_id: int, workspace_id: int, entries: list[dict[str, Any]],
                     now: float, complete: bool) -> AutoReserved:
        """Make a workspace's automatic entries match `entries` (all with one expiry); returns the
        other workspaces' live entries that may overlap them (a pre-filter: decide overlap after),
        and the patterns this call newly reserved and released (renewals are neither).

        Raises:
            Unavailable: Redis cannot be reached.
        """
        expires = entries[0]["expires"] if entries else now
        pairs = [(entry["pattern"], compact(entry)) for entry in entries]
        others, added, released = self.scripts.autoreserve(
            *self._keys(project_id, repo_id), now=now, grace=DEFAULT_RESERVATION_GRACE,
            prefix=_prefix(workspace_id), expires=expires, complete=complete, pairs=pairs).run()
        return AutoReserved(others, added, released)

    def unreserve(self, project_id: int, repo_id: int, workspace_id: int,
                  patterns: list[str] | None) -> list[dict[str, Any]]:
        """Remove a workspace's entries of `patterns` (None: all of them); returns those removed.

        Raises:
            Unavailable: Redis cannot be reached.
        """
        if patterns == []:
            return []
        prefix = _prefix(workspace_id)
        return self.scripts.unreserve(*self._keys(project_id, repo_id), prefix=prefix,
                                      fields=[prefix + p for p in patterns or []]).run()

    def reservations(self, project_id: int, repo_id: int, now: float) -> list[dict[str, Any]]:
        """Every live entry of a repo (read-only).

        Raises:
            Unavailable: Redis cannot be reached.
        """
        table, expiries = self._keys(project_id, repo_id)
        pipe = self.client.pipeline(transaction=True)  # one slot: a consistent snapshot of both keys
        pipe.zrangebyscore(expiries, f"({now!r}", "+inf")
        pipe.hgetall(table)
        with unavailable():
            live, entries = pipe.execute()
        return [json.loads(entries[field]) for field in live if field in entries]

    def expire_reservations(self, project_id: int, repo_id: int, now: float,
                            limit: int) -> list[dict[str, Any]]:
        """Remove a repo's entries whose lease ended by `now`; returns them (each exactly once).

        Raises:
            Unavailable: Redis cannot be reached.
        """
        return self.scripts.expire(*self._keys(project_id, repo_id), now=now, limit=limit).run()

    def _keys(self, project_id: int, repo_id: int) -> tuple[str, str]:
        k = self.keys
        return k.reservations_key(project_id, repo_id), k.reservation_expiry_key(project_id, repo_id)
