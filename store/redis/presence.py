"""Presence: the heartbeat (admission, being alive, the banner), who is online, revocation, idle notices."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, cast

from store.errors import Unauthorized
from store.keys import MAILBOX_GROUP
from store.redis.base import DEFAULT_STREAM_MAXLEN, RedisBase, compact
from store.redis.client import unavailable
from store.redis.ratelimit import NO_RATE, Rate, limited
from store.redis.scripts import HeartbeatKeys

#: Seconds between SQL writes of a workspace's last_seen.
DEFAULT_TOUCH_TTL = 60
#: Seconds before a requested mailbox rebuild that has not finished is requested again.
DEFAULT_REBUILD_RETRY = 30
#: Most new mailbox entries one banner carries (the rest come on the next call).
DEFAULT_BANNER_ITEMS = 20
#: Workspaces whose heartbeat keys one process keeps built (`Presence._beat_keys`).
DEFAULT_BEAT_KEYS_CACHED = 10_000

_REVOKED = ("this workspace's token was revoked by a human with the project key: "
            "ask them, then run `wire init` again")


@dataclass
class Beat:
    """What one heartbeat learned: SQL chores due, and the caller's banner."""

    touch: bool
    rebuild: bool
    new: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    pending: int = 0
    waiting: list[dict[str, Any]] = field(default_factory=list)


class Presence(RedisBase):
    """Heartbeats and presence of the workspaces of a project."""

    def heartbeat(self, project_id: int, workspace_id: int, now: float, presence: dict[str, Any] | str,
                  token_rate: Rate = NO_RATE, project_rate: Rate = NO_RATE,
                  online_event: dict[str, Any] | str | None = None, offline_after: float = 0.0,
                  seen: str | None = None) -> Beat:
        """Check the workspace's token is not revoked and its rate buckets allow the call, then mark
        it alive and read its banner (new mailbox entries, waiters): one round trip (heartbeat.lua), atomic.

        With `online_event`, a workspace whose last beat is older than `offline_after` (or absent)
        also puts `presence.online` with that payload on the project event stream (the dashboards).
        `presence` and `online_event` may come as their JSON text already (store/workspaces.py encodes
        them once per workspace and inputs), else they are encoded here.
        With `seen` (the newest entry id the client confirms it showed), the new entries are those
        after it, until a later call confirms them; without, each entry is returned once.

        The script decides and charges first (revocation, then the token's and the project's buckets);
        a refused call writes nothing, and no revocation can land between admission and the writes.

        Raises:
            Unauthorized: the workspace was revoked (whatever an auth cache says).
            RateLimited: the token's or the project's bucket is empty (nothing was written).
            Unavailable: Redis cannot be reached.
        """
        keys, wake, consumer = self._beat_keys(project_id, workspace_id)
        fields = presence if isinstance(presence, str) else json.dumps(presence)
        if not isinstance(online_event, str):
            online_event = compact(online_event) if online_event else ""
        verdict, touch, rebuild, (new, pending, waiting) = self.scripts.heartbeat(
            keys, workspace_id=workspace_id, now=now, token_rate=token_rate.args(),
            project_rate=project_rate.args(), fields=fields, touch_ttl=DEFAULT_TOUCH_TTL,
            offline_before=offline_after, online_event=online_event,
            maxlen=DEFAULT_STREAM_MAXLEN, wake=wake, retry=DEFAULT_REBUILD_RETRY,
            group=MAILBOX_GROUP, consumer=consumer, count=DEFAULT_BANNER_ITEMS, seen=seen or "",
        ).run()
        if verdict < 0:
            raise Unauthorized(_REVOKED)
        if verdict > 0:
            raise limited(verdict, "token or project")
        return Beat(touch, rebuild, new, pending, waiting)

    def _beat_keys(self, project_id: int, workspace_id: int) -> tuple[HeartbeatKeys, str, str]:
        """The keys, wake channel and consumer name of a workspace's heartbeat, built once per process
        and workspace (fourteen f-strings a request otherwise); the cache is dropped whole when full."""
        cache: dict[tuple[int, int], tuple[HeartbeatKeys, str, str]] = self.__dict__.setdefault("_beats", {})
        found = cache.get((project_id, workspace_id))
        if found is None:
            if len(cache) >= DEFAULT_BEAT_KEYS_CACHED:
                cache.clear()
            k = self.keys
            keys = HeartbeatKeys(
                k.revoked_key(project_id), k.token_bucket_key(project_id, workspace_id),
                k.project_bucket_key(project_id), k.presence_key(project_id), k.online_key(project_id),
                k.touch_key(project_id, workspace_id), k.events_key(project_id), k.epoch_key(project_id),
                k.rebuilding_key(project_id), k.mailbox_key(project_id, workspace_id),
                k.waiting_key(project_id, workspace_id), k.waitinfo_key(project_id, workspace_id))
            found = cache[project_id, workspace_id] = (keys, k.wake_channel(project_id), f"ws{workspace_id}")
        return found

    def presence(self, project_id: int, since: float) -> dict[int, tuple[float, dict[str, Any]]]:
        """Workspaces seen since `since`: id -> (last beat, presence fields).

        Raises:
            Unavailable: Redis cannot be reached.
        """
        pipe = self.client.pipeline(transaction=False)
        # the flat reply, not redis-py's (member, score) pairs, which cost ~4 us each at 1,000 members
        pipe.execute_command("ZRANGEBYSCORE", self.keys.online_key(project_id), since, "+inf", "WITHSCORES")
        pipe.hgetall(self.keys.presence_key(project_id))
        with unavailable():
            flat, fields = pipe.execute()
        if flat and isinstance(flat[0], list):  # RESP3: [[member, score], ...]
            online = [(member, float(score)) for member, score in flat]
        else:  # RESP2: [member, score, member, score, ...]
            online = list(zip(flat[0::2], map(float, flat[1::2])))
        raw = [fields.get(ws, "{}") for ws, _ in online]
        # one parse for the whole team (1,000s of entries), not one json.loads call per workspace
        parsed = json.loads("[" + ",".join(raw) + "]") if raw else []
        if len(parsed) != len(raw):  # not one JSON value per field: parse them one by one
            parsed = [json.loads(value) for value in raw]
        return {int(ws): (score, info) for (ws, score), info in zip(online, parsed)}

    def presence_of(self, project_id: int, workspace_id: int) -> dict[str, Any] | None:
        """One workspace's presence fields (branch, host, git), None when it has none."""
        with unavailable():
            raw = self.client.hget(self.keys.presence_key(project_id), str(workspace_id))
        return json.loads(raw) if raw else None

    def last_beats(self, project_id: int) -> dict[int, float]:
        """Every workspace's last heartbeat known to Redis (online or not)."""
        with unavailable():
            rows = cast(list[tuple[str, float]],
                        self.client.zrange(self.keys.online_key(project_id), 0, -1, withscores=True))
        return {int(ws): score for ws, score in rows}

    def last_beat(self, project_id: int, workspace_id: int) -> float | None:
        """One workspace's last heartbeat known to Redis, None when it has none."""
        with unavailable():
            beat = self.client.zscore(self.keys.online_key(project_id), workspace_id)
        return None if beat is None else float(beat)

    def prune_presence(self, project_id: int, before: float) -> int:
        """Forget workspaces whose last beat is older than `before`; returns how many."""
        online, presence = self.keys.online_key(project_id), self.keys.presence_key(project_id)
        with unavailable():
            gone = cast(list[tuple[str, float]],
                        self.client.zrangebyscore(online, "-inf", f"({before}", withscores=True))
            if gone:
                ids = [ws for ws, _ in gone]
                fields = self.client.hmget(presence, ids)
                pipe = self.client.pipeline(transaction=False)
                pipe.zrem(online, *ids)
                pipe.hdel(presence, *ids)
                for (ws, beat), raw in zip(gone, fields):  # the dashboards' activity feed
                    event = {"workspace": int(ws), "alias": json.loads(raw or "{}").get("alias", ""),
                             "last_seen": beat}
                    pipe.xadd(self.keys.events_key(project_id), {"id": "", "kind": "presence.offline",
                              "data": compact(event)}, maxlen=DEFAULT_STREAM_MAXLEN, approximate=True)
                pipe.execute()
                self._announce(project_id, self.keys.events_key(project_id))
        return len(gone)

    def idle_noticed(self, project_id: int) -> dict[int, float]:
        """Workspaces whose current idle spell was already told: id -> the spell's start."""
        with unavailable():
            fields = self.client.hgetall(self.keys.idle_noticed_key(project_id))
        return {int(ws): float(start) for ws, start in fields.items()}

    def mark_idle_noticed(self, project_id: int, workspace_id: int, start: float) -> bool:
        """True for the first caller of an idle spell (HSETNX): only that one sends the notice."""
        with unavailable():
            told = self.client.hsetnx(self.keys.idle_noticed_key(project_id), str(workspace_id), repr(start))
        return bool(told)

    def clear_idle_noticed(self, project_id: int, workspace_ids: list[int]) -> None:
        """Forget the told spells of these workspaces (active again, or gone): their next spell is told."""
        if not workspace_ids:
            return
        with unavailable():
            self.client.hdel(self.keys.idle_noticed_key(project_id), *map(str, workspace_ids))

    def revoke(self, project_id: int, workspace_id: int) -> bool:
        """Refuse a workspace's token from now on in every process, and show it offline.

        Raises:
            Unavailable: Redis cannot be reached.
        """
        k = self.keys
        return self.scripts.revoke(k.revoked_key(project_id), k.presence_key(project_id),
                                   k.online_key(project_id), workspace_id=workspace_id).run()

    def is_revoked(self, project_id: int, workspace_id: int) -> bool:
        """Whether a workspace's token was revoked (long-lived streams re-check it between reads).

        Raises:
            Unavailable: Redis cannot be reached.
        """
        with unavailable():
            return bool(self.client.sismember(self.keys.revoked_key(project_id), str(workspace_id)))
