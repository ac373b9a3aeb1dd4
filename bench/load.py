"""The load generator: one keep-alive HTTP/1.1 connection per thread, load loops capped by count and
time, nearest-rank statistics, and a sampler of the CPU other processes take meanwhile.

It uses http.client (no httpx/requests): client and server share the same cores, so the client must stay lean.
"""

from __future__ import annotations

import collections
import http.client
import itertools
import json
import os
import pwd
import statistics
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"

#: Workload sizes: full run and --quick. Each loop also stops at `max_s` seconds.
SIZES = {
    "full": {
        "claims_c1": 200,
        "claims_c8": 800,
        "status_c1": 300,
        "status_c8": 800,
        "online_big": 1000,
        "status_big": 50,
        "race_rounds": 20,
        "cli_runs": 10,
        "mail_c1": 300,
        "mail_c8": 1000,
        "chat_n": 200,  # 50 rounds: medians 5.31 to 5.98 ms for one code; the p99 was the max
        "profile_s": 5.0,
        "max_s": 20.0,
    },
    "quick": {
        "claims_c1": 50,
        "claims_c8": 200,
        "status_c1": 100,
        "status_c8": 200,
        "online_big": 200,
        "status_big": 10,
        "race_rounds": 5,
        "cli_runs": 3,
        "mail_c1": 100,
        "mail_c8": 200,
        "chat_n": 10,
        "profile_s": 3.0,
        "max_s": 8.0,
    },
}
#: Agents racing for one bead per round.
RACERS = 20
#: Above this CPU % (of one core) taken by other processes during a measurement, its ratio is flagged.
NOISY_PCT = 25
#: The bearer token bench/ceiling_app.py's minimal mail accepts.
CEILING_TOKEN = "ceiling-token"
#: The two routes of bench/ceiling_app.py measured with the mail loops: (result key prefix, row name);
#: on a PostgreSQL run only the bare one, on PostgreSQL (`CEILING_PG_ROW`).
CEILING_ROWS = (
    ("", "ceiling: bare Flask `POST /mail`, 1 SQLite txn + 1 XADD, no auth (bench/ceiling_app.py)"),
    (
        "min_",
        "ceiling: minimal mail `POST /mail-min`, token + presence Lua + 3 inserts + publish Lua, no ORM",
    ),
)
CEILING_PG_ROW = (
    "",
    "ceiling: bare Flask `POST /mail`, 1 PostgreSQL txn (psycopg2) + 1 XADD, no auth (bench/ceiling_app.py)",
)
#: Workspaces of the claim and mail loops (one per load thread); workspaces online for `GET /v1/status`.
WORKERS = 8
ONLINE = 50

_CLK = os.sysconf("SC_CLK_TCK")


class CpuSampler:
    """Samples, every `interval` s, the machine's busy CPU time and the CPU time of the benchmark's own
    processes (this process and its descendants, BeadHub, its Redis and the `pgrun` PostgreSQL), so that
    each measurement can report how much CPU *other* processes (e.g. test runs) took meanwhile.
    """

    def __init__(self, interval: float = 0.25) -> None:
        self.interval = interval
        self.samples: list[tuple[float, int, int]] = []  # (monotonic, busy jiffies, known jiffies)
        self.extra_pids: set[int] = set()
        self.failed = 0
        self._stop = threading.Event()
        try:
            self.pg_uid: int | None = pwd.getpwnam("pgrun").pw_uid
        except KeyError:
            self.pg_uid = None
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def start(self) -> CpuSampler:
        self.thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self.thread.join(5)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.samples.append(self._sample())
            except Exception:  # noqa: BLE001 - a failed sample is just skipped
                self.failed += 1
            self._stop.wait(self.interval)

    def _sample(self) -> tuple[float, int, int]:
        t = time.monotonic()
        f = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]
        user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in f)
        busy = user + nice + system + irq + softirq + steal
        stats: dict[int, tuple[int, int]] = {}
        for d in os.scandir("/proc"):
            if not d.name.isdigit():
                continue
            try:
                rest = Path(f"/proc/{d.name}/stat").read_text().rsplit(")", 1)[1].split()
                pid = int(d.name)
                stats[pid] = (int(rest[1]), int(rest[11]) + int(rest[12]) + int(rest[13]) + int(rest[14]))
                if self.pg_uid is not None and d.stat().st_uid == self.pg_uid:
                    self.extra_pids.add(pid)
            except (OSError, IndexError, ValueError):
                continue
        me = os.getpid()
        known = {me} | {p for p in self.extra_pids if p in stats}
        kids: dict[int, list[int]] = collections.defaultdict(list)
        for pid, (ppid, _) in stats.items():
            kids[ppid].append(pid)
        todo = [me] + [p for p in known if p != me]
        while todo:
            for c in kids.get(todo.pop(), []):
                if c not in known:
                    known.add(c)
                    todo.append(c)
        return t, busy, sum(stats[p][1] for p in known if p in stats)

    def foreign_pct(self, start: float, end: float) -> float | None:
        """CPU % (of one core) used by processes outside the benchmark between `start` and `end`."""
        inside = [x for x in self.samples if start - self.interval / 2 <= x[0] <= end + self.interval / 2]
        if len(inside) < 2:
            return None
        a, b = inside[0], inside[-1]
        if b[0] <= a[0]:
            return None
        return round(max(0.0, ((b[1] - a[1]) - (b[2] - a[2])) / _CLK / (b[0] - a[0]) * 100))


SAMPLER: CpuSampler | None = None


def fill_other_cpu(obj: Any, sampler: CpuSampler) -> None:
    """Give every result that has a monotonic "window" its `other_cpu_pct` (after sampling stopped)."""
    if isinstance(obj, dict):
        w = obj.get("window")
        if isinstance(w, list) and len(w) == 2:
            obj["other_cpu_pct"] = sampler.foreign_pct(w[0], w[1])
        for v in obj.values():
            fill_other_cpu(v, sampler)
    elif isinstance(obj, list):
        for v in obj:
            fill_other_cpu(v, sampler)


class Conn:
    """One keep-alive HTTP/1.1 connection (one per load thread)."""

    retries = 0  # reconnects after the server closed an idle keep-alive connection (class-wide)

    def __init__(self, port: int, token: str | None = None) -> None:
        self.port = port
        self.token = token
        self.conn = http.client.HTTPConnection(HOST, port, timeout=60)
        #: The `X-Wire-Banner` header of the last answer (None when absent).
        self.banner: str | None = None

    def close(self) -> None:
        self.conn.close()

    def call(self, method: str, path: str, body: Any = None, token: str | None = None) -> tuple[int, bytes]:
        headers = {"Content-Type": "application/json"}
        bearer = token or self.token
        if bearer:
            headers["Authorization"] = f"Bearer {bearer}"
        data = None if body is None else json.dumps(body).encode()
        for attempt in (0, 1):
            try:
                self.conn.request(method, path, body=data, headers=headers)
                resp = self.conn.getresponse()
                self.banner = resp.getheader("X-Wire-Banner")
                return resp.status, resp.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                # the server dropped an idle keep-alive connection before reading the request
                self.conn.close()
                if attempt:
                    raise
                Conn.retries += 1
        raise AssertionError("unreachable")

    def json(
        self,
        method: str,
        path: str,
        body: Any = None,
        token: str | None = None,
        expect: tuple[int, ...] = (200, 201),
    ) -> Any:
        status, raw = self.call(method, path, body, token)
        if status not in expect:
            raise RuntimeError(f"{method} {path} -> {status}: {raw[:300]!r}")
        return json.loads(raw or b"null")


def pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile (the same rule as the peer harness)."""
    s = sorted(values)
    k = max(0, min(len(s) - 1, round(p / 100.0 * len(s) + 0.5) - 1))
    return s[k]


def summary(lat_ms: list[float], wall_s: float, statuses: collections.Counter, ok: int = 200) -> dict:
    good = statuses.get(ok, 0)
    return {
        "n": len(lat_ms),
        "n_ok": good,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "wall_s": round(wall_s, 3),
        "median_ms": round(statistics.median(lat_ms), 2) if lat_ms else None,
        "p99_ms": round(pct(lat_ms, 99), 2) if lat_ms else None,
        "ops_s": round(good / wall_s, 1) if wall_s > 0 else None,
    }


def run_load(
    port: int | Sequence[int],
    n: int,
    conc: int,
    max_s: float,
    op: Callable[[Conn, int, int], int],
    ok: int = 200,
) -> dict:
    """Run op(conn, thread_no, i) for i in [0, n) on `conc` threads, each with its own connection.

    Stops at n ops or `max_s` seconds. op returns the HTTP status. Ops/s counts `ok` answers only.
    Given several ports (web processes of one deployment), thread k connects to port k mod their number.
    """
    ports = [port] if isinstance(port, int) else list(port)
    counter = itertools.count()
    deadline = time.monotonic() + max_s
    lats: list[list[float]] = [[] for _ in range(conc)]
    stats = [collections.Counter() for _ in range(conc)]
    errors: list[str] = []
    ready = threading.Barrier(conc + 1)

    def worker(tid: int) -> None:
        conn = Conn(ports[tid % len(ports)])
        try:
            conn.call("GET", "/v1/health")  # open + warm the connection before the clock starts
        finally:
            ready.wait(30)
        mine, st = lats[tid], stats[tid]
        perf = time.perf_counter
        try:
            while True:
                i = next(counter)
                if i >= n or time.monotonic() > deadline:
                    return
                t = perf()
                status = op(conn, tid, i)
                mine.append((perf() - t) * 1000)
                st[status] += 1
        except Exception as exc:  # noqa: BLE001 - report, don't hang the run
            errors.append(repr(exc))
        finally:
            conn.close()

    threads = [threading.Thread(target=worker, args=(k,), daemon=True) for k in range(conc)]
    for t in threads:
        t.start()
    ready.wait(30)
    t0, m0 = time.perf_counter(), time.monotonic()
    for t in threads:
        t.join(max_s + 60)
    wall = time.perf_counter() - t0
    m1 = time.monotonic()
    total = collections.Counter()
    for s in stats:
        total.update(s)
    out = summary([x for part in lats for x in part], wall, total, ok)
    out["window"] = [round(m0, 3), round(m1, 3)]
    if errors:
        out["client_errors"] = errors[:5]
    return out
