"""What the store does differently in a gevent process (the web worker, web/worker.py).

gevent runs every request of a process on one OS thread and switches between them only where a
call would block on a socket, a lock or a sleep. A call that blocks in C without telling gevent
(psycopg2 waiting for PostgreSQL, `os.fsync`, a contended `flock`) would stall every request of the
process. So: psycopg2 gets psycogreen's wait callback, and the few blocking system calls of the SQLite
write path run in gevent's pool of real threads (`offload`). Outside gevent everything runs inline.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TypeVar

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


def offload(call: Callable[..., T], *args: object) -> T:
    """`call(*args)` in a real OS thread when gevent runs this process, so that only the caller waits."""
    if not active():
        return call(*args)
    import gevent  # noqa: PLC0415  (only a gevent process gets here: see `cooperate`)

    return gevent.get_hub().threadpool.apply(call, args)
