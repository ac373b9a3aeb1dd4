"""gunicorn's settings for the `web` process: `gunicorn -c python:web.gunicorn_conf "web:create_app()"`.

Loaded by module name, so it works from an installed package as from a checkout (Procfile, `wire serve`).
The values below are the Procfile's, each read from the environment a platform sets; flags given on
the command line win over them (`wire serve` passes its own bind, workers, connections and grace).

gunicorn's master imports this module before it forks: it imports nothing of the app (see web/__init__.py).
"""

from __future__ import annotations

import gc
import os
import sys
from typing import Any

#: Seconds a thread may hold the GIL while others wait for it (Python's default is 0.005). A request
#: holding the SQLite write lock needs the GIL back after each statement; with 32 threads per worker
#: it waited up to 5 ms for it while every other writer waited on the lock. 1 ms gave c=8 claims
#: ~17% more throughput in interleaved runs (bench/README.md).
GIL_SWITCH_INTERVAL = 0.001

#: gevent, with deadlines for slow clients (web/worker.py)
worker_class = "web.worker.Worker"
workers = int(os.environ.get("WEB_CONCURRENCY") or 2)
#: connections (greenlets) per worker: an idle waiter costs a few kilobytes
worker_connections = int(os.environ.get("WEB_CONNECTIONS") or 10000)
bind = [f"{os.environ.get('WEB_HOST') or '0.0.0.0'}:{os.environ.get('PORT') or 8765}"]
#: seconds a worker may finish its requests in on SIGTERM (within the platform's usual 30 s: README)
graceful_timeout = int(os.environ.get("WEB_GRACEFUL_TIMEOUT") or 25)


def post_worker_init(worker: Any) -> None:
    """In each worker process, once it has loaded the app and before it serves: the process that runs
    the requests is the one whose GIL is contended."""
    sys.setswitchinterval(GIL_SWITCH_INTERVAL)
    # What the worker built to serve (modules, the app, its routes and schemas: ~100,000 objects) lives
    # as long as it does: frozen, the cyclic collector no longer walks it on each full collection
    # (~35 ms each, every few thousand requests, paid by whichever request triggered it).
    gc.freeze()
