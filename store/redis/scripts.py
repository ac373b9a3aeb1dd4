"""The Lua scripts of store/lua, one typed wrapper each, loaded once per client (`Scripts`).

A wrapper declares its script's KEYS and ARGV by name, checks every call against them (a wrong count
is a `TypeError` here, not a Lua error on the server), and turns the reply into Python values. Calling
a wrapper prepares a `Call`; `Call.run()` runs it alone, or `RedisBase.run_all` runs several in one
round trip. Every key comes from store/keys.py and is passed in KEYS, never built inside Lua, so
each script stays within one project's hash slot on a Redis Cluster (tests/test_lua_cluster.py).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar, Generic, NamedTuple, TypeVar

import hiredis
import redis

from store.redis.client import unavailable

LUA_DIR = Path(__file__).parent.parent / "lua"
T = TypeVar("T")


def _loads(values: list[str]) -> list[dict[str, Any]]:
    return [json.loads(v) for v in values]


class Call(NamedTuple, Generic[T]):
    """One prepared invocation of a script: its keys, its arguments and how to read its reply (a tuple:
    one is made for every script run, and a frozen dataclass costs ~1.5 us more to build)."""

    script: Script
    keys: list[str]
    args: list[Any]
    parse: Callable[[Any], T]

    def run(self) -> T:
        """Run the script alone (EVALSHA, loading it first if Redis forgot it).

        Raises:
            Unavailable: Redis cannot be reached (or the script failed).
        """
        return self.parse(self.script.run_checked(self.keys, self.args))


class Script:
    """A Lua file and the names of its KEYS and ARGV; a last name ending in "..." repeats (0 or more
    times, in groups of `REPEAT` values)."""

    FILE: ClassVar[str]
    KEYS: ClassVar[tuple[str, ...]]
    ARGS: ClassVar[tuple[str, ...]]
    REPEAT: ClassVar[int] = 1
    #: Files of Lua functions put before this script's text (Redis scripts cannot `require`).
    INCLUDES: ClassVar[tuple[str, ...]] = ()

    def __init__(self, client: redis.Redis, spare: Spare | None = None) -> None:
        self.lua = client.register_script(self.source())
        # a plain client (not a cluster, nor a test double): EVALSHA is sent straight on a pooled
        # connection, which costs ~15 us less a call than redis-py's command path (its observability
        # hooks); the pool, the retries of a dropped connection and the errors stay redis-py's
        self.pool = client.connection_pool if type(client) is redis.Redis else None
        self.spare = spare or (Spare(self.pool) if self.pool is not None else None)

    @classmethod
    def source(cls) -> str:
        return "\n".join((LUA_DIR / name).read_text() for name in (*cls.INCLUDES, cls.FILE))

    @property
    def sha(self) -> str:
        return str(self.lua.sha)

    @classmethod
    def check(cls, keys: Sequence[str], args: Sequence[Any]) -> None:
        """Raise TypeError unless `keys` and `args` match the declared names."""
        _check_count(cls.FILE, "keys", cls.KEYS, len(keys), 1)
        _check_count(cls.FILE, "arguments", cls.ARGS, len(args), cls.REPEAT)

    def prepare(self, keys: list[str], args: list[Any], parse: Callable[[Any], T]) -> Call[T]:
        self.check(keys, args)
        return Call(self, keys, args, parse)

    def run(self, keys: list[str], args: list[Any]) -> Any:
        """The raw reply of one run (wrappers parse it).

        Raises:
            Unavailable: Redis cannot be reached (or the script failed).
        """
        self.check(keys, args)
        return self.run_checked(keys, args)

    def run_checked(self, keys: list[str], args: list[Any]) -> Any:
        """`run` for keys and arguments already checked (`prepare`).

        Raises:
            Unavailable: Redis cannot be reached (or the script failed).
        """
        with unavailable():
            packed = self._packed(keys, args) if self.pool is not None else None
            if packed is not None:
                try:
                    return self._evalsha(packed)
                except redis.exceptions.NoScriptError:
                    pass  # Redis restarted or was flushed: redis-py loads the script and runs it again
            return self.lua(keys=keys, args=args)

    def _packed(self, keys: list[str], args: list[Any]) -> list[bytes] | None:
        """The EVALSHA command as sent, None for arguments hiredis cannot write (redis-py then refuses
        them its own way)."""
        try:
            return [hiredis.pack_command(("EVALSHA", self.sha, len(keys), *keys, *args))]
        except TypeError:
            return None

    def _evalsha(self, packed: list[bytes]) -> Any:
        """One EVALSHA on a pooled connection (redis-py's own retry when the connection had dropped)."""
        spare = self.spare
        assert spare is not None  # `run` sends here only with a pool
        conn = spare.take()
        try:
            reply = conn.retry.call_with_retry(lambda: _send_and_read(conn, packed),
                                               lambda _: conn.disconnect())
        except BaseException:  # the pool checks it before it is used again (it may hold a half-read reply)
            spare.pool.release(conn)
            raise
        spare.give(conn)
        return reply


class Spare:
    """One connection of a client's pool kept checked out between script runs, for the next one.

    Each authenticated request runs the heartbeat script and most writes a second one; through the
    pool each run pays a checkout and a return (a queue under a condition variable and connection-count
    metrics: ~5 us, more under gevent's locks). A connection given back here has just read its whole
    reply; any run that failed gives its connection to the pool instead. Before a kept one is used it
    gets the pool's own check (nothing to read: else the server closed it, and the pool reconnects).
    One at most is kept (others go back to the pool at once), so the pool's bound still holds, and
    one from before a fork is dropped.
    """

    def __init__(self, pool: Any) -> None:
        self.pool = pool
        self._idle: list[Any] = []

    def take(self) -> Any:
        """A connection: the kept one if there is one (and it is this process's), else the pool's."""
        try:
            conn = self._idle.pop()  # atomic: two threads never get the same one
        except IndexError:
            return self.pool.get_connection()
        if conn.pid != os.getpid():  # inherited through a fork: the parent's socket, never ours to use
            return self.pool.get_connection()
        if _has_data(conn):  # closed by the server (a restart, a kill) while kept: the pool reconnects it
            self.pool.release(conn)
            return self.pool.get_connection()
        return conn

    def give(self, conn: Any) -> None:
        """Keep `conn` for the next run, or return it to the pool when one is kept already."""
        if self._idle or conn.should_reconnect():
            self.pool.release(conn)
        else:
            self._idle.append(conn)


def _has_data(conn: Any) -> bool:
    """Whether a kept connection has something to read before anything was sent: only a server
    that closed it does that (the pool's own check before it hands a connection out)."""
    try:
        return bool(conn.can_read())
    except (redis.ConnectionError, redis.TimeoutError, OSError):
        return True


def _send_and_read(conn: Any, packed: list[bytes]) -> Any:
    conn.send_packed_command(packed)
    return conn.read_response()


def _check_count(file: str, what: str, names: tuple[str, ...], got: int, repeat: int) -> None:
    if names and names[-1].endswith("..."):
        fixed = len(names) - 1
        if got >= fixed and (got - fixed) % repeat == 0:
            return
        wanted = f"{fixed} {what} and then groups of {repeat}" if repeat > 1 else f"at least {fixed} {what}"
    else:
        if got == len(names):
            return
        wanted = f"{len(names)} {what}"
    raise TypeError(f"{file} takes {wanted} ({', '.join(names)}), got {got}")


# -- presence and the heartbeat (store/redis/presence.py) --


BannerReply = tuple[list[tuple[str, dict[str, str]]], int, list[dict[str, Any]]]
#: (verdict, touch, rebuild, banner): verdict -1 (revoked) or ms until admitted (nothing written, the rest
#: empty), else 0 with SQL last_seen due, a mailbox rebuild to request, and the banner.
HeartbeatReply = tuple[int, bool, bool, BannerReply]


def _fields(flat: list[str]) -> dict[str, str]:
    return dict(zip(flat[::2], flat[1::2]))


def _banner(reply: list[Any]) -> BannerReply:
    new, pending, waiting = reply
    return [(sid, _fields(flat)) for sid, flat in new], int(pending), [json.loads(w) for w in waiting if w]


def _heartbeat(reply: list[Any]) -> HeartbeatReply:
    if int(reply[0]) != 0:
        return int(reply[0]), False, False, ([], 0, [])
    _, touch, rebuild, banner = reply
    return 0, bool(touch), bool(rebuild), _banner(banner)


class HeartbeatKeys(NamedTuple):
    """The keys of one heartbeat (heartbeat.lua's KEYS, in order), all in one project's hash slot."""

    revoked: str
    token_bucket: str
    project_bucket: str
    presence: str
    online: str
    touch: str
    events: str
    epoch: str
    rebuilding: str
    mailbox: str
    waiting: str
    waitinfo: str


class Heartbeat(Script):
    """heartbeat.lua: admit (revoked? rate buckets), then mark alive, rebuild due?, banner: atomic."""

    FILE = "heartbeat.lua"
    INCLUDES = ("gcra.inc.lua", "admit.inc.lua", "presence.inc.lua", "rebuild.inc.lua", "banner.inc.lua")
    KEYS = HeartbeatKeys._fields  # one name per key, in heartbeat.lua's order
    ARGS = ("workspace", "now", "token_interval", "token_tolerance", "project_interval", "project_tolerance",
            "presence", "touch_ttl", "offline_before", "online_event", "maxlen", "wake", "retry", "group",
            "consumer", "count", "seen")

    def __call__(self, keys: HeartbeatKeys, *, workspace_id: int, now: float, token_rate: list[str],
                 project_rate: list[str], fields: str, touch_ttl: int, offline_before: float,
                 online_event: str, maxlen: int, wake: str, retry: int, group: str, consumer: str,
                 count: int, seen: str) -> Call[HeartbeatReply]:
        args = [workspace_id, repr(now), *token_rate, *project_rate, fields, touch_ttl, repr(offline_before),
                online_event, maxlen, wake, retry, group, consumer, count, seen]
        return self.prepare(list(keys), args, _heartbeat)


class Revoke(Script):
    """revoke.lua: True when the workspace was not revoked before."""

    FILE, KEYS, ARGS = "revoke.lua", ("revoked", "presence", "online"), ("workspace",)

    def __call__(self, revoked: str, presence: str, online: str, *, workspace_id: int) -> Call[bool]:
        return self.prepare([revoked, presence, online], [workspace_id], bool)


class RateLimit(Script):
    """ratelimit.lua: 0 when every bucket took the request, else ms until they would."""

    FILE, INCLUDES = "ratelimit.lua", ("gcra.inc.lua",)
    KEYS, ARGS, REPEAT = ("bucket...",), ("now", "interval, tolerance..."), 2

    def __call__(self, buckets: list[tuple[str, list[str]]], *, now: float) -> Call[int]:
        """`buckets`: (key, [interval, tolerance]) each."""
        args = [repr(now), *(a for _, shape in buckets for a in shape)]
        return self.prepare([key for key, _ in buckets], args, int)


# -- mailboxes (store/redis/mailbox.py) --


class Publish(Script):
    """publish.lua: True when delivered now, False when this outbox id was delivered before."""

    FILE = "publish.lua"
    KEYS = ("delivered", "events", "mailbox", "index")
    ARGS = ("outbox_id", "kind", "payload", "maxlen", "dedupe_ttl", "to_events", "delivery_id", "wake")

    def __call__(self, delivered: str, events: str, mailbox: str, index: str, *, outbox_id: int, kind: str,
                 payload: str, maxlen: int, dedupe_ttl: int, to_events: bool, delivery_id: int | str,
                 wake: str) -> Call[bool]:
        return self.prepare([delivered, events, mailbox, index],
                            [outbox_id, kind, payload, maxlen, dedupe_ttl, "1" if to_events else "0",
                             delivery_id, wake], bool)


class Ack(Script):
    """ack.lua: how many of the delivery ids were pending (and are acknowledged now)."""

    FILE, KEYS, ARGS = "ack.lua", ("mailbox", "index"), ("group", "delivery_id...")

    def __call__(self, mailbox: str, index: str, *, group: str, delivery_ids: list[int]) -> Call[int]:
        return self.prepare([mailbox, index], [group, *delivery_ids], int)


class Wait(Script):
    """wait.lua: mark (a deadline) or clear ("0") that one workspace waits on another's reply."""

    FILE, KEYS, ARGS = "wait.lua", ("waiting", "waitinfo"), ("waiter", "deadline", "info")

    def __call__(self, waiting: str, waitinfo: str, *, waiter_id: int, deadline: str, info: str) -> Call[int]:
        return self.prepare([waiting, waitinfo], [waiter_id, deadline, info], int)


class Reclaim(Script):
    """reclaim.lua: how many entries left unread too long were shown again."""

    FILE, KEYS = "reclaim.lua", ("mailbox", "index")
    ARGS = ("group", "consumer", "min_idle_ms", "count", "wake")

    def __call__(self, mailbox: str, index: str, *, group: str, consumer: str, min_idle_ms: int, count: int,
                 wake: str) -> Call[int]:
        return self.prepare([mailbox, index], [group, consumer, min_idle_ms, count, wake], int)


# -- reservations (store/redis/reservations.py): entries are JSON, their field is "<ws>\0<pattern>" --


ReserveReply = tuple[list[dict[str, Any]], list[dict[str, Any]]]


class Reserve(Script):
    """reserve.lua: (others' live entries, the entries written)."""

    FILE, KEYS = "reserve.lua", ("reservations", "expiries")
    ARGS, REPEAT = ("now", "grace", "prefix", "field, entry, expiry..."), 3

    def __call__(self, reservations: str, expiries: str, *, now: float, grace: int, prefix: str,
                 triples: list[tuple[str, str, float]]) -> Call[ReserveReply]:
        args: list[Any] = [repr(now), grace, prefix]
        for field, entry, expires in triples:
            args += [field, entry, repr(expires)]
        return self.prepare([reservations, expiries], args, lambda r: (_loads(r[0]), _loads(r[1])))


AutoReply = tuple[list[dict[str, Any]], list[str], list[str]]


class AutoReserve(Script):
    """autoreserve.lua: (others' entries that may overlap, patterns added, patterns released)."""

    FILE, KEYS = "autoreserve.lua", ("reservations", "expiries")
    ARGS, REPEAT = ("now", "grace", "prefix", "expires", "complete", "pattern, entry..."), 2

    def __call__(self, reservations: str, expiries: str, *, now: float, grace: int, prefix: str,
                 expires: float, complete: bool, pairs: list[tuple[str, str]]) -> Call[AutoReply]:
        args: list[Any] = [repr(now), grace, prefix, repr(expires), "1" if complete else "0"]
        for pattern, entry in pairs:
            args += [pattern, entry]
        return self.prepare([reservations, expiries], args, lambda r: (_loads(r[0]), list(r[1]), list(r[2])))


class Unreserve(Script):
    """unreserve.lua: the entries removed."""

    FILE, KEYS, ARGS = "unreserve.lua", ("reservations", "expiries"), ("prefix", "field...")

    def __call__(self, reservations: str, expiries: str, *, prefix: str,
                 fields: list[str]) -> Call[list[dict[str, Any]]]:
        return self.prepare([reservations, expiries], [prefix, *fields], _loads)


class Expire(Script):
    """expire.lua: the entries whose lease ended (each returned once, whoever sweeps)."""

    FILE, KEYS, ARGS = "expire.lua", ("reservations", "expiries"), ("now", "limit")

    def __call__(self, reservations: str, expiries: str, *, now: float,
                 limit: int) -> Call[list[dict[str, Any]]]:
        return self.prepare([reservations, expiries], [repr(now), limit], _loads)


# -- waiter slots (store/redis/slots.py) --


class Enter(Script):
    """enter.lua: 1 (slot taken), -1 (the owner's cap) or -2 (the project's cap)."""

    FILE, KEYS = "enter.lua", ("waiters", "owner_waiters")
    ARGS = ("now", "lease_id", "expires", "owner_cap", "project_cap")

    def __call__(self, waiters: str, owner_waiters: str, *, now: float, lease_id: str, expires: float,
                 owner_cap: int, project_cap: int) -> Call[int]:
        args = [repr(now), lease_id, repr(expires), owner_cap, project_cap]
        return self.prepare([waiters, owner_waiters], args, int)


#: Every wrapper, one per script file (tests/test_redis_scripts.py checks none is missing).
WRAPPERS: tuple[type[Script], ...] = (Heartbeat, Revoke, RateLimit, Publish, Ack, Wait,
                                      Reclaim, Reserve, AutoReserve, Unreserve, Expire, Enter)


class Scripts:
    """The scripts registered on one client, loaded once (redis-py loads each on its first EVALSHA miss)."""

    def __init__(self, client: redis.Redis) -> None:
        # one kept connection for all of a client's scripts (`Spare`), not one each
        spare = Spare(client.connection_pool) if type(client) is redis.Redis else None
        self.heartbeat = Heartbeat(client, spare)
        self.revoke = Revoke(client, spare)
        self.ratelimit = RateLimit(client, spare)
        self.publish = Publish(client, spare)
        self.ack = Ack(client, spare)
        self.wait = Wait(client, spare)
        self.reclaim = Reclaim(client, spare)
        self.reserve = Reserve(client, spare)
        self.autoreserve = AutoReserve(client, spare)
        self.unreserve = Unreserve(client, spare)
        self.expire = Expire(client, spare)
        self.enter = Enter(client, spare)
