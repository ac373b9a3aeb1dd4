"""What every domain module of store/redis shares: the client, keys, scripts and waker of one
`RedisStore`, running several scripts in one round trip, and reading and waiting on streams."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable
from typing import Any, cast

import redis
from redis.cluster import RedisCluster

from store.errors import Unavailable
from store.keys import Keys
from store.redis.client import unavailable
from store.redis.scripts import Call, Scripts
from store.wakeups import Waker

#: Approximate length cap of every stream.
DEFAULT_STREAM_MAXLEN = 10_000

#: Stream entries as read: (entry id, fields). RedisStore's client decodes replies to str
#: (`make_client`), so the casts of this package read str where redis-py's stubs say bytes | str.
Entries = list[tuple[str, dict[str, str]]]


#: `json.dumps(value, separators=(",", ":"))` without building an encoder per call (~2 us each, and the
#: heartbeat of every request calls it): the same settings, so the same text.
_compact = json.JSONEncoder(separators=(",", ":")).encode


def compact(value: Any) -> str:
    return _compact(value)


class RedisBase:
    """A client, its scripts and the key builders; the domain modules add their methods to this."""

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.client = client
        self.keys = keys
        self.scripts = Scripts(client)
        #: Wakes this process's waiters when their streams get entries (store/wakeups.py).
        self.waker = Waker(client)

    def run_all(self, calls: list[Call[Any]]) -> list[Any]:
        """Run scripts in order in one round trip (a pipeline, not a transaction: see the callers), and
        return each parsed reply, or the `Unavailable` it failed with (the caller decides per call).

        On a Redis Cluster with keys in several slots, each script is one routed call instead.

        Raises:
            Unavailable: Redis cannot be reached at all, or a script it had forgotten failed when run again.
        """
        pipe = self._script_pipeline([key for call in calls for key in call.keys])
        if pipe is None:  # a cluster and several slots: one routed call each
            return [_attempt(call) for call in calls]
        queue(pipe, calls)
        with unavailable():
            replies = pipe.execute(raise_on_error=False)
        return [settle(call, reply) for call, reply in zip(calls, replies)]

    def _script_pipeline(self, keys: list[str]) -> Any:
        """A pipeline that may carry EVALSHA: the client's own; on a Redis Cluster (whose pipelines refuse
        scripts) one on the node serving `keys` when they share a slot (one project's keys do), else None."""
        if not isinstance(self.client, RedisCluster):
            return self.client.pipeline(transaction=False)
        if len({self.client.keyslot(k) for k in keys}) != 1:
            return None
        node = self.client.get_node_from_key(keys[0])
        return self.client.get_redis_connection(node).pipeline(transaction=False)

    def _announce(self, project_id: int, stream: str) -> None:
        """Wake the waiters of `stream` (store/wakeups.py): what the scripts do for the streams they add to.
        A call of its own: a Redis Cluster refuses PUBLISH in a pipeline."""
        self.client.publish(self.keys.wake_channel(project_id), stream)

    def _xread(self, stream: str, cursor: str, count: int) -> Entries:
        """Entries of `stream` after `cursor`, without blocking."""
        with unavailable():
            read = cast(list[tuple[str, Entries]], self.client.xread({stream: cursor}, count=count))
        return read[0][1] if read else []

    def _await(self, project_id: int, stream: str, timeout_ms: int, read: Callable[[], Entries]) -> Entries:
        """`read()` (which must not block) until it finds something or `timeout_ms` passes, reading
        again whenever `stream` is announced on the project's wake channel: no Redis connection is
        held while waiting (store/wakeups.py)."""
        return self.await_streams(project_id, [stream], timeout_ms, read)

    def await_streams(self, project_id: int, streams: list[str], timeout_ms: int,
                      read: Callable[[], Any]) -> Any:
        """`_await` on several streams of a project at once: `read()` again whenever any is announced."""
        deadline = time.monotonic() + max(timeout_ms, 1) / 1000
        channel, woken = self.keys.wake_channel(project_id), threading.Event()
        with contextlib.ExitStack() as tickets:
            # a ticket on every stream (all share `woken`); waiting on the first waits on them all
            ticket, *_ = [tickets.enter_context(self.waker.ticket(channel, stream, woken))
                          for stream in streams]
            while True:
                found = read()  # after the tickets: an entry added from here on wakes us
                left = deadline - time.monotonic()
                if found or left <= 0:
                    return found
                ticket.wait(left)

    def try_lock(self, name: str, ttl: int) -> bool:
        """A best-effort lease so that one of several workers runs a sweep; expires by itself."""
        with unavailable():
            return bool(self.client.set(self.keys.sweep_lock_key(name), "1", nx=True, ex=max(ttl, 1)))

    def ping(self) -> str:
        try:
            self.client.ping()
            return "ok"
        except redis.RedisError as exc:  # a health answer, not an error: the caller reports it
            return f"error: {exc}"


def queue(pipe: Any, calls: list[Call[Any]]) -> None:
    """Put the scripts of `calls` on a pipeline (from `_script_pipeline`)."""
    for call in calls:
        # plain EVALSHA: a registered script would cost a SCRIPT EXISTS round trip per pipeline
        pipe.evalsha(call.script.sha, len(call.keys), *call.keys, *call.args)


def settle(call: Call[Any], reply: Any) -> Any:
    """One pipelined reply, parsed, or the `Unavailable` a Redis error means; a script Redis had
    forgotten (a restart) is loaded and run again on its own.

    Raises:
        Unavailable: that second run failed.
    """
    if isinstance(reply, redis.exceptions.NoScriptError):
        return call.run()
    if isinstance(reply, redis.RedisError):
        try:
            with unavailable():
                raise reply
        except Unavailable as exc:
            return exc
    return call.parse(reply)


def _attempt(call: Call[Any]) -> Any:
    """call.run(), or the `Unavailable` it raised."""
    try:
        return call.run()
    except Unavailable as exc:
        return exc
