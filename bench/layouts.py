"""Issue 19's scale-out row (report only): the claim and mail workloads at c=8 against one web and one
worker process, then against two of each, on PostgreSQL, in the same run.

A web process is one gunicorn instance with `wire serve`'s settings (the bench's 2 workers, 10,000
connections each, web/gunicorn_conf.py), a worker one Dramatiq process (1 process × 4 threads, as
`wire serve` starts it); each layout also runs the deployment's one clock. Each layout gets a database
of its own in the run's PostgreSQL cluster and a fresh redis-server, so neither sees the other's rows.
The load threads are spread over the web processes (thread k to web process k mod their number), as a
balancer in front of them would.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from bench import workloads
from bench.load import WORKERS
from cli.serve import DEFAULT_CONNECTIONS
from tests.servers import (
    PgProc,
    ServerProc,
    free_port,
    run_release,
    start_clock,
    start_redis,
    start_web,
    start_worker,
)

#: (web processes, worker processes) of each layout, the baseline first.
LAYOUTS = ((1, 1), (2, 2))
#: gunicorn workers per web process: what the bench gives `wire serve` (bench/ours.py).
WEB_WORKERS = 2


def layout_key(webs: int, workers: int) -> str:
    return f"{webs}w{workers}k"


def bench_layouts(sz: dict, tmp: Path, pg: PgProc) -> dict:
    """Each layout of `LAYOUTS` in turn: {layout_key: its figures}."""
    return {layout_key(w, k): layout_run(sz, tmp, pg, w, k) for w, k in LAYOUTS}


def layout_run(sz: dict, tmp: Path, pg: PgProc, webs: int, workers: int) -> dict:
    """Start the layout's processes on a fresh database and Redis, measure, stop them."""
    key = layout_key(webs, workers)
    redis_proc = start_redis(tmp)
    env = {
        "REDIS_URL": redis_proc.url,
        "DATABASE_URL": pg.create_database(f"layout_{key}"),
        "BEADWIRE_DATA_DIR": tempfile.mkdtemp(prefix=f"layout-{key}-", dir=tmp),
        "MALLOC_ARENA_MAX": "2",  # as `wire serve` sets it
    }
    procs: list[ServerProc] = []
    try:
        t = time.perf_counter()
        run_release(env)
        for _ in range(webs):
            procs.append(start_web(tmp, free_port(), env, DEFAULT_CONNECTIONS, WEB_WORKERS))
        procs += [start_worker(tmp, env) for _ in range(workers)]
        procs.append(start_clock(tmp, env))
        ports = [int(p.url.rsplit(":", 1)[1]) for p in procs if p.url]
        up = time.perf_counter() - t
        print(f"[layout {key}] {webs} web + {workers} worker up in {up:.1f} s", flush=True)
        res: dict[str, Any] = {"webs": webs, "workers": workers, **measure_layout(ports, sz, key)}
        res["server_log_tracebacks"] = sum(
            p.log.read_text(errors="replace").count("Traceback") for p in procs if p.log.exists()
        )
    finally:
        for proc in reversed(procs):
            proc.stop()
        redis_proc.stop()
    return res


def measure_layout(ports: list[int], sz: dict, key: str) -> dict:
    """Claims on distinct beads and mail send, both at c=8, through every web process."""
    _, tokens = workloads.register(ports[0], "bench", [f"w{i:02d}" for i in range(WORKERS)])
    ids = [f"bd-{key}-{i:05d}" for i in range(sz["claims_c8"])]
    workloads.sync_beads(ports[0], tokens[0], ids, "layout bead")
    out = workloads.claims(ports, tokens, {8: ids}, sz["max_s"])
    out.update(workloads.mail(ports, tokens, sz, concs=(8,)))
    print(f"[layout {key}] claim c=8 {out['claim_c8'].get('ops_s')} ops/s, "
          f"mail c=8 {out['mail_c8'].get('ops_s')} ops/s", flush=True)
    return out
