"""What the store does differently in a gevent process (the web worker, web/worker.py).

gevent runs every request of a process on one OS thread and switches between them only where a
call would block on a socket, a lock or a sleep. A call that blocks in C without telling gevent
(psycopg2 waiting for PostgreSQL, `os.fsync`, a contended `flock`) would stall every request of the
process. So: psycopg2 gets psycogreen's wait callback, and the few blocking system calls of the SQLite
write path run in gevent's pool of real threads (`offload`). Outside gevent everything runs inline.

One patched call is cheaper unpatched: redis-py checks, each time it hands out a pooled connection,
that no stale reply waits on it (`select.poll` with timeout 0). gevent's poll answers that by
arming a watcher and a timer and running a turn of the event loop, twice a Redis command; a zero
timeout never blocks, so the check uses the real `poll` (`_ready_now`).
"""

from __future__ import annotations

import select
import sys
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def active() -> bool:
    """True in a process whose threading gevent has patched (the web worker)."""
    monkey = sys.modules.get("gevent.monkey")
    return monkey is not None and monkey.is_module_patched("threading")


def cooperate() -> None:
    """Make the database drivers yield to other greenlets while they wait (call after patching)."""
    # imported only by a gevent process (web/worker.py): others never load gevent
    from psycogreen.gevent import patch_psycopg  # noqa: PLC0415

    patch_psycopg()
    _check_redis_replies_inline()


def _check_redis_replies_inline() -> None:
    """redis-py's zero-timeout "has a reply arrived?" check through the real `poll` (see the module doc);
    a check with a timeout (a pub/sub wait) still waits through gevent's."""
    # imported here with gevent: only a gevent process patches them
    from gevent import monkey  # noqa: PLC0415
    from redis._parsers import hiredis  # noqa: PLC0415

    cooperative = getattr(hiredis, "_socket_can_read", None)
    if cooperative is None:  # a redis-py that checks otherwise: nothing to replace
        return
    real_poll = monkey.get_original("select", "poll")

    def can_read(sock: Any, timeout: float | None) -> bool:
        if timeout != 0 or (hasattr(sock, "pending") and sock.pending()):
            return bool(cooperative(sock, timeout))
        poller = real_poll()
        poller.register(sock, select.POLLIN)
        return bool(poller.poll(0))

    hiredis._socket_can_read = can_read


def offload(call: Callable[..., T], *args: object) -> T:
    """`call(*args)` in a real OS thread when gevent runs this process, so that only the caller waits."""
    if not active():
        return call(*args)
    import gevent  # noqa: PLC0415  (only a gevent process gets here: see `cooperate`)

    return gevent.get_hub().threadpool.apply(call, args)
