"""The Redis side: client construction and one typed wrapper per Lua script.

Scripts live in `store/lua/<verb>.lua`, are loaded once per client, and are always called with
every key passed in KEYS (never built inside Lua), so they stay cluster-safe.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import redis

from store.errors import Unavailable
from store.keys import Keys

LUA_DIR = Path(__file__).with_name("lua")
#: Approximate length cap of every stream.
DEFAULT_STREAM_MAXLEN = 10_000
#: How long a delivery id is remembered for deduplication.
DEFAULT_DEDUPE_TTL = 7 * 24 * 3600
#: Seconds between SQL writes of a workspace's last_seen.
DEFAULT_TOUCH_TTL = 60


def make_client(url: str) -> redis.Redis:
    """A Redis client for `url` (redis://, rediss:// or unix://), decoding to str."""
    return redis.Redis.from_url(url, decode_responses=True, health_check_interval=30)


class Scripts:
    """The Lua scripts registered on one client."""

    def __init__(self, client: redis.Redis) -> None:
        for path in sorted(LUA_DIR.glob("*.lua")):
            setattr(self, path.stem, client.register_script(path.read_text()))


class RedisStore:
    """A client, its scripts and the key builders, bundled for the domain modules."""

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.client = client
        self.keys = keys
        self.scripts = Scripts(client)

    def heartbeat(self, project_id: int, workspace_id: int, now: float, presence: dict[str, Any]) -> bool:
        """Mark a workspace alive; True when its SQL last_seen is due for an update.

        Raises:
            Unavailable: Redis cannot be reached.
        """
        keys = [
            self.keys.presence_key(project_id),
            self.keys.online_key(project_id),
            self.keys.touch_key(project_id, workspace_id),
        ]
        args = [workspace_id, repr(now), json.dumps(presence), DEFAULT_TOUCH_TTL]
        return bool(self._run("heartbeat", keys, args))

    def publish(self, project_id: int, outbox_id: int, kind: str, payload: str,
                recipient_id: int | None) -> bool:
        """Deliver an outbox row once; False when it had been delivered already.

        Raises:
            Unavailable: Redis cannot be reached.
        """
        keys = [self.keys.delivered_key(project_id, outbox_id), self.keys.events_key(project_id)]
        if recipient_id is not None:
            keys.append(self.keys.mailbox_key(project_id, recipient_id))
        args = [outbox_id, kind, payload, DEFAULT_STREAM_MAXLEN, DEFAULT_DEDUPE_TTL]
        return bool(self._run("publish", keys, args))

    def presence(self, project_id: int, since: float) -> dict[int, tuple[float, dict[str, Any]]]:
        """Workspaces seen since `since`: id -> (last beat, presence fields).

        Raises:
            Unavailable: Redis cannot be reached.
        """
        pipe = self.client.pipeline(transaction=False)
        pipe.zrangebyscore(self.keys.online_key(project_id), since, "+inf", withscores=True)
        pipe.hgetall(self.keys.presence_key(project_id))
        try:
            online, fields = pipe.execute()
        except redis.RedisError as exc:
            raise Unavailable(f"redis unreachable: {exc}") from exc
        return {int(ws): (score, json.loads(fields.get(ws, "{}"))) for ws, score in online}

    def last_beats(self, project_id: int) -> dict[int, float]:
        """Every workspace's last heartbeat known to Redis (online or not)."""
        try:
            rows = self.client.zrange(self.keys.online_key(project_id), 0, -1, withscores=True)
        except redis.RedisError as exc:
            raise Unavailable(f"redis unreachable: {exc}") from exc
        return {int(ws): score for ws, score in rows}

    def prune_presence(self, project_id: int, before: float) -> int:
        """Forget workspaces whose last beat is older than `before`; returns how many."""
        online, presence = self.keys.online_key(project_id), self.keys.presence_key(project_id)
        try:
            gone = self.client.zrangebyscore(online, "-inf", f"({before}")
            if gone:
                pipe = self.client.pipeline(transaction=False)
                pipe.zrem(online, *gone)
                pipe.hdel(presence, *gone)
                pipe.execute()
        except redis.RedisError as exc:
            raise Unavailable(f"redis unreachable: {exc}") from exc
        return len(gone)

    def read_events(self, project_id: int, after: str = "0", count: int = 100) -> list[tuple[str, dict[str, str]]]:
        """Entries of the project event stream after stream id `after`."""
        try:
            return self.client.xrange(self.keys.events_key(project_id), f"({after}" if after != "0" else "-",
                                      "+", count=count)
        except redis.RedisError as exc:
            raise Unavailable(f"redis unreachable: {exc}") from exc

    def ping(self) -> str:
        try:
            self.client.ping()
            return "ok"
        except redis.RedisError as exc:
            return f"error: {exc}"

    def _run(self, script: str, keys: list[str], args: list[Any]) -> Any:
        try:
            return getattr(self.scripts, script)(keys=keys, args=args)
        except redis.RedisError as exc:
            raise Unavailable(f"redis unreachable: {exc}") from exc
