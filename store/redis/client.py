"""Redis clients, and the one place a Redis error becomes `Unavailable` (`unavailable()`)."""

from __future__ import annotations

from typing import Literal

import redis
from redis.cluster import RedisCluster

from store.errors import Unavailable

#: Redis connections one process keeps at most (waiters hold none while they wait: store/wakeups.py).
DEFAULT_POOL_SIZE = 64
#: Seconds a call waits for a free pooled connection before it fails (503).
DEFAULT_POOL_WAIT = 10.0
#: Socket timeouts (s): reads must outlast the longest blocking read (a 30 s chat or watch slice);
#: redis-py 8 defaults to 5 s, which cut every longer XREAD short with "Timeout reading from socket".
#: Connecting stays quick, so a Redis that is down is a fast 503.
_TIMEOUTS = {"socket_timeout": 60.0, "socket_connect_timeout": 5.0}


class _Translate:
    """The context manager `unavailable()` returns: a class, not a `contextlib.contextmanager`
    generator, because every Redis call enters one (the heartbeat of every request), and a generator's
    set-up and teardown cost ~1.5 us against ~0.3 us here. It keeps no state, so one serves all."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: object) -> Literal[False]:
        if isinstance(exc, redis.RedisError):
            raise Unavailable(f"redis unreachable: {exc}") from exc
        return False  # anything else (or nothing) goes on as it was


_TRANSLATE = _Translate()


def unavailable() -> _Translate:
    """Turn any Redis error raised inside into `Unavailable` (503), keeping the cause (`raise ... from`).

    Every Redis call of the store runs inside one of these, so web, CLI and actors see one error
    whatever failed: a refused connection, a timeout, a script error or a full pool.

    Raises:
        Unavailable: a `redis.RedisError` was raised inside.
    """
    return _TRANSLATE


def make_client(url: str, cluster: bool = False, decode: bool = True) -> redis.Redis:
    """A Redis client for `url` (redis://, rediss:// or unix://), decoding to str unless `decode` is off.

    With `cluster`, `url` names any one node of a Redis Cluster and the client (a `RedisCluster`,
    same command API) discovers the others and routes each command, script or pipeline by the slot
    of its keys; every multi-key operation here stays in one project's hash tag, hence one slot.
    """
    if cluster:
        # a RedisCluster has Redis's command API without being a subclass: typed as one here
        return RedisCluster.from_url(url, decode_responses=decode, **_TIMEOUTS)  # type: ignore[return-value]
    # a bounded pool that makes callers queue for a connection: under gevent thousands of requests may
    # run at once, and the default pool refuses the 101st ("Too many connections")
    pool = redis.BlockingConnectionPool.from_url(url, decode_responses=decode, health_check_interval=30,
                                                 max_connections=DEFAULT_POOL_SIZE, timeout=DEFAULT_POOL_WAIT,
                                                 **_TIMEOUTS)
    return redis.Redis(connection_pool=pool)
