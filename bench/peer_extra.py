#!/usr/bin/env python3
"""Peer workload the BeadHub harness lacks: `GET /v1/status` with N (default 1,000) workspaces online.

Run with the peer's venv (it imports the peer's harness, ../shared/peer/bench.py beside the repository,
which needs httpx); bench/peer.py runs it:

    $PEER/venv/bin/python bench/peer_extra.py --base http://127.0.0.1:8765 [--online 1000] [--n 50]

Registers N agents in a fresh project (`POST /v1/init`, 8 threads), sends one heartbeat each (BeadHub's
presence call), then times `GET /v1/status` at c=1. Prints one JSON line. Loopback only; capped.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

#: The peer's harness, beside the repository (this runs in the peer's venv: it imports nothing of ours).
PEER_HARNESS = Path(__file__).resolve().parents[2] / "shared" / "peer" / "bench.py"


def load_harness():
    spec = importlib.util.spec_from_file_location("peer_harness", PEER_HARNESS)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", default="http://127.0.0.1:8765")
    ap.add_argument("--online", type=int, default=1000)
    ap.add_argument("--n", type=int, default=50)
    ap.add_argument("--max-s", type=float, default=40.0)
    args = ap.parse_args()
    assert args.base.startswith(("http://127.0.0.1", "http://localhost")), "loopback only"
    h = load_harness()
    slug = f"peer-big-{uuid.uuid4().hex[:6]}"
    init_500s: list[str] = []

    def init(i: int) -> dict:
        # BeadHub 0.3.1 sometimes answers 500 here: UniqueViolationError on "idx_api_keys_prefix_unique"
        # (two generated API keys share a prefix; likelier as keys accumulate). Retry, and report how often.
        for attempt in range(3):
            try:
                return h.init_agent(args.base, slug, f"b{i:04d}", f"Big{i}")
            except h.httpx.HTTPStatusError as exc:
                if exc.response.status_code != 500 or attempt == 2:
                    raise
                init_500s.append(exc.response.text[:200])
        raise AssertionError("unreachable")

    t0 = time.perf_counter()
    first = init(0)  # creates the project
    with ThreadPoolExecutor(8) as ex:
        agents = [first, *ex.map(init, range(1, args.online))]
    register_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    with ThreadPoolExecutor(8) as ex:
        codes = list(ex.map(lambda a: h.heartbeat(args.base, a).status_code, agents))
    online_s = time.perf_counter() - t0
    c = h.client(args.base)
    st = c.get("/v1/status", headers=h.H(agents[0]))
    body = st.json()
    lat, errs = [], 0
    end = time.monotonic() + args.max_s
    m0, t0 = time.monotonic(), time.perf_counter()
    for i in range(args.n):
        if time.monotonic() > end:
            break
        t = time.perf_counter()
        r = c.get("/v1/status", headers=h.H(agents[i % len(agents)]))
        if r.status_code == 200:
            lat.append((time.perf_counter() - t) * 1000)
        else:
            errs += 1
    wall, m1 = time.perf_counter() - t0, time.monotonic()
    out = {
        "online": len(agents),
        "register_s": round(register_s, 2),
        "heartbeat_s": round(online_s, 2),
        "heartbeat_non200": sum(1 for x in codes if x != 200),
        "init_500s_retried": len(init_500s),
        "status_agents_listed": len(body.get("agents", [])),
        "status_bytes": len(st.content),
        "status_c1": {
            "n_ok": len(lat),
            "n_err": errs,
            "wall_s": round(wall, 3),
            "median_ms": round(statistics.median(lat), 2) if lat else None,
            "p99_ms": round(h.pct(lat, 99), 2) if lat else None,
            "throughput_rps": round(len(lat) / wall, 1) if wall > 0 else None,
            "window": [m0, m1],
        },  # CLOCK_MONOTONIC: comparable with bench.py's clock
    }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
