"""The Redis side: client construction and one typed wrapper per Lua script.

Scripts live in `store/lua/<verb>.lua`, are loaded once per client, and are always called with
every key passed in KEYS (never built inside Lua), so they stay cluster-safe. On a Redis Cluster
(`BEADWIRE_REDIS_CLUSTER=1`) every multi-key call must stay within one project's hash tag, and a
pipeline that carries a script must come from `_script_pipeline` (redis-py's cluster pipelines refuse
EVALSHA); tests/test_scaleout.py and tests/test_lua_cluster.py run everything on a real cluster.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import redis
from redis.cluster import RedisCluster

from store.errors import RateLimited, Unauthorized, Unavailable
from store.keys import MAILBOX_GROUP, Keys
from store.wakeups import Ticket, Waker

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


@dataclass(frozen=True)
class Rate:
    """A GCRA bucket's shape: `per_second` requests on average, `burst` at once (0 = unlimited)."""

    per_second: float = 0.0
    burst: int = 1

    def args(self) -> list[str]:
        """ARGV of the Lua bucket: emission interval and tolerance, in seconds."""
        if self.per_second <= 0:
            return ["0", "0"]
        interval = 1.0 / self.per_second
        return [repr(interval), repr(interval * max(self.burst, 1))]


#: No limit (tests of other things, and callers that do not limit).
NO_RATE = Rate()


def _limited(ms: int, what: str) -> RateLimited:
    seconds = max(1, -(-int(ms) // 1000))
    return RateLimited(f"too many requests for this {what}: retry in {seconds} s", retry_after=seconds)


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


class Reserved(NamedTuple):
    """What `RedisStore.reserve` did: others' live entries, and the caller's entries as written."""

    others: list[dict[str, Any]]
    granted: list[dict[str, Any]]


class AutoReserved(NamedTuple):
    """What `RedisStore.auto_reserve` did: others' entries that may overlap, and the caller's changes."""

    others: list[dict[str, Any]]
    added: list[str]
    released: list[str]


def _loads(values: list[str]) -> list[dict[str, Any]]:
    return [json.loads(v) for v in values]


#: Redis connections one process keeps at most (waiters hold none while they wait: store/wakeups.py).
DEFAULT_POOL_SIZE = 64
#: Seconds a call waits for a free pooled connection before it fails (503).
DEFAULT_POOL_WAIT = 10.0
#: Socket timeouts (s): reads must outlast the longest blocking read (a 30 s chat or watch slice);
#: redis-py 8 defaults to 5 s, which cut every longer XREAD short with "Timeout reading from socket".
#: Connecting stays quick, so a Redis that is down is a fast 503.
_TIMEOUTS = {"socket_timeout": 60.0, "socket_connect_timeout": 5.0}


def make_client(url: str, cluster: bool = False, decode: bool = True) -> redis.Redis:
    """A Redis client for `url` (redis://, rediss:// or unix://), decoding to str unless `decode` is off.

    With `cluster`, `url` names any one node of a Redis Cluster and the client (a `RedisCluster`,
    same command API) discovers the others and routes each command, script or pipeline by the slot
    of its keys; every multi-key operation here stays in one project's hash tag, hence one slot.
    """
    if cluster:
        from redis.cluster import RedisCluster

        return RedisCluster.from_url(url, decode_responses=decode, **_TIMEOUTS)  # type: ignore[return-value]
    # a bounded pool that makes callers queue for a connection: under gevent thousands of requests may
    # run at once, and the default pool refuses the 101st ("Too many connections")
    pool = redis.BlockingConnectionPool.from_url(url, decode_responses=decode, health_check_interval=30,
                                                 max_connections=DEFAULT_POOL_SIZE, timeout=DEFAULT_POOL_WAIT,
                                                 **_TIMEOUTS)
    return redis.Redis(connection_pool=pool)


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
        #: Wakes this process's waiters when their streams get entries (store/wakeups.py).
        self.waker = Waker(client)

    def heartbeat(self, project_id: int, workspace_id: int, now: float, presence: dict[str, Any],
                  token_rate: Rate = NO_RATE, project_rate: Rate = NO_RATE,
                  online_event: dict[str, Any] | None = None, offline_after: float = 0.0,
                  seen: str | None = None) -> Beat:
        """Check the workspace's token is not revoked and its rate buckets allow the call, then mark
        it alive and read its banner (new mailbox entries, waiters): one round trip.

        With `online_event`, a workspace whose last beat is older than `offline_after` (or absent)
        also puts `presence.online` with that payload on the project event stream (the dashboards).
        With `seen` (the newest entry id the client confirms it showed), the new entries are those
        after it, until a later call confirms them; without, each entry is returned once.

        Raises:
            Unauthorized: the workspace was revoked (whatever an auth cache says).
            RateLimited: the token's or the project's bucket is empty (nothing was written).
            Unavailable: Redis cannot be reached.
        """
        k = self.keys
        keys = [k.presence_key(project_id), k.online_key(project_id), k.touch_key(project_id, workspace_id),
                k.mailbox_key(project_id, workspace_id), k.waiting_key(project_id, workspace_id),
                k.waitinfo_key(project_id, workspace_id), k.epoch_key(project_id), k.rebuilding_key(project_id),
                k.revoked_key(project_id), k.token_bucket_key(project_id, workspace_id),
                k.project_bucket_key(project_id), k.events_key(project_id)]
        args = [workspace_id, repr(now), json.dumps(presence), DEFAULT_TOUCH_TTL, MAILBOX_GROUP,
                f"ws{workspace_id}", DEFAULT_BANNER_ITEMS, DEFAULT_REBUILD_RETRY, *token_rate.args(),
                *project_rate.args(), repr(offline_after), _compact(online_event) if online_event else "",
                DEFAULT_STREAM_MAXLEN, seen or "", k.wake_channel(project_id)]
        answer = self._run("heartbeat", keys, args)
        if answer[0] == "revoked":
            raise Unauthorized("this workspace's token was revoked by a human with the project key: "
                               "ask them, then run `wire init` again")
        if answer[0] == "limited":
            raise _limited(answer[1], "token or project")
        touch, rebuild, new, pending, waiting = answer
        return Beat(bool(touch), bool(rebuild), [(sid, _fields(flat)) for sid, flat in new], int(pending),
                    [json.loads(w) for w in waiting if w])

    def publish(self, project_id: int, outbox_id: int, kind: str, payload: str, recipient_id: int | None,
                delivery_id: int | None = None, to_events: bool = True) -> bool:
        """Deliver an outbox row once; False when it had been delivered already.

        Raises:
            Unavailable: Redis cannot be reached.
        """
        return bool(self._run("publish", *self._publish_call(project_id, outbox_id, kind, payload, recipient_id,
                                                             delivery_id, to_events)))

    def _publish_call(self, project_id: int, outbox_id: int, kind: str, payload: str, recipient_id: int | None,
                      delivery_id: int | None = None, to_events: bool = True) -> tuple[list[str], list[Any]]:
        box = recipient_id or 0  # unused key of this project's slot when there is no mailbox
        keys = [self.keys.delivered_key(project_id, outbox_id), self.keys.events_key(project_id),
                self.keys.mailbox_key(project_id, box), self.keys.mailbox_index_key(project_id, box)]
        args = [outbox_id, kind, payload, DEFAULT_STREAM_MAXLEN, DEFAULT_DEDUPE_TTL, "1" if to_events else "0",
                "" if delivery_id is None or recipient_id is None else delivery_id,
                self.keys.wake_channel(project_id)]
        return keys, args

    def publish_many(self, rows: list[tuple[Any, ...]], cursor_of: tuple[int, int] | None = None
                     ) -> tuple[str | None, list[bool | None]]:
        """`publish` for several rows (each a tuple of its arguments) in one round trip; with `cursor_of`
        (project id, workspace id), first read that mailbox's cursor, as `mailbox_cursor` does.

        Returns the cursor (None without `cursor_of`) and per row whether this call delivered it
        (None: it failed; publish it again later).

        Raises:
            Unavailable: Redis cannot be reached.
        """
        calls = [self._publish_call(*row) for row in rows]
        cursor_keys = [self.keys.mailbox_key(*cursor_of)] if cursor_of is not None else []
        pipe = self._script_pipeline([*cursor_keys, *(k for keys, _ in calls for k in keys)])
        if pipe is None:  # a cluster and several slots: one routed call each
            return self._publish_each(calls, cursor_of)
        if cursor_of is not None:
            pipe.xrevrange(cursor_keys[0], count=1)
        sha = self.scripts.publish.sha
        for keys, args in calls:
            # plain EVALSHA: a registered script would cost a SCRIPT EXISTS round trip per pipeline
            pipe.evalsha(sha, len(keys), *keys, *args)
        try:
            replies = pipe.execute(raise_on_error=False)
            cursor = None
            if cursor_of is not None:
                last = replies.pop(0)
                if isinstance(last, Exception):
                    raise last
                cursor = last[0][0] if last else "0-0"
            done: list[bool | None] = []
            for (keys, args), reply in zip(calls, replies):
                if isinstance(reply, redis.exceptions.NoScriptError):  # a restarted Redis: load it and retry
                    reply = self._run("publish", keys, args)
                done.append(None if isinstance(reply, Exception) else bool(reply))
        except redis.RedisError as exc:
            raise Unavailable(f"redis unreachable: {exc}") from exc
        return cursor, done

    def _script_pipeline(self, keys: list[str]) -> Any:
        """A pipeline that may carry EVALSHA: the client's own; on a Redis Cluster (whose pipelines refuse
        scripts) one on the node serving `keys` when they share a slot (one project's keys do), else None."""
        if not isinstance(self.client, RedisCluster):
            return self.client.pipeline(transaction=False)
        if len({self.client.keyslot(k) for k in keys}) != 1:
            return None
        node = self.client.get_node_from_key(keys[0])
        return self.client.get_redis_connection(node).pipeline(transaction=False)

    def _publish_each(self, calls: list[tuple[list[str], list[Any]]], cursor_of: tuple[int, int] | None
                      ) -> tuple[str | None, list[bool | None]]:
        """`publish_many` without a pipeline (a cluster, rows of several projects)."""
        cursor = self.mailbox_cursor(*cursor_of) if cursor_of is not None else None
        done: list[bool | None] = []
        for keys, args in calls:
            try:
                done.append(bool(self._run("publish", keys, args)))
            except Unavailable:
                done.append(None)
        return cursor, done

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

        Raises:
            Unavailable: Redis cannot be reached.
        """
        stream = self.keys.mailbox_key(project_id, workspace_id)
        return self._await(project_id, stream, timeout_ms, lambda: self._xread(stream, cursor, 100))

    def read_group_blocking(self, project_id: int, workspace_id: int,
                            timeout_ms: int) -> list[tuple[str, dict[str, str]]]:
        """Block until new mailbox entries arrive and read them through the group (for `watch`).

        Raises:
            Unavailable: Redis cannot be reached.
        """
        stream = self.keys.mailbox_key(project_id, workspace_id)
        return self._await(project_id, stream, timeout_ms, lambda: self.read_group(project_id, workspace_id))

    def read_group(self, project_id: int, workspace_id: int) -> list[tuple[str, dict[str, str]]]:
        """New mailbox entries, read through the group (taken: shown once), without blocking.

        Raises:
            Unavailable: Redis cannot be reached.
        """
        stream = self.keys.mailbox_key(project_id, workspace_id)
        try:
            try:
                found = self.client.xreadgroup(MAILBOX_GROUP, f"ws{workspace_id}", {stream: ">"}, count=20)
            except redis.ResponseError:  # NOGROUP: a mailbox never read (the heartbeat makes the group)
                with contextlib.suppress(redis.ResponseError):  # BUSYGROUP: made meanwhile
                    self.client.xgroup_create(stream, MAILBOX_GROUP, id="0", mkstream=True)
                found = self.client.xreadgroup(MAILBOX_GROUP, f"ws{workspace_id}", {stream: ">"}, count=20)
        except redis.RedisError as exc:
            raise Unavailable(f"redis unreachable: {exc}") from exc
        return found[0][1] if found else []

    def mailbox_after(self, project_id: int, workspace_id: int, cursor: str) -> list[tuple[str, dict[str, str]]]:
        """Mailbox entries after `cursor`, outside the group (nothing consumed), without blocking."""
        return self._xread(self.keys.mailbox_key(project_id, workspace_id), cursor, 100)

    def _await(self, project_id: int, stream: str, timeout_ms: int,
               read: Callable[[], list[tuple[str, dict[str, str]]]]) -> list[tuple[str, dict[str, str]]]:
        """`read()` (which must not block) until it finds something or `timeout_ms` passes, reading
        again whenever `stream` is announced on the project's wake channel: no Redis connection is
        held while waiting (store/wakeups.py)."""
        return self.await_streams(project_id, [stream], timeout_ms, read)

    def await_streams(self, project_id: int, streams: list[str], timeout_ms: int, read: Callable[[], Any]) -> Any:
        """`_await` on several streams of a project at once: `read()` again whenever any is announced."""
        deadline = time.monotonic() + max(timeout_ms, 1) / 1000
        channel, woken = self.keys.wake_channel(project_id), threading.Event()
        with contextlib.ExitStack() as tickets:
            ticket = [tickets.enter_context(self.waker.ticket(channel, stream, woken)) for stream in streams][0]
            while True:
                found = read()  # after the tickets: an entry added from here on wakes us
                left = deadline - time.monotonic()
                if found or left <= 0:
                    return found
                ticket.wait(left)

    def mailbox_stream(self, project_id: int, workspace_id: int) -> str:
        """The name of a workspace's mailbox stream (what `await_streams` waits on)."""
        return self.keys.mailbox_key(project_id, workspace_id)

    def events_stream(self, project_id: int) -> str:
        """The name of the project event stream (what `await_streams` waits on)."""
        return self.keys.events_key(project_id)

    def events_after(self, project_id: int, cursor: str, count: int = 200) -> list[tuple[str, dict[str, str]]]:
        """Entries of the project event stream after `cursor`, without blocking.

        Raises:
            Unavailable: Redis cannot be reached.
        """
        return self._xread(self.keys.events_key(project_id), cursor, count)

    def _xread(self, stream: str, cursor: str, count: int) -> list[tuple[str, dict[str, str]]]:
        """Entries of `stream` after `cursor`, without blocking."""
        try:
            read = self.client.xread({stream: cursor}, count=count)
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
        args = [MAILBOX_GROUP, f"ws{workspace_id}", min_idle_ms, count, self.keys.wake_channel(project_id)]
        return int(self._run("reclaim", keys, args))

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
        # the flat reply, not redis-py's (member, score) pairs, which cost ~4 us each at 1,000 members
        pipe.execute_command("ZRANGEBYSCORE", self.keys.online_key(project_id), since, "+inf", "WITHSCORES")
        pipe.hgetall(self.keys.presence_key(project_id))
        try:
            flat, fields = pipe.execute()
        except redis.RedisError as exc:
            raise Unavailable(f"redis unreachable: {exc}") from exc
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
        try:
            raw = self.client.hget(self.keys.presence_key(project_id), str(workspace_id))
        except redis.RedisError as exc:
            raise Unavailable(f"redis unreachable: {exc}") from exc
        return json.loads(raw) if raw else None

    def idle_noticed(self, project_id: int) -> dict[int, float]:
        """Workspaces whose current idle spell was already told: id -> the spell's start."""
        try:
            fields = self.client.hgetall(self.keys.idle_noticed_key(project_id))
        except redis.RedisError as exc:
            raise Unavailable(f"redis unreachable: {exc}") from exc
        return {int(ws): float(start) for ws, start in fields.items()}

    def mark_idle_noticed(self, project_id: int, workspace_id: int, start: float) -> bool:
        """True for the first caller of an idle spell (HSETNX): only that one sends the notice."""
        try:
            return bool(self.client.hsetnx(self.keys.idle_noticed_key(project_id), str(workspace_id), repr(start)))
        except redis.RedisError as exc:
            raise Unavailable(f"redis unreachable: {exc}") from exc

    def clear_idle_noticed(self, project_id: int, workspace_ids: list[int]) -> None:
        """Forget the told spells of these workspaces (active again, or gone): their next spell is told."""
        if not workspace_ids:
            return
        try:
            self.client.hdel(self.keys.idle_noticed_key(project_id), *map(str, workspace_ids))
        except redis.RedisError as exc:
            raise Unavailable(f"redis unreachable: {exc}") from exc

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
            gone = self.client.zrangebyscore(online, "-inf", f"({before}", withscores=True)
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
                              "data": _compact(event)}, maxlen=DEFAULT_STREAM_MAXLEN, approximate=True)
                pipe.execute()
                self._announce(project_id, self.keys.events_key(project_id))
        except redis.RedisError as exc:
            raise Unavailable(f"redis unreachable: {exc}") from exc
        return len(gone)

    # -- reservations (store/reservations.py): entries are dicts, their field is "<ws>\0<pattern>" --

    def reserve(self, project_id: int, repo_id: int, workspace_id: int, entries: list[dict[str, Any]],
                now: float) -> Reserved:
        """Set or renew a workspace's reservations; returns the other workspaces' live entries and the
        entries written (a renewal without a reason or bead keeps those of the live entry it renews).

        Raises:
            Unavailable: Redis cannot be reached.
        """
        args: list[Any] = [repr(now), DEFAULT_RESERVATION_GRACE, _res_prefix(workspace_id)]
        for entry in entries:
            args += [_res_prefix(workspace_id) + entry["pattern"], _compact(entry), repr(entry["expires"])]
        others, written = self._run("reserve", self._res_keys(project_id, repo_id), args)
        return Reserved(_loads(others), _loads(written))

    def auto_reserve(self, project_id: int, repo_id: int, workspace_id: int, entries: list[dict[str, Any]],
                     now: float, complete: bool) -> AutoReserved:
        """Make a workspace's automatic entries match `entries` (all with one expiry); returns the
        other workspaces' live entries that may overlap them (a pre-filter: decide overlap after),
        and the patterns this call newly reserved and released (renewals are neither).

        Raises:
            Unavailable: Redis cannot be reached.
        """
        expires = entries[0]["expires"] if entries else now
        args: list[Any] = [repr(now), DEFAULT_RESERVATION_GRACE, _res_prefix(workspace_id), repr(expires),
                           "1" if complete else "0"]
        for entry in entries:
            args += [entry["pattern"], _compact(entry)]
        others, added, released = self._run("autoreserve", self._res_keys(project_id, repo_id), args)
        return AutoReserved(_loads(others), list(added), list(released))

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

    # -- the project event stream and dashboard logins (store/dashboard.py, web/ws.py) --

    @contextlib.contextmanager
    def event_feed(self, project_id: int) -> Iterator[EventFeed]:
        """A reader of the project's event stream that waits without holding a Redis connection
        and reads only when woken (a websocket's whole life: store/wakeups.py)."""
        stream = self.keys.events_key(project_id)
        with self.waker.ticket(self.keys.wake_channel(project_id), stream) as ticket:
            yield EventFeed(self, stream, ticket)

    def recent_events(self, project_id: int, count: int, before: str = "+") -> list[tuple[str, dict[str, str]]]:
        """The newest events of a project up to `before` (exclusive unless "+"), newest first.

        Raises:
            Unavailable: Redis cannot be reached.
        """
        top = before if before == "+" else f"({before}"
        try:
            return self.client.xrevrange(self.keys.events_key(project_id), max=top, count=count)
        except redis.RedisError as exc:
            raise Unavailable(f"redis unreachable: {exc}") from exc

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
        try:
            sid = self.client.xadd(stream, {"id": "", "kind": kind, "data": _compact(payload)},
                                   maxlen=DEFAULT_STREAM_MAXLEN, approximate=True)
            self._announce(project_id, stream)
        except redis.RedisError as exc:
            raise Unavailable(f"redis unreachable: {exc}") from exc
        return sid

    def _announce(self, project_id: int, stream: str) -> None:
        """Wake the waiters of `stream` (store/wakeups.py): what the scripts do for the streams they add to.
        A call of its own: a Redis Cluster refuses PUBLISH in a pipeline."""
        self.client.publish(self.keys.wake_channel(project_id), stream)

    def put_secret(self, key: str, value: dict[str, Any], ttl: int) -> None:
        """Store a login link or session record (`key` from `Keys.login_key`/`session_key`) for `ttl` s."""
        try:
            self.client.set(key, _compact(value), ex=max(ttl, 1))
        except redis.RedisError as exc:
            raise Unavailable(f"redis unreachable: {exc}") from exc

    def read_secret(self, key: str, use: bool) -> dict[str, Any] | None:
        """A login link's record; `use` reads and deletes it in one step (GETDEL), so a one-time link
        works exactly once, while the confirmation page only looks (GET)."""
        try:
            raw = self.client.getdel(key) if use else self.client.get(key)
        except redis.RedisError as exc:
            raise Unavailable(f"redis unreachable: {exc}") from exc
        return json.loads(raw) if raw else None

    def touch_secret(self, key: str, ttl: int) -> dict[str, Any] | None:
        """Read a session record and push its expiry `ttl` s ahead (sliding idle timeout)."""
        pipe = self.client.pipeline(transaction=False)
        pipe.get(key)
        pipe.expire(key, max(ttl, 1))  # a no-op once the key is gone
        try:
            raw, _ = pipe.execute()
        except redis.RedisError as exc:
            raise Unavailable(f"redis unreachable: {exc}") from exc
        return json.loads(raw) if raw else None

    def drop_secret(self, key: str) -> None:
        try:
            self.client.delete(key)
        except redis.RedisError as exc:
            raise Unavailable(f"redis unreachable: {exc}") from exc

    def take(self, buckets: list[tuple[str, Rate]], now: float, what: str) -> None:
        """Take one request from every bucket (all or none): ratelimit.lua.

        Raises:
            RateLimited: a bucket is empty.
            Unavailable: Redis cannot be reached.
        """
        args = [repr(now)] + [a for _, rate in buckets for a in rate.args()]
        wait = int(self._run("ratelimit", [key for key, _ in buckets], args))
        if wait:
            raise _limited(wait, what)

    def revoke(self, project_id: int, workspace_id: int) -> bool:
        """Refuse a workspace's token from now on in every process, and show it offline.

        Raises:
            Unavailable: Redis cannot be reached.
        """
        k = self.keys
        keys = [k.revoked_key(project_id), k.presence_key(project_id), k.online_key(project_id)]
        return bool(self._run("revoke", keys, [workspace_id]))

    def is_revoked(self, project_id: int, workspace_id: int) -> bool:
        """Whether a workspace's token was revoked (long-lived streams re-check it between reads).

        Raises:
            Unavailable: Redis cannot be reached.
        """
        try:
            return bool(self.client.sismember(self.keys.revoked_key(project_id), str(workspace_id)))
        except redis.RedisError as exc:
            raise Unavailable(f"redis unreachable: {exc}") from exc

    # -- waiter slots (store/waiters.py) --

    def enter_waiter(self, project_id: int, owner: str, lease_id: str, now: float, expires: float,
                     owner_cap: int, project_cap: int) -> int:
        """Take a waiter slot: enter.lua. Returns 1 (taken), -1 (the owner's cap) or -2 (the project's).

        Raises:
            Unavailable: Redis cannot be reached.
        """
        keys = [self.keys.waiters_key(project_id), self.keys.owner_waiters_key(project_id, owner)]
        return int(self._run("enter", keys, [repr(now), lease_id, repr(expires), owner_cap, project_cap]))

    def renew_waiter(self, project_id: int, owner: str, lease_id: str, expires: float) -> None:
        """Push a held slot's lease to `expires` (a slot already given back stays given back).

        Raises:
            Unavailable: Redis cannot be reached.
        """
        pipe = self.client.pipeline(transaction=False)
        for key in (self.keys.waiters_key(project_id), self.keys.owner_waiters_key(project_id, owner)):
            pipe.zadd(key, {lease_id: expires}, xx=True)
        try:
            pipe.execute()
        except redis.RedisError as exc:
            raise Unavailable(f"redis unreachable: {exc}") from exc

    def leave_waiter(self, project_id: int, owner: str, lease_id: str) -> None:
        """Give a slot back; a Redis failure only delays that until the lease runs out (no error)."""
        pipe = self.client.pipeline(transaction=False)
        for key in (self.keys.waiters_key(project_id), self.keys.owner_waiters_key(project_id, owner)):
            pipe.zrem(key, lease_id)
        with contextlib.suppress(redis.RedisError):
            pipe.execute()

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


class EventFeed:
    """The project event stream as one long-lived reader sees it (`RedisStore.event_feed`)."""

    #: Most events one read returns (a reader that got this many reads again at once).
    COUNT = 200

    def __init__(self, store: RedisStore, stream: str, ticket: Ticket) -> None:
        self.store, self.stream, self.ticket = store, stream, ticket
        self.due = True  # read at once: events may have come after the caller's cursor

    def read(self, cursor: str, block_ms: int) -> list[tuple[str, dict[str, str]]]:
        """Events after `cursor`, waiting up to `block_ms` for a wake-up when nothing is due.

        Raises:
            Unavailable: Redis cannot be reached.
        """
        if not self.due and not self.ticket.wait(block_ms / 1000):
            return []
        found = self.store._xread(self.stream, cursor, self.COUNT)
        self.due = len(found) >= self.COUNT
        return found
