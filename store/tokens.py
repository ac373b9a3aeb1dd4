"""This process's cache of resolved workspace tokens: it saves one SQL query per request.

It belongs to the `Store` (`st.tokens`): a revocation or role change made here drops the entry at once;
other processes' entries expire after `DEFAULT_TTL` seconds.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from store.models import Project, Workspace

#: Seconds a resolved token stays cached.
DEFAULT_TTL = 5.0
#: Entries kept at most (the cache starts over beyond it).
DEFAULT_LIMIT = 10_000


class TokenCache:
    """Token -> (workspace, project), each entry valid for `ttl` seconds."""

    def __init__(self, ttl: float = DEFAULT_TTL, limit: int = DEFAULT_LIMIT) -> None:
        self.ttl, self.limit = ttl, limit
        self._entries: dict[str, tuple[float, Workspace, Project]] = {}
        self._lock = threading.Lock()

    def get(self, token: str) -> tuple[Workspace, Project] | None:
        cached = self._entries.get(token)
        if cached and cached[0] > time.monotonic():
            return cached[1], cached[2]
        return None

    def put(self, token: str, ws: Workspace, project: Project) -> None:
        with self._lock:
            if len(self._entries) > self.limit:
                self._entries.clear()
            self._entries[token] = (time.monotonic() + self.ttl, ws, project)

    def forget_token(self, token: str) -> None:
        self._entries.pop(token, None)

    def forget_workspace(self, workspace_id: int) -> None:
        """Drop every cached token of a workspace (its role changed, it was paused or revoked)."""
        with self._lock:
            for token in [t for t, (_, ws, _) in self._entries.items() if ws.id == workspace_id]:
                self._entries.pop(token, None)
