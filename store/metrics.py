"""Metrics for `GET /metrics` (Prometheus text format, written by hand: no client library).

Counters are correct across every gunicorn worker and host. Each process counts its requests in
memory (a lock and three dict increments: about 3 µs), and every `FLUSH_SECONDS` the
request that notices it is due adds the deltas to one Redis hash shared by all processes
(`Keys.metrics_key()`, one pipelined round trip of HINCRBY/HINCRBYFLOAT). A scrape flushes its own
process first and reads that hash, so the totals lag by at most `FLUSH_SECONDS` per other process;
they survive any process dying (except its last unflushed deltas) and only reset with Redis.

Gauges are computed at scrape time from the shared state: queue depth (Dramatiq's Redis layout),
outbox backlog and lag (SQL), online workspaces and open chat waits (the presence and waiting zsets).
Only aggregates leave this module: no alias, id or token is ever a label.
"""

from __future__ import annotations

import threading
import time
from bisect import bisect_left
from collections import defaultdict
from typing import Any

from peewee import fn

from store import Store
from store.errors import Unavailable
from store.models import Outbox, Workspace
from store.util import now

#: Seconds between a process's flushes of its request counters into Redis.
FLUSH_SECONDS = 5.0
#: Upper bounds (seconds) of the request latency histogram buckets.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
#: Bucket label of each index bisect_left(LATENCY_BUCKETS, seconds) can return.
_BOUNDS = (*(str(b) for b in LATENCY_BUCKETS), "+Inf")
#: The Dramatiq queues the actors use (`default`; retries wait in its delay queue).
QUEUES = ("default", "default.DQ")
#: Field separator in the shared hash (never part of a method, route template or status).
_SEP = "\x1f"


class RequestCounters:
    """One process's request counts and latency histogram since its last flush."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[tuple[Any, ...], float] = defaultdict(float)
        self._flushing = threading.Lock()
        self._next_flush = time.monotonic() + FLUSH_SECONDS

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one request; `route` is the URL rule (`/v1/beads/<path:bead_id>`), never the raw path."""
        bucket = _BOUNDS[bisect_left(LATENCY_BUCKETS, seconds)]
        with self._lock:
            counts = self._counts
            counts[("n", method, route, status)] += 1
            counts[("b", method, route, bucket)] += 1
            counts[("s", method, route)] += seconds

    def due(self) -> bool:
        return time.monotonic() >= self._next_flush

    def flush(self, st: Store) -> None:
        """Add what was counted since the last flush to the shared hash; one thread at a time.

        On a Redis error the deltas are put back and tried again at the next flush.
        """
        if not self._flushing.acquire(blocking=False):
            return
        try:
            self._next_flush = time.monotonic() + FLUSH_SECONDS
            with self._lock:
                deltas, self._counts = self._counts, defaultdict(float)
            if not deltas:
                return
            counts = {_SEP.join(map(str, labels)): int(v) for labels, v in deltas.items() if labels[0] != "s"}
            sums = {_SEP.join(map(str, labels)): v for labels, v in deltas.items() if labels[0] == "s"}
            try:
                st.redis.add_counters(counts, sums)
            except Unavailable:
                with self._lock:
                    for field, value in deltas.items():
                        self._counts[field] += value
        finally:
            self._flushing.release()


#: This process's counters (web processes observe every request into it).
requests = RequestCounters()


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(**labels: str) -> str:
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items()) + "}"


def _request_lines(shared: dict[str, str]) -> list[str]:
    """The request counter and latency histogram families from the shared hash."""
    totals: dict[tuple[str, str, str], float] = {}
    buckets: dict[tuple[str, str], dict[str, float]] = defaultdict(dict)
    sums: dict[tuple[str, str], float] = {}
    for field, raw in shared.items():
        parts = field.split(_SEP)
        if len(parts) == 4 and parts[0] == "n":
            totals[(parts[1], parts[2], parts[3])] = float(raw)
        elif len(parts) == 4 and parts[0] == "b":
            buckets[(parts[1], parts[2])][parts[3]] = float(raw)
        elif len(parts) == 3 and parts[0] == "s":
            sums[(parts[1], parts[2])] = float(raw)
    lines = ["# HELP beadwire_http_requests_total HTTP requests answered, by method, route and status.",
             "# TYPE beadwire_http_requests_total counter"]
    for (method, route, status), value in sorted(totals.items()):
        labels = _labels(method=method, route=route, status=status)
        lines.append(f"beadwire_http_requests_total{labels} {value:g}")
    lines += ["# HELP beadwire_http_request_duration_seconds "
              "Time to answer HTTP requests, by method and route.",
              "# TYPE beadwire_http_request_duration_seconds histogram"]
    for (method, route), counts in sorted(buckets.items()):
        cumulative = 0.0
        for bound in [*(str(b) for b in LATENCY_BUCKETS), "+Inf"]:
            cumulative += counts.get(bound, 0.0)
            labels = _labels(method=method, route=route, le=bound)
            lines.append(f"beadwire_http_request_duration_seconds_bucket{labels} {cumulative:g}")
        labels = _labels(method=method, route=route)
        total = sums.get((method, route), 0.0)
        lines.append(f"beadwire_http_request_duration_seconds_sum{labels} {total:.6f}")
        lines.append(f"beadwire_http_request_duration_seconds_count{labels} {cumulative:g}")
    return lines


def _gauge(name: str, help_text: str, value: float, **labels: str) -> list[str]:
    written = _labels(**labels) if labels else ""
    return [f"# HELP {name} {help_text}", f"# TYPE {name} gauge", f"{name}{written} {value:g}"]


def _outbox() -> tuple[int, float]:
    """(rows not yet confirmed delivered, age in seconds of the oldest of them)."""
    count, oldest = (Outbox.select(fn.COUNT(Outbox.id), fn.MIN(Outbox.created_ts))
                     .where(Outbox.delivered_ts.is_null()).scalar(as_tuple=True))
    return int(count or 0), max(now() - oldest, 0.0) if oldest is not None else 0.0


def _presence_and_waits(st: Store, ts: float) -> tuple[int, int]:
    """(workspaces online now, chat waits still open), summed over every project.

    Raises:
        Unavailable: Redis cannot be reached.
    """
    pairs = list(Workspace.select(Workspace.project, Workspace.id).tuples())
    return st.redis.online_and_waiting(pairs, ts - st.settings.presence_ttl, ts)


def render(st: Store) -> str:
    """The whole exposition: this process's counters are flushed first so the caller sees them.

    Raises:
        Unavailable: Redis cannot be reached (SQL errors surface as the app's storage errors).
    """
    requests.flush(st)
    shared = st.redis.counters()
    queued = st.redis.queue_depths(QUEUES, st.settings.redis_cluster)
    online, waits = _presence_and_waits(st, now())
    backlog, lag = _outbox()
    lines = _request_lines(shared)
    lines += ["# HELP beadwire_queue_messages Dramatiq messages queued or in flight, by queue.",
              "# TYPE beadwire_queue_messages gauge"]
    lines += [f"beadwire_queue_messages{_labels(queue=q)} {n}" for q, n in queued.items()]
    lines += _gauge("beadwire_outbox_undelivered", "Outbox rows not yet confirmed delivered to Redis.",
                    backlog)
    lines += _gauge("beadwire_outbox_lag_seconds",
                    "Age of the oldest outbox row not yet confirmed delivered (0 when none).", round(lag, 3))
    lines += _gauge("beadwire_online_workspaces", "Workspaces seen within the presence TTL, all projects.",
                    online)
    lines += _gauge("beadwire_open_chats", "Chat asks still waiting for a reply (agents blocked on one).",
                    waits)
    return "\n".join(lines) + "\n"


def snapshot(st: Store) -> dict[str, Any]:
    """The gauges alone, as a dict (tests, `wire` diagnostics)."""
    online, waits = _presence_and_waits(st, now())
    backlog, lag = _outbox()
    return {"online_workspaces": online, "open_chats": waits, "outbox_undelivered": backlog,
            "outbox_lag_seconds": lag}
