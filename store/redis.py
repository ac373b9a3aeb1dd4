"""The Redis side: client construction and one typed wrapper per Lua script.

Scripts live in `store/lua/<verb>.lua`, are loaded once per client, and are always called with
every key passed in KEYS (never built inside Lua), so they stay cluster-safe.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from store.errors import Unavailable
from store.keys import MAILBOX_GROUP, Keys

LUA_DIR = Path(__file__).with_name("lua")
#: Approximate length cap of every stream.
DEFAULT_STREAM_MAXLEN = 10_000
#: How long a delivery id is remembered for deduplication.
DEFAULT_DEDUPE_TTL = 7 * 24 * 3600
#: Seconds between SQL writes of a workspace's last_seen.
DEFAULT_TOUCH_TTL = 60
#: Seconds before a requested mailbox rebuild that has not finished is requested again.
DEFAULT_REBUILD_RETRY = 30
#: Most new mailbox entries one banner carries (the rest come on the next call).
DEFAULT_BANNER_ITEMS = 20
#: Seconds an expired reservation is kept for the expiry sweep to report (then writers drop it).
DEFAULT_RESERVATION_GRACE = 120


@dataclass
class Beat:
    """What one heartbeat learned: SQL chores due, and the caller's banner."""

    touch: bool
    rebuild: bool
    new: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    pending: int = 0
    waiting: list[dict[str, Any]] = field(default_factory=list)


def _fields(flat: list[str]) -> dict[str, str]:
    return dict(zip(flat[::2], flat[1::2]))


def _res_prefix(workspace_id: int) -> str:
    """The start of every reservation field of one workspace (its id, then NUL, then the pattern)."""
    return f"{workspace_id}\0"


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _loads(values: list[str]) -> list[dict[str, Any]]:
    return [json.loads(v) for v in values]


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

    def heartbeat(self, project_id: int, workspace_id: int, now: float, presence: dict[str, Any]) -> Beat:
        """Mark a workspace alive and read its banner (new mailbox entries, waiters) at once.

        Raises:
            Unavailable: Redis cannot be reached.
        """
        k = self.keys
        keys = [k.presence_key(project_id), k.online_key(project_id), k.touch_key(project_id, workspace_id),
                k.mailbox_key(project_id, workspace_id), k.waiting_key(project_id, workspace_id),
                k.waitinfo_key(project_id, workspace_id), k.epoch_key(project_id), k.rebuilding_key(project_id)]
        args = [workspace_id, repr(now), json.dumps(presence), DEFAULT_TOUCH_TTL, MAILBOX_GROUP,
                f"ws{workspace_id}", DEFAULT_BANNER_ITEMS, DEFAULT_REBUILD_RETRY]
        touch, rebuild, new, pending, waiting = self._run("heartbeat", keys, args)
        return Beat(bool(touch), bool(rebuild), [(sid, _fields(flat)) for sid, flat in new], int(pending),
                    [json.loads(w) for w in waiting if w])

    def publish(self, project_id: int, outbox_id: int, kind: str, payload: str, recipient_id: int | None,
                delivery_id: int | None = None, to_events: bool = True) -> bool:
        """Deliver an outbox row once; False when it had been delivered already.

        Raises:
            Unavailable: Redis cannot be reached.
        """
        box = recipient_id or 0  # unused key of this project's slot when there is no mailbox
        keys = [self.keys.delivered_key(project_id, outbox_id), self.keys.events_key(project_id),
                self.keys.mailbox_key(project_id, box), self.keys.mailbox_index_key(project_id, box)]
        args = [outbox_id, kind, payload, DEFAULT_STREAM_MAXLEN, DEFAULT_DEDUPE_TTL, "1" if to_events else "0",
                "" if delivery_id is None or recipient_id is None else delivery_id]
        return bool(self._run("publish", keys, args))

    def ack(self, project_id: int, workspace_id: int, delivery_ids: list[int]) -> int:
        """Acknowledge mailbox entries by delivery id; returns how many were pending."""
        if not delivery_ids:
            return 0
        keys = [self.keys.mailbox_key(project_id, workspace_id), self.keys.mailbox_index_key(project_id, workspace_id)]
        return int(self._run("ack", keys, [MAILBOX_GROUP, *delivery_ids]))

    def set_waiting(self, project_id: int, on_id: int, waiter_id: int, deadline: float, info: dict[str, Any]) -> None:
        """Show `waiter_id` as blocked on `on_id` until `deadline` (0 clears)."""
        keys = [self.keys.waiting_key(project_id, on_id), self.keys.waitinfo_key(project_id, on_id)]
        self._run("wait", keys, [waiter_id, repr(deadline) if deadline else "0", json.dumps(info)])

    def waiting_on(self, project_id: int, workspace_id: int, now: float) -> list[dict[str, Any]]:
        """Who is blocked waiting for this workspace's reply."""
        try:
            ids = self.client.zrangebyscore(self.keys.waiting_key(project_id, workspace_id), now, "+inf")
            infos = self.client.hmget(self.keys.waitinfo_key(project_id, workspace_id), ids) if ids else []
        except redis.RedisError as exc:
            raise Unavailable(f"redis unreachable: {exc}") from exc
        return [json.loads(i) for i in infos if i]

    def mailbox_cursor(self, project_id: int, workspace_id: int) -> str:
        """The id of the newest entry in a mailbox ("0-0" when empty): wait from here on."""
        try:
            last = self.client.xrevrange(self.keys.mailbox_key(project_id, workspace_id), count=1)
        except redis.RedisError as exc:
            raise Unavailable(f"redis unreachable: {exc}") from exc
        return last[0][0] if last else "0-0"

    def wait_mailbox(self, project_id: int, workspace_id: int, cursor: str,
                     timeout_ms: int) -> list[tuple[str, dict[str, str]]]:
        """Block until entries newer than `cursor` arrive in a mailbox, or `timeout_ms` passes.

        A plain XREAD, outside the consumer group: waiting must not consume the banner's items.
        """
        try:
            read = self.client.xread({self.keys.mailbox_key(project_id, workspace_id): cursor},
                                     count=100, block=max(timeout_ms, 1))
        except redis.RedisError as exc:
            raise Unavailable(f"redis unreachable: {exc}") from exc
        return read[0][1] if read else []

    def read_group_blocking(self, project_id: int, workspace_id: int,
                            timeout_ms: int) -> list[tuple[str, dict[str, str]]]:
        """Block until new mailbox entries arrive and read them through the group (for `watch`)."""
        stream = self.keys.mailbox_key(project_id, workspace_id)
        try:
            try:
                self.client.xgroup_create(stream, MAILBOX_GROUP, id="0", mkstream=True)
            except redis.ResponseError:
                pass  # BUSYGROUP: it exists
            read = self.client.xreadgroup(MAILBOX_GROUP, f"ws{workspace_id}", {stream: ">"}, count=20,
                                          block=max(timeout_ms, 1))
        except redis.RedisError as exc:
            raise Unavailable(f"redis unreachable: {exc}") from exc
        return read[0][1] if read else []

    def mark_rebuilt(self, project_id: int, now: float) -> None:
        """Record that a project's mailboxes are whole in this Redis (ends rebuild requests)."""
        try:
            self.client.set(self.keys.epoch_key(project_id), repr(now))
        except redis.RedisError as exc:
            raise Unavailable(f"redis unreachable: {exc}") from exc

    def reclaim_stuck(self, project_id: int, workspace_id: int, min_idle_ms: int, count: int = 100) -> int:
        """Show again, once, mailbox entries left unread longer than `min_idle_ms` (XAUTOCLAIM)."""
        keys = [self.keys.mailbox_key(project_id, workspace_id), self.keys.mailbox_index_key(project_id, workspace_id)]
        return int(self._run("reclaim", keys, [MAILBOX_GROUP, f"ws{workspace_id}", min_idle_ms, count]))

    def try_lock(self, name: str, ttl: int) -> bool:
        """A best-effort lease so that one of several workers runs a sweep; expires by itself."""
        try:
            return bool(self.client.set(self.keys.sweep_lock_key(name), "1", nx=True, ex=max(ttl, 1)))
        except redis.RedisError as exc:
            raise Unavailable(f"redis unreachable: {exc}") from exc

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

    # -- reservations (store/reservations.py): entries are dicts, their field is "<ws>\0<pattern>" --

    def reserve(self, project_id: int, repo_id: int, workspace_id: int, entries: list[dict[str, Any]],
                now: float) -> list[dict[str, Any]]:
        """Set or renew a workspace's reservations; returns the other workspaces' live entries.

        Raises:
            Unavailable: Redis cannot be reached.
        """
        args: list[Any] = [repr(now), DEFAULT_RESERVATION_GRACE, _res_prefix(workspace_id)]
        for entry in entries:
            args += [_res_prefix(workspace_id) + entry["pattern"], _compact(entry), repr(entry["expires"])]
        return _loads(self._run("reserve", self._res_keys(project_id, repo_id), args))

    def auto_reserve(self, project_id: int, repo_id: int, workspace_id: int, entries: list[dict[str, Any]],
                     now: float, complete: bool) -> list[dict[str, Any]]:
        """Make a workspace's automatic entries match `entries` (all with one expiry); returns the
        other workspaces' live entries that may overlap them (a pre-filter: decide overlap after).

        Raises:
            Unavailable: Redis cannot be reached.
        """
        expires = entries[0]["expires"] if entries else now
        args: list[Any] = [repr(now), DEFAULT_RESERVATION_GRACE, _res_prefix(workspace_id), repr(expires),
                           "1" if complete else "0"]
        for entry in entries:
            args += [entry["pattern"], _compact(entry)]
        return _loads(self._run("autoreserve", self._res_keys(project_id, repo_id), args))

    def unreserve(self, project_id: int, repo_id: int, workspace_id: int,
                  patterns: list[str] | None) -> list[dict[str, Any]]:
        """Remove a workspace's entries of `patterns` (None: all of them); returns those removed.

        Raises:
            Unavailable: Redis cannot be reached.
        """
        if patterns == []:
            return []
        prefix = _res_prefix(workspace_id)
        args = [prefix, *(prefix + p for p in patterns or [])]
        return _loads(self._run("unreserve", self._res_keys(project_id, repo_id), args))

    def reservations(self, project_id: int, repo_id: int, now: float) -> list[dict[str, Any]]:
        """Every live entry of a repo (read-only).

        Raises:
            Unavailable: Redis cannot be reached.
        """
        table, expiries = self._res_keys(project_id, repo_id)
        pipe = self.client.pipeline(transaction=True)  # one slot: a consistent snapshot of both keys
        pipe.zrangebyscore(expiries, f"({now!r}", "+inf")
        pipe.hgetall(table)
        try:
            live, entries = pipe.execute()
        except redis.RedisError as exc:
            raise Unavailable(f"redis unreachable: {exc}") from exc
        return [json.loads(entries[field]) for field in live if field in entries]

    def expire_reservations(self, project_id: int, repo_id: int, now: float,
                            limit: int) -> list[dict[str, Any]]:
        """Remove a repo's entries whose lease ended by `now`; returns them (each exactly once).

        Raises:
            Unavailable: Redis cannot be reached.
        """
        return _loads(self._run("expire", self._res_keys(project_id, repo_id), [repr(now), limit]))

    def _res_keys(self, project_id: int, repo_id: int) -> list[str]:
        k = self.keys
        return [k.reservations_key(project_id, repo_id), k.reservation_expiry_key(project_id, repo_id)]

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
