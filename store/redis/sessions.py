"""Dashboard login links and sessions (store/sessions.py): short-lived JSON records under one key each."""

from __future__ import annotations

import json
from typing import Any

from store.redis.base import RedisBase, compact
from store.redis.client import unavailable


class Sessions(RedisBase):
    """Records under `Keys.login_key` / `Keys.session_key`, each with its own TTL."""

    def put_secret(self, key: str, value: dict[str, Any], ttl: int) -> None:
        """Store a login link or session record (`key` from `Keys.login_key`/`session_key`) for `ttl` s."""
        with unavailable():
            self.client.set(key, compact(value), ex=max(ttl, 1))

    def read_secret(self, key: str, use: bool) -> dict[str, Any] | None:
        """A login link's record; `use` reads and deletes it in one step (GETDEL), so a one-time link
        works exactly once, while the confirmation page only looks (GET)."""
        with unavailable():
            raw = self.client.getdel(key) if use else self.client.get(key)
        return json.loads(raw) if raw else None

    def touch_secret(self, key: str, ttl: int) -> dict[str, Any] | None:
        """Read a session record and push its expiry `ttl` s ahead (sliding idle timeout)."""
        pipe = self.client.pipeline(transaction=False)
        pipe.get(key)
        pipe.expire(key, max(ttl, 1))  # a no-op once the key is gone
        with unavailable():
            raw, _ = pipe.execute()
        return json.loads(raw) if raw else None

    def drop_secret(self, key: str) -> None:
        with unavailable():
            self.client.delete(key)
