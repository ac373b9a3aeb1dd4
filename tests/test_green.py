"""store/green.py: what a gevent process (the web worker) changes in the store's drivers.

Each check runs in a child interpreter: gevent's monkey-patching is process-wide and one-way.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

from bench.paths import ROOT

#: Patches like web/worker.py, then makes gevent's `poll` fail loudly: redis-py's zero-timeout check
#: for a stale reply must not reach it (it would run a turn of the event loop per Redis command), while
#: a check with a timeout (a pub/sub wait) must still go through it (the real one would block the hub).
_CHILD = textwrap.dedent("""
    from gevent import monkey
    monkey.patch_all()
    import socket
    import select
    from store import green
    green.cooperate()
    from redis._parsers import hiredis

    calls = []
    def cooperative_poll(*args):
        calls.append(args)
        raise RuntimeError("gevent's poll")
    select.poll = cooperative_poll  # what patch_all put there is gevent's; hiredis looks it up there

    a, b = socket.socketpair()
    assert hiredis._socket_can_read(a, 0) is False
    b.send(b"+OK\\r\\n")
    assert hiredis._socket_can_read(a, 0) is True
    assert not calls
    try:
        hiredis._socket_can_read(a, 0.5)
    except RuntimeError:
        pass
    assert len(calls) == 1, calls
    print("ok")
""")


def test_redis_stale_reply_check_skips_the_event_loop_but_a_wait_still_cooperates():
    done = subprocess.run([sys.executable, "-c", _CHILD], cwd=ROOT, capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "ok"
