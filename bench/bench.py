#!/usr/bin/env python3
"""beadwire load benchmark, with an optional side-by-side run of the BeadHub 0.3.1 peer.

    python3 bench/bench.py [--peer] [--quick] [--database sqlite|postgres] [--profile]

Starts its own `wire serve` stack (tests/servers.py) on a free loopback port, registers agents and
measures: claims on distinct beads (c=1, c=8), `GET /v1/status` with 50 workspaces online (c=1, c=8)
and with 1,000 online (c=1), a 20-agent race on one bead, mail send (c=1, c=8), chat reply-to-waiter
latency, server RSS, and `wire` CLI wall time.
With `--peer` it then starts BeadHub (/work/shared/peer/setup.sh) and runs the same workloads through
the peer's own harness (bench.py there) plus `bench/peer_extra.py` (1,000 online), or falls back to
the recorded peer figures. Prints one markdown table and writes it to bench/out/<timestamp>.md.

Loopback only; every load loop is capped by a count and a time limit. Not part of the tests.
The load generator uses http.client with one keep-alive connection per thread (no httpx/requests):
client and server share the same cores, so the client must stay lean.
"""

from __future__ import annotations

import argparse
import collections
import glob
import http.client
import itertools
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.servers import free_port, start_postgres, start_stack

PEER_DIR = Path("/work/shared/peer")
PEER_VENV_PY = Path("/tmp/peer/venv/bin/python")
PEER_RECORDED = PEER_DIR / "results" / "bench-fresh-db.json"
PEER_DEFAULT_PORT = 8765
OUT_DIR = ROOT / "bench" / "out"
REPO_ORIGIN = "https://github.com/bench/beadwire-bench"
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
        "chat_n": 50,
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
RACERS = 20
#: Above this CPU % (of one core) taken by other processes during a measurement, its ratio is flagged.
NOISY_PCT = 25
#: The bearer token bench/ceiling_app.py's minimal mail accepts.
CEILING_TOKEN = "ceiling-token"
#: The two routes of bench/ceiling_app.py measured with the mail loops: (result key prefix, row name).
CEILING_ROWS = (
    ("", "ceiling: bare Flask `POST /mail`, 1 SQLite txn + 1 XADD, no auth (bench/ceiling_app.py)"),
    ("min_", "ceiling: minimal mail `POST /mail-min`, token + presence Lua + 3 inserts + publish Lua, no ORM"),
)
WORKERS = 8
ONLINE = 50


# ------------------------------------------------------------------------------- background CPU

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
            import pwd

            self.pg_uid: int | None = pwd.getpwnam("pgrun").pw_uid
        except (KeyError, ImportError):
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


def fill_other_cpu(obj: Any) -> None:
    """Give every result that has a monotonic "window" its `other_cpu_pct` (after sampling stopped)."""
    if isinstance(obj, dict):
        w = obj.get("window")
        if isinstance(w, list) and len(w) == 2 and SAMPLER:
            obj["other_cpu_pct"] = SAMPLER.foreign_pct(w[0], w[1])
        for v in obj.values():
            fill_other_cpu(v)
    elif isinstance(obj, list):
        for v in obj:
            fill_other_cpu(v)


# ------------------------------------------------------------------------------------ HTTP client


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


# ------------------------------------------------------------------------------------- statistics


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
    port: int, n: int, conc: int, max_s: float, op: Callable[[Conn, int, int], int], ok: int = 200
) -> dict:
    """Run op(conn, thread_no, i) for i in [0, n) on `conc` threads, each with its own connection.

    Stops at n ops or `max_s` seconds. op returns the HTTP status. Ops/s counts `ok` answers only.
    """
    counter = itertools.count()
    deadline = time.monotonic() + max_s
    lats: list[list[float]] = [[] for _ in range(conc)]
    stats = [collections.Counter() for _ in range(conc)]
    errors: list[str] = []
    ready = threading.Barrier(conc + 1)

    def worker(tid: int) -> None:
        conn = Conn(port)
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


# ------------------------------------------------------------------------------------ our server


def register(
    port: int, project: str, aliases: list[str], conc: int = 1, max_s: float = 120.0
) -> tuple[str, list[str]]:
    """Create `project` with the first alias, join the rest with the project key; return key + tokens."""
    conn = Conn(port)
    body = {
        "project": project,
        "repo_origin": REPO_ORIGIN,
        "alias": aliases[0],
        "human": f"Human {aliases[0]}",
    }
    first = conn.json("POST", "/v1/init", body)
    conn.close()
    key, tokens = first["project_key"], [first["token"]] + [""] * (len(aliases) - 1)
    failures: list[str] = []

    def op(c: Conn, tid: int, i: int) -> int:
        alias = aliases[i + 1]
        status, raw = c.call(
            "POST",
            "/v1/init",
            {"project": project, "repo_origin": REPO_ORIGIN, "alias": alias, "human": f"Human {alias}"},
            token=key,
        )
        if status == 201:
            tokens[i + 1] = json.loads(raw)["token"]
        else:
            failures.append(f"{status} {raw[:200]!r}")
        return status

    res = run_load(port, len(aliases) - 1, conc, max_s, op)
    if failures or not all(tokens):
        raise RuntimeError(f"registration of {project} failed: {failures[:3]} ({res})")
    return key, tokens


def make_online(port: int, tokens: list[str], conc: int, max_s: float = 120.0) -> dict:
    """Each workspace makes one authenticated call (GET /v1/mine), which refreshes its presence."""
    return run_load(
        port, len(tokens), conc, max_s, lambda c, tid, i: c.call("GET", "/v1/mine", token=tokens[i])[0]
    )


def sync_beads(port: int, token: str, ids: list[str], title: str) -> dict:
    rows = [
        {"id": b, "title": f"{title} {b}", "status": "open", "priority": 2, "issue_type": "task"} for b in ids
    ]
    conn = Conn(port)
    res = conn.json(
        "POST",
        "/v1/sync",
        {"mode": "incremental", "jsonl": "".join(json.dumps(r) + "\n" for r in rows)},
        token=token,
    )
    conn.close()
    if res.get("created") != len(ids):
        raise RuntimeError(f"bead sync created {res.get('created')} of {len(ids)}: {res}")
    return res


def process_tree(root_pid: int) -> dict[int, str]:
    """pid -> cmdline for every descendant of root_pid (from /proc)."""
    children: dict[int, list[int]] = collections.defaultdict(list)
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children[ppid].append(int(d.name))
    out, todo = {}, [root_pid]
    while todo:
        pid = todo.pop()
        for c in children.get(pid, []):
            try:
                out[c] = Path(f"/proc/{c}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            todo.append(c)
    return out


def vm_kib(pid: int, field: str = "VmRSS") -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def stack_rss(root_pid: int) -> dict:
    """RSS (MiB) of the stack's processes: web = gunicorn master + workers, worker = Dramatiq processes."""
    groups: dict[str, list[int]] = collections.defaultdict(list)
    for pid, cmd in process_tree(root_pid).items():
        kind = (
            "web"
            if "gunicorn" in cmd
            else "worker"
            if "dramatiq" in cmd
            else "clock"
            if "actors.clock" in cmd
            else "redis"
            if "redis-server" in cmd
            else None
        )
        if kind:
            groups[kind].append(pid)
    mib = {k: round(sum(vm_kib(p) for p in pids) / 1024, 1) for k, pids in groups.items()}
    mib["procs"] = {k: len(v) for k, v in groups.items()}
    mib["server"] = round(mib.get("web", 0) + mib.get("worker", 0), 1)
    return mib


def gunicorn_master(root_pid: int) -> int | None:
    tree = process_tree(root_pid)
    gpids = {p for p, c in tree.items() if "gunicorn" in c}
    for pid in gpids:
        try:
            ppid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if ppid not in gpids:
            return pid
    return None


def profile_run(stack, seconds: float, load: Callable[[], dict]) -> dict:
    """An extra, unmeasured load run (`load()`) with py-spy sampling every gunicorn process (-s)."""
    spy = shutil.which("py-spy")
    master = gunicorn_master(stack.pid)
    if not spy or not master:
        return {"skipped": "py-spy not installed" if not spy else "no gunicorn master found"}
    raw = Path(tempfile.mkstemp(prefix="pyspy-", suffix=".txt")[1])
    args = [
        spy,
        "record",
        "-p",
        str(master),
        "-s",
        "--idle",
        "--nolineno",
        "-r",
        "100",
        "-f",
        "raw",
        "-d",
        str(int(seconds) + 1),
        "-o",
        str(raw),
    ]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(0.7)  # let it attach
    run = load()
    try:
        _, err = proc.communicate(timeout=seconds + 30)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
    out = {"during_profile": run, "py_spy_rc": proc.returncode}
    if not raw.exists() or raw.stat().st_size == 0:
        out["error"] = err.decode(errors="replace")[-500:]
        return out
    out.update(summarise_profile(raw.read_text()))
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    kept = OUT_DIR / f"pyspy-{time.strftime('%Y%m%d-%H%M%S')}.txt"
    shutil.move(str(raw), kept)
    out["raw"] = str(kept)
    return out


#: Leaf frames of threads that are idle by design: the gthread pool waiting for work (the blocking
#: queue get is C code, so `_worker` is the Python leaf), the gunicorn master's and a worker's main loop.
IDLE_LEAVES = (
    "_worker (concurrent/futures/thread.py)",
    "Arbiter.wait_for_signals",
    "wait (threading.py)",
    "select (selectors.py)",
    "poll (selectors.py)",
    "Arbiter.sleep",
    "get (queue.py)",
    "ThreadWorker.wait_for_and_dispatch_events",
    "ThreadWorker.run",
)
#: Leaf frame of a request thread queued for the SQLite writer lock (thread mutex + flock).
LOCK_WAIT = "WriterLock.hold (store/sqlite_writer.py)"


def summarise_profile(text: str) -> dict:
    """From py-spy's raw (collapsed) output: idle / waiting for the writer lock / working samples, and the
    top frames of the working samples (self = leaf, inclusive = anywhere on the stack)."""
    leaf: collections.Counter = collections.Counter()
    incl: collections.Counter = collections.Counter()
    kinds: collections.Counter = collections.Counter()
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = [f for f in stack.split(";") if not f.startswith(("process ", "thread "))]
        n = int(count)
        if not frames or any(x in frames[-1] for x in IDLE_LEAVES):
            kinds["idle"] += n
            continue
        if frames[-1] == LOCK_WAIT:
            kinds["writer_lock_wait"] += n
            continue
        kinds["working"] += n
        leaf[frames[-1]] += n
        for f in set(frames):
            incl[f] += n
    work = kinds["working"]
    ours = collections.Counter(
        {f: c for f, c in incl.items() if any(f"({p}/" in f for p in ("store", "web", "actors"))}
    )
    libs = collections.Counter(
        {
            f: c
            for f, c in incl.items()
            if any(
                f"({p}/" in f or f"({p}." in f
                for p in (
                    "peewee",
                    "sqlite3",
                    "psycopg2",
                    "redis",
                    "flask",
                    "werkzeug",
                    "marshmallow",
                    "json",
                    "playhouse",
                )
            )
        }
    )

    def top(c: collections.Counter, k: int) -> list[list]:
        return [[f, v, round(100 * v / work, 1) if work else 0] for f, v in c.most_common(k)]

    request = kinds["working"] + kinds["writer_lock_wait"]
    return {
        "samples": dict(kinds),
        "writer_lock_wait_share_of_request_samples": round(100 * kinds["writer_lock_wait"] / request, 1)
        if request
        else None,
        "top_self": top(leaf, 15),
        "top_inclusive_ours": top(ours, 15),
        "top_inclusive_libs": top(libs, 12),
    }


#: `wire` commands timed by `cli_times` (name -> argv after `wire --json`; {bead} is a fresh bead each run).
CLI_COMMANDS = {
    "whoami": ["whoami"],
    "status": ["status"],
    "ready": ["ready"],
    "claim": ["claim", "{bead}"],
    "mail send": ["mail", "send", "cli-agent", "bench mail from the CLI"],
}


def cli_times(url: str, runs: int, tmp: Path) -> dict:
    """Wall time of each `wire --json <command>` of CLI_COMMANDS in a fresh git repo (median of `runs`)."""
    wire = Path(sys.executable).parent / "wire"
    cmd = [str(wire)] if wire.exists() else [sys.executable, "-c", "from cli import main; main()"]
    repo = tmp / "cli-repo"
    repo.mkdir()
    env = {**os.environ, "WIRE_URL": url, "WIRE_CONFIG_DIR": str(tmp / "wire-config"), "NO_COLOR": "1"}
    env.pop("WIRE_JSON", None)
    for g in (
        ["init", "-q"],
        ["remote", "add", "origin", "https://github.com/bench/cli-repo.git"],
        ["config", "user.name", "Bench"],
    ):
        subprocess.run(["git", *g], cwd=repo, check=True, capture_output=True)

    def wire_run(*args: str) -> tuple[float, subprocess.CompletedProcess]:
        t = time.perf_counter()
        done = subprocess.run(
            [*cmd, "--json", *args],
            cwd=repo,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        return (time.perf_counter() - t) * 1000, done

    _, done = wire_run("init", "--project", "benchcli", "--alias", "cli-agent")
    if done.returncode != 0:
        return {"error": f"wire init failed ({done.returncode}): {done.stderr[-400:] or done.stdout[-400:]}"}
    beads: list[str] = []
    for k in range(runs + 6):  # 5 for `ready` to list, the rest to claim (one per run + warm-up)
        _, done = wire_run("create", f"cli bead {k}")
        try:
            beads.append(json.loads(done.stdout)["id"])
        except (ValueError, KeyError, TypeError):
            return {"error": f"wire create failed ({done.returncode}): {done.stderr[-400:] or done.stdout[-400:]}"}
    fresh = iter(beads[5:])
    out: dict[str, Any] = {"command": " ".join(cmd)}
    for name, argv in CLI_COMMANDS.items():

        def args(argv: list[str] = argv) -> list[str]:
            return [next(fresh) if a == "{bead}" else a for a in argv]

        wire_run(*args())  # warm-up (page cache), not counted
        lat, codes = [], collections.Counter()
        for _ in range(runs):
            ms, done = wire_run(*args())
            lat.append(ms)
            codes[done.returncode] += 1
        out[name] = {
            "n": len(lat),
            "exit_codes": dict(codes),
            "median_ms": round(statistics.median(lat), 1),
            "p99_ms": round(pct(lat, 99), 1),
            "ops_s": round(1000 * len(lat) / sum(lat), 1),
        }
    return out


def bench_mail(port: int, workers: list[str], sz: dict) -> dict:
    """Mail send at c=1 and c=8 (201 counts), then how long until every mail sits in its mailbox."""
    out: dict[str, Any] = {}
    received: collections.Counter = collections.Counter()
    lock = threading.Lock()

    def send(c: Conn, tid: int, i: int) -> int:
        to = (i + 1) % WORKERS
        body = {"to": f"w{to:02d}", "subject": f"m{i}", "body": f"bench message {i} " + "x" * 100}
        status = c.call("POST", "/v1/mail", body, workers[i % WORKERS])[0]
        if status == 201:
            with lock:
                received[to] += 1
        return status

    for conc in (1, 8):
        r = run_load(port, sz[f"mail_c{conc}"], conc, sz["max_s"], send, ok=201)
        out[f"mail_c{conc}"] = r
        print(f"[ours] mail send c={conc}: {r}", flush=True)
    out["mail_delivery"] = mail_drained(port, workers, received, sz["max_s"] * 3)
    print(f"[ours] mail delivery: {out['mail_delivery']}", flush=True)
    return out


def bench_ceiling(sz: dict, tmp: Path) -> dict:
    """The same mail loops against bench/ceiling_app.py under `wire serve`'s gunicorn settings: its
    bare route (one SQLite transaction + one XADD, nothing else), what this machine allows any such
    server right now, and its minimal mail (token lookup, presence Lua, three inserts, publish Lua)."""
    from cli.serve import _gunicorn_extra_args
    from tests.servers import _health, _start_child, start_redis

    redis_proc = start_redis(tmp)
    port = free_port()
    env = {"REDIS_URL": redis_proc.url, "CEILING_DB": str(tmp / "ceiling.db"), "CEILING_TOKEN": CEILING_TOKEN,
           "PYTHONPATH": str(ROOT)}
    # fmt: off
    args = [sys.executable, "-m", "gunicorn", "-k", "gthread", "-w", "2", "--threads", "32",
            "-b", f"{HOST}:{port}", "--graceful-timeout", "5", *_gunicorn_extra_args(), "bench.ceiling_app:app"]
    # fmt: on
    url = f"http://{HOST}:{port}"
    out: dict[str, Any] = {}
    web = _start_child("ceiling", args, tmp, env, lambda _: _health(url), url)
    try:
        for route, prefix in (("/mail", ""), ("/mail-min", "min_")):
            def send(c: Conn, tid: int, i: int, route: str = route) -> int:
                body = {"to": f"w{(i + 1) % WORKERS:02d}", "subject": f"m{i}", "body": f"bench message {i} " + "x" * 100}
                return c.call("POST", route, body, CEILING_TOKEN)[0]

            for conc in (1, 8):
                r = run_load(port, sz[f"mail_c{conc}"], conc, sz["max_s"], send, ok=201)
                out[f"{prefix}mail_c{conc}"] = r
                print(f"[ceiling] POST {route} c={conc}: {r}", flush=True)
    finally:
        web.stop()
        redis_proc.stop()
    return out


def mail_drained(port: int, workers: list[str], received: collections.Counter, max_s: float) -> dict:
    """Seconds until each recipient's banner counts every mail sent to it as unread (i.e. the outbox
    worker has put them all into the mailbox streams), polled with `GET /v1/whoami` calls (each reads at
    most 20 new entries). Measured from the end of the last send loop, so it includes the worker's lag."""
    t0 = time.perf_counter()
    conn = Conn(port)
    left = {k: n for k, n in received.items() if n}
    calls = 0
    while left and time.perf_counter() - t0 < max_s:
        for k in list(left):
            conn.call("GET", "/v1/whoami", token=workers[k])
            calls += 1
            banner = json.loads(conn.banner) if conn.banner else {}
            if banner.get("unread", 0) >= left[k]:
                del left[k]
    conn.close()
    return {
        "mails": sum(received.values()),
        "all_delivered": not left,
        "seconds": round(time.perf_counter() - t0, 2),
        "whoami_calls": calls,
    }


def chat_rounds(port: int, ana: str, bob: str, n: int, max_s: float) -> dict:
    """`n` sequential chat round trips: chat-a asks (`POST /v1/chat` with wait) and blocks in
    `GET /v1/chat/wait` on its own connection; 50 ms later (as the peer harness's sleep before replying)
    chat-b answers with `POST /v1/chat`. Latency = from the reply POST starting to the waiter's answer."""
    ask, reply, wait = Conn(port, ana), Conn(port, bob), Conn(port, ana)
    for c in (ask, reply, wait):
        c.call("GET", "/v1/health")  # open + warm
    lat: list[float] = []
    ask_ms: list[float] = []
    errors: list[str] = []
    start = time.monotonic()
    deadline = start + max_s
    for i in range(n):
        if time.monotonic() > deadline:
            break
        t = time.perf_counter()
        status, raw = ask.call("POST", "/v1/chat", {"to": "chat-b", "body": f"q{i}", "wait": 60})
        ask_ms.append((time.perf_counter() - t) * 1000)
        if status != 201:
            errors.append(f"ask {i}: {status} {raw[:200]!r}")
            continue
        asked = json.loads(raw)
        query = f"with=chat-b&after={asked['message']['id']}&cursor={asked['cursor']}&timeout=10"
        got: dict[str, Any] = {}

        def waiter(query: str = query, got: dict = got) -> None:
            try:
                got["status"], got["raw"] = wait.call("GET", f"/v1/chat/wait?{query}")
            except Exception as exc:  # noqa: BLE001 - report, don't hang the run
                got["error"] = repr(exc)
            got["t"] = time.perf_counter()

        th = threading.Thread(target=waiter, daemon=True)
        th.start()
        time.sleep(0.05)  # let the wait block on the mailbox before the reply
        t_send = time.perf_counter()
        status, raw = reply.call("POST", "/v1/chat", {"to": "chat-a", "body": f"a{i}"})
        th.join(15)
        if status != 201:
            errors.append(f"reply {i}: {status} {raw[:200]!r}")
            continue
        messages = json.loads(got.get("raw") or b"{}").get("messages", []) if got.get("status") == 200 else []
        if [m["body"] for m in messages] == [f"a{i}"]:
            lat.append((got["t"] - t_send) * 1000)
        else:
            errors.append(f"wait {i}: {got.get('status')} {got.get('error') or got.get('raw', b'')[:200]!r}")
    for c in (ask, reply, wait):
        c.close()
    return {
        "n": len(lat),
        "median_ms": round(statistics.median(lat), 2) if lat else None,
        "p99_ms": round(pct(lat, 99), 2) if lat else None,
        "max_ms": round(max(lat), 2) if lat else None,
        "ask_median_ms": round(statistics.median(ask_ms), 2) if ask_ms else None,
        "errors": errors[:5],
        "window": [start, time.monotonic()],
    }


def bench_ours(args, sz: dict, tmp: Path) -> dict:
    res: dict[str, Any] = {"database": args.database}
    pg = None
    database_url = None
    if args.database == "postgres":
        pg = start_postgres(tmp)
        database_url = pg.url
    t0 = time.perf_counter()
    stack = start_stack(tmp, database_url=database_url, workers=2)
    res["stack_start_s"] = round(time.perf_counter() - t0, 2)
    port = int(stack.url.rsplit(":", 1)[1])
    res["url"] = stack.url
    print(f"[ours] stack up at {stack.url} ({args.database}) in {res['stack_start_s']} s", flush=True)
    try:
        time.sleep(1.0)  # let workers settle before the first RSS reading
        res["rss_start_mib"] = stack_rss(stack.pid)
        print(f"[ours] RSS start {res['rss_start_mib']}", flush=True)

        # --- project "bench": 8 claim workers + 20 racers, beads pre-created by sync
        t = time.perf_counter()
        aliases = [f"w{i:02d}" for i in range(WORKERS)] + [f"racer{i:02d}" for i in range(RACERS)]
        _, tokens = register(port, "bench", aliases)
        workers, racers = tokens[:WORKERS], tokens[WORKERS:]
        res["init_ms_avg"] = round((time.perf_counter() - t) * 1000 / len(aliases), 2)
        c1_ids = [f"bd-c1-{i:05d}" for i in range(sz["claims_c1"])]
        c8_ids = [f"bd-c8-{i:05d}" for i in range(sz["claims_c8"])]
        pf_ids = [f"bd-pf-{i:05d}" for i in range(1500 if args.profile else 0)]
        race_ids = [f"bd-race-{r:02d}" for r in range(sz["race_rounds"])]
        t = time.perf_counter()
        sync_beads(port, workers[0], c1_ids + c8_ids + pf_ids + race_ids, "bench bead")
        res["sync_ms"] = round((time.perf_counter() - t) * 1000, 1)
        res["sync_beads"] = len(c1_ids + c8_ids + pf_ids + race_ids)
        print(
            f"[ours] setup: {len(aliases)} inits avg {res['init_ms_avg']} ms; sync of {res['sync_beads']} beads "
            f"{res['sync_ms']} ms",
            flush=True,
        )

        # --- claims on distinct beads: one op = one POST /v1/beads/<id>/claim
        for conc, ids in ((1, c1_ids), (8, c8_ids)):
            r = run_load(
                port,
                len(ids),
                conc,
                sz["max_s"],
                lambda c, tid, i, ids=ids: c.call(
                    "POST", f"/v1/beads/{ids[i]}/claim", {}, workers[tid % WORKERS]
                )[0],
            )
            res[f"claim_c{conc}"] = r
            print(f"[ours] claim c={conc}: {r}", flush=True)

        if args.profile:
            print("[ours] profiling an extra c=8 claim run with py-spy ...", flush=True)
            res["profile"] = profile_run(
                stack,
                sz["profile_s"],
                lambda: run_load(
                    port,
                    len(pf_ids),
                    8,
                    sz["profile_s"],
                    lambda c, tid, i: c.call(
                        "POST", f"/v1/beads/{pf_ids[i]}/claim", {}, workers[tid % WORKERS]
                    )[0],
                ),
            )
            print_profile(res["profile"], "c=8 claims")

        # --- race: 20 agents, one bead per round, barrier, exactly one 200 expected
        rounds = []
        race_start = time.monotonic()
        for rnd, bead in enumerate(race_ids):
            conns = [Conn(port, racers[k]) for k in range(RACERS)]
            barrier = threading.Barrier(RACERS)
            results: list[int] = [0] * RACERS

            def racer(
                k: int, bead: str = bead, conns: list = conns, barrier=barrier, results=results
            ) -> None:
                conns[k].call("GET", "/v1/health")  # connection open and warm before the barrier
                barrier.wait(30)
                results[k] = conns[k].call("POST", f"/v1/beads/{bead}/claim", {})[0]

            ths = [threading.Thread(target=racer, args=(k,), daemon=True) for k in range(RACERS)]
            t = time.perf_counter()
            for th in ths:
                th.start()
            for th in ths:
                th.join(60)
            wall = (time.perf_counter() - t) * 1000
            for c in conns:
                c.close()
            st = collections.Counter(results)
            rounds.append(
                {
                    "bead": bead,
                    "winners_200": st.get(200, 0),
                    "losers_409": st.get(409, 0),
                    "other": {str(k): v for k, v in st.items() if k not in (200, 409)},
                    "wall_ms": round(wall, 1),
                }
            )
        conn = Conn(port)
        claims = conn.json("GET", "/v1/claims", token=workers[0])
        conn.close()
        holders = collections.Counter(c["bead"] for c in claims if c["bead"] in set(race_ids))
        for r in rounds:
            r["holders_after"] = holders.get(r["bead"], 0)
        res["race"] = {
            "agents": RACERS,
            "rounds": rounds,
            "rounds_exactly_one_200": sum(1 for r in rounds if r["winners_200"] == 1),
            "rounds_clean": sum(1 for r in rounds if r["winners_200"] == 1 and r["losers_409"] == RACERS - 1),
            "rounds_one_holder": sum(1 for r in rounds if r["holders_after"] == 1),
            "max_winners": max((r["winners_200"] for r in rounds), default=None),
            "window": [race_start, time.monotonic()],
        }
        print(
            f"[ours] race: exactly one 200 in {res['race']['rounds_exactly_one_200']}/{len(rounds)} rounds; "
            f"clean (1x200 + 19x409) {res['race']['rounds_clean']}; one holder after "
            f"{res['race']['rounds_one_holder']}",
            flush=True,
        )

        # --- mail send: one op = one POST /v1/mail to one recipient, as the peer harness's (a): the
        # sender is workspace i % 8, the recipient the next one; then wait until every mail is delivered
        res.update(bench_mail(port, workers, sz))
        # --- chat: reply -> blocked waiter, sequential rounds between two fresh workspaces
        _, pair = register(port, "chat", ["chat-a", "chat-b"])
        res["chat"] = chat_rounds(port, pair[0], pair[1], sz["chat_n"], sz["max_s"])
        print(f"[ours] chat reply -> waiter: {res['chat']}", flush=True)

        # --- status with 50 online (separate project), 10 of them holding a claim
        _, st50 = register(port, "status50", [f"s{i:02d}" for i in range(ONLINE)])
        sync_beads(port, st50[0], [f"bd-st-{i:02d}" for i in range(10)], "status bead")
        conn = Conn(port)
        for i in range(10):
            conn.json("POST", f"/v1/beads/bd-st-{i:02d}/claim", {}, token=st50[i])
        conn.close()
        make_online(port, st50, conc=4)
        conn = Conn(port)
        _, raw = conn.call("GET", "/v1/status", token=st50[0])
        conn.close()
        body = json.loads(raw)
        res["status50_online"] = sum(1 for w in body["team"] if w["online"])
        res["status50_bytes"] = len(raw)
        for conc, n in ((1, sz["status_c1"]), (8, sz["status_c8"])):
            r = run_load(
                port,
                n,
                conc,
                sz["max_s"],
                lambda c, tid, i: c.call("GET", "/v1/status", token=st50[i % ONLINE])[0],
            )
            res[f"status50_c{conc}"] = r
            print(
                f"[ours] status 50 online ({res['status50_online']} seen, {len(raw)} B) c={conc}: {r}",
                flush=True,
            )

        # --- status with 1000 online (c=1)
        t = time.perf_counter()
        _, big = register(port, "status1000", [f"b{i:04d}" for i in range(sz["online_big"])], conc=8)
        res["big_register_s"] = round(time.perf_counter() - t, 2)
        sync_beads(port, big[0], [f"bd-big-{i:02d}" for i in range(10)], "status bead")
        conn = Conn(port)
        for i in range(10):
            conn.json("POST", f"/v1/beads/bd-big-{i:02d}/claim", {}, token=big[i])
        conn.close()
        t = time.perf_counter()
        res["big_online_calls"] = make_online(port, big, conc=8)
        res["big_online_s"] = round(time.perf_counter() - t, 2)
        conn = Conn(port)
        _, raw = conn.call("GET", "/v1/status", token=big[0])
        conn.close()
        res["status_big_online"] = sum(1 for w in json.loads(raw)["team"] if w["online"])
        res["status_big_bytes"] = len(raw)
        r = run_load(
            port,
            sz["status_big"],
            1,
            sz["max_s"] * 2,
            lambda c, tid, i: c.call("GET", "/v1/status", token=big[i % len(big)])[0],
        )
        res["status_big_c1"] = r
        print(
            f"[ours] status {res['status_big_online']} online ({len(raw)} B; register {res['big_register_s']} s, "
            f"online calls {res['big_online_s']} s) c=1: {r}",
            flush=True,
        )

        if args.profile:
            print(
                f"[ours] profiling an extra status run ({len(big)} online, c=1) with py-spy ...", flush=True
            )
            res["profile_status_big"] = profile_run(
                stack,
                sz["profile_s"],
                lambda: run_load(
                    port,
                    10_000,
                    1,
                    sz["profile_s"],
                    lambda c, tid, i: c.call("GET", "/v1/status", token=big[i % len(big)])[0],
                ),
            )
            print_profile(res["profile_status_big"], f"status c=1, {len(big)} online")

        # --- CLI wall time
        cli_start = time.monotonic()
        res["cli"] = cli_times(stack.url, sz["cli_runs"], tmp)
        res["cli"]["window"] = [cli_start, time.monotonic()]
        print(f"[ours] cli: {res['cli']}", flush=True)

        res["rss_end_mib"] = stack_rss(stack.pid)
        print(f"[ours] RSS end {res['rss_end_mib']}", flush=True)
        res["keepalive_reconnects"] = Conn.retries
        log = stack.log.read_text(errors="replace") if stack.log.exists() else ""
        res["server_log_tracebacks"] = log.count("Traceback")
        res["server_log_errors"] = sum(
            1 for line in log.splitlines() if " ERROR " in line or "[ERROR]" in line
        )
        if res["server_log_tracebacks"]:
            res["server_log_tail"] = log[-3000:]
    finally:
        t = time.perf_counter()
        stack.stop()
        if pg is not None:
            pg.stop()
        res["stack_stop_s"] = round(time.perf_counter() - t, 2)
    return res


def print_profile(p: dict, what: str) -> None:
    if "top_self" not in p:
        print(f"[ours] profile ({what}): {p}", flush=True)
        return
    print(
        f"[ours] py-spy, {what} (100 samples/s, every thread of every gunicorn process): {p['samples']}; "
        f"request threads spent {p['writer_lock_wait_share_of_request_samples']}% of their samples queued for "
        f"the writer lock; {p['during_profile'].get('ops_s')} ops/s during profile",
        flush=True,
    )
    for title, key in (
        ("working samples, top self (leaf) frames", "top_self"),
        ("working samples, top inclusive, beadwire code", "top_inclusive_ours"),
        ("working samples, top inclusive, libraries", "top_inclusive_libs"),
    ):
        print(f"  {title}:")
        for f, n, share in p[key][:10]:
            print(f"    {share:5.1f}%  {f}")


# ------------------------------------------------------------------------------------------ peer


def python312() -> str | None:
    """A python3.12 that actually runs (the pyenv shim fails unless 3.12 is the active version)."""
    cands = [shutil.which("python3.12") or ""] + sorted(
        glob.glob("/root/.pyenv/versions/3.12*/bin/python3.12")
    )
    cands += ["/usr/bin/python3.12", "/usr/local/bin/python3.12"]
    for c in cands:
        if c and os.path.exists(c):
            try:
                if (
                    subprocess.run([c, "-c", "pass"], capture_output=True, timeout=20, check=False).returncode
                    == 0
                ):
                    return c
            except (OSError, subprocess.TimeoutExpired):
                continue
    return None


def port_free(port: int) -> bool:
    import socket

    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def peer_setup(mode: str, env: dict, timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["./setup.sh", mode],
        cwd=PEER_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def bench_peer(args, sz: dict, tmp: Path) -> dict:
    """Start BeadHub, run its harness with our sizes and peer_extra.py, stop it. Falls back to recorded."""
    res: dict[str, Any] = {}
    why = None
    py = python312()
    port = PEER_DEFAULT_PORT
    if not (PEER_DIR / "setup.sh").exists():
        why = f"{PEER_DIR}/setup.sh not found"
    elif py is None:
        why = "no working python3.12"
    if why is None and not port_free(port):
        port = free_port()
        print(
            f"[peer] 127.0.0.1:{PEER_DEFAULT_PORT} is busy (another process); running BeadHub on {port}",
            flush=True,
        )
    env = {**os.environ, "PY312": py or "", "BH_PORT": str(port)}
    started = False
    if why is None:
        try:
            t = time.perf_counter()
            done = peer_setup("fresh", env, timeout=600)
            res["setup_s"] = round(time.perf_counter() - t, 1)
            started = True
            if done.returncode != 0 or not _peer_health(port):
                why = f"setup.sh fresh failed (rc {done.returncode}): {(done.stderr or done.stdout)[-800:]}"
        except (OSError, subprocess.TimeoutExpired) as exc:
            why = f"setup.sh fresh: {exc!r}"
    try:
        if why is None:
            print(f"[peer] BeadHub up on 127.0.0.1:{port} (setup {res['setup_s']} s)", flush=True)
            out = tmp / "peer-results"
            # the same counts as ours: mail send c=1 / c=8, chat round trips (its inbox read also runs)
            cmd = [
                str(PEER_VENV_PY),
                str(PEER_DIR / "bench.py"),
                "bench",
                "--base",
                f"http://127.0.0.1:{port}",
                "--out",
                str(out),
                "--mail-n-seq",
                str(sz["mail_c1"]),
                "--mail-n-conc",
                str(sz["mail_c8"]),
                "--chat-n",
                str(sz["chat_n"]),
                "--claims-n-seq",
                str(sz["claims_c1"]),
                "--claims-n-conc",
                str(sz["claims_c8"]),
                "--read-n",
                str(sz["status_c1"]),
                "--read-n-conc",
                str(sz["status_c8"]),
                "--race-rounds",
                str(sz["race_rounds"]),
                "--online",
                str(ONLINE),
                "--conc",
                "8",
                "--max-s",
                str(sz["max_s"]),
            ]
            for name in ("beadhub.pid", "redis.pid"):
                with_pid = Path("/tmp/peer/run") / name
                if with_pid.exists() and SAMPLER:
                    SAMPLER.extra_pids.add(int(with_pid.read_text().strip()))
            t = time.perf_counter()
            rc, marks, err = run_streaming(cmd, timeout=400)
            done = subprocess.CompletedProcess(cmd, rc, "", err)
            res["harness_s"] = round(time.perf_counter() - t, 1)
            files = sorted(out.glob("bench-*.json"))
            if done.returncode != 0 or not files:
                why = f"peer harness failed (rc {done.returncode}): {done.stderr[-800:]}"
            else:
                res["harness"] = json.loads(files[-1].read_text())
                res["source"] = "measured"
                add_peer_windows(res["harness"], marks)
                print(f"[peer] harness done in {res['harness_s']} s", flush=True)
                cmd = [
                    str(PEER_VENV_PY),
                    str(ROOT / "bench" / "peer_extra.py"),
                    "--base",
                    f"http://127.0.0.1:{port}",
                    "--online",
                    str(sz["online_big"]),
                    "--n",
                    str(sz["status_big"]),
                    "--max-s",
                    str(sz["max_s"] * 2),
                ]
                t = time.perf_counter()
                extra = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
                res["extra_s"] = round(time.perf_counter() - t, 1)
                if extra.returncode == 0:
                    res["extra"] = json.loads(extra.stdout.strip().splitlines()[-1])
                    print(
                        f"[peer] {res['extra']['online']} online status c=1: {res['extra']['status_c1']}",
                        flush=True,
                    )
                else:
                    res["extra_error"] = extra.stderr[-800:]
                    print(f"[peer] peer_extra.py failed: {res['extra_error']}", flush=True)
    except subprocess.TimeoutExpired as exc:
        why = f"peer harness timed out: {exc}"
    finally:
        if started:
            done = peer_setup("stop", env, timeout=120)
            print(f"[peer] setup.sh stop: rc {done.returncode}", flush=True)
    if why is not None:
        print(
            f"[peer] cannot measure the peer: {why}\n[peer] using RECORDED figures from {PEER_RECORDED}",
            flush=True,
        )
        res["source"] = "recorded"
        res["why"] = why
        res["harness"] = json.loads(PEER_RECORDED.read_text())
    return res


def run_streaming(cmd: list[str], timeout: float) -> tuple[int, list[tuple[float, str]], str]:
    """Run the peer harness, time-stamping each stdout line (monotonic) as it arrives; kill at `timeout`."""
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            bufsize=1,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        killer = threading.Timer(timeout, proc.kill)
        killer.start()
        marks = []
        try:
            for line in proc.stdout:
                marks.append((time.monotonic(), line.rstrip("\n")))
            rc = proc.wait()
        finally:
            killer.cancel()
        err.seek(0)
        return rc, marks, err.read().decode(errors="replace")[-2000:]


#: Harness output line prefix -> (section, key) of its JSON; the line is printed right after the load loop.
PEER_MARKS = {
    "[a mail c=1]": ("a_mail", "c1"),
    "[a mail c=8]": ("a_mail", "c8"),
    "[b claim c=1]": ("b_claim", "c1"),
    "[b claim c=8]": ("b_claim", "c8"),
    "[d status c=1]": ("d_status", "status_c1"),
    "[d status c=8]": ("d_status", "status_c8"),
}


def add_peer_windows(h: dict, marks: list[tuple[float, str]]) -> None:
    for t, line in marks:
        for prefix, (section, key) in PEER_MARKS.items():
            d = h.get(section, {}).get(key)
            if line.startswith(prefix) and d and d.get("wall_s"):
                d["window"] = [t - d["wall_s"], t]
    # the chat loop runs between the memory snapshot after the status loops and its own summary line
    chat_from = [t for t, line in marks if line.startswith("[mem after_status]")]
    chat_to = [t for t, line in marks if line.startswith("[f chat]")]
    if chat_from and chat_to and h.get("f_chat"):
        h["f_chat"]["window"] = [chat_from[-1], chat_to[-1]]
    race = [t for t, line in marks if line.startswith("[c race ")]
    if race and h.get("c_race", {}).get("rounds"):
        first = h["c_race"]["rounds"][0]["wall_ms"] / 1000
        h["c_race"]["window"] = [race[0] - first, race[-1]]


def _peer_health(port: int) -> bool:
    try:
        c = http.client.HTTPConnection(HOST, port, timeout=3)
        c.request("GET", "/health")
        ok = c.getresponse().status == 200
        c.close()
        return ok
    except OSError:
        return False


# ----------------------------------------------------------------------------------------- report


def fmt(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.1f}" if abs(v) >= 10 else f"{v:.2f}"
    return str(v)


def report(ours: dict, peer: dict | None) -> str:
    h = (peer or {}).get("harness") or {}
    label = "peer" if not peer else ("peer" if peer.get("source") == "measured" else "peer (RECORDED)")
    extra = (peer or {}).get("extra") or {}
    rows = [
        ("claim, distinct beads", 1, ours["claim_c1"], h.get("b_claim", {}).get("c1")),
        ("claim, distinct beads", 8, ours["claim_c8"], h.get("b_claim", {}).get("c8")),
        ("`GET /v1/status`, 50 online", 1, ours["status50_c1"], h.get("d_status", {}).get("status_c1")),
        ("`GET /v1/status`, 50 online", 8, ours["status50_c8"], h.get("d_status", {}).get("status_c8")),
        (
            f"`GET /v1/status`, {ours.get('status_big_online')} online",
            1,
            ours["status_big_c1"],
            extra.get("status_c1"),
        ),
    ]
    big_row = len(rows) - 1
    rows += [
        ("mail send `POST /v1/mail`, 1 recipient", 1, ours["mail_c1"], h.get("a_mail", {}).get("c1")),
        ("mail send `POST /v1/mail`, 1 recipient", 8, ours["mail_c8"], h.get("a_mail", {}).get("c8")),
    ]
    for prefix, what in CEILING_ROWS:
        for conc in (1, 8):
            if (ours.get("ceiling") or {}).get(f"{prefix}mail_c{conc}"):
                rows.append((what, conc, ours["ceiling"][f"{prefix}mail_c{conc}"], h.get("a_mail", {}).get(f"c{conc}")))
    if extra and extra.get("status_agents_listed", 0) < extra.get("online", 0):
        # BeadHub caps the agent list of /v1/status: it does less work than we do (we list everyone)
        name, conc, o, p = rows[big_row]
        rows[big_row] = (
            f"{name} (peer lists {extra['status_agents_listed']} of {extra['online']})",
            conc,
            o,
            p,
        )
    lines = [
        (f"| metric | conc | n | beadwire | {label} | ratio (>1: beadwire better) | beadwire median / p99 ms "
         f"| {label} median ms | other procs' CPU % (ours / peer) |"),
        "|---|---|---|---|---|---|---|---|---|",
    ]
    noisy = False

    def line(name: str, conc: Any, n: Any, o_txt: str, p_txt: str, ratio: float | None, o_lat: str, p_med: Any,
             o_cpu: Any, p_cpu: Any) -> None:
        nonlocal noisy
        cell = f"{ratio:.2f}×" if ratio else "–"
        if max(o_cpu or 0, p_cpu or 0) > NOISY_PCT:
            cell += " ⚠"
            noisy = True
        lines.append(f"| {name} | {conc} | {n} | {o_txt} | {p_txt} | {cell} | {o_lat} | {fmt(p_med)} "
                     f"| {fmt(o_cpu)} / {fmt(p_cpu)} |")

    for name, conc, o, p in rows:  # throughput rows: ratio = our ops/s over the peer's
        p_ops = p.get("throughput_rps") if p else None
        line(name, conc, o["n"], f"{fmt(o['ops_s'])} ops/s", f"{fmt(p_ops)} ops/s" if p_ops else "–",
             o["ops_s"] / p_ops if p_ops and o.get("ops_s") else None, f"{fmt(o['median_ms'])} / {fmt(o['p99_ms'])}",
             p.get("median_ms") if p else None, o.get("other_cpu_pct"), (p or {}).get("other_cpu_pct"))
    race, prace = ours["race"], h.get("c_race")
    ours_won, rounds = race["rounds_exactly_one_200"], len(race["rounds"])
    peer_won = prace["rounds_with_exactly_one_winner"] if prace else None
    line(f"race on one bead, rounds with exactly one winner ({race['agents']} agents)", race["agents"], rounds,
         f"{ours_won}/{rounds}", f"{peer_won}/{len(prace['rounds'])}" if prace else "–",
         ours_won / peer_won if peer_won else None, "–", None, race.get("other_cpu_pct"),
         (prace or {}).get("other_cpu_pct"))
    chat, pchat = ours.get("chat") or {}, h.get("f_chat") or {}
    if chat:  # latency: ratio = the peer's median over ours
        p_med = pchat.get("reply_to_sse_median_ms")
        line("chat reply → blocked waiter, latency (peer: reply → SSE)", 1, chat["n"], f"{fmt(chat['median_ms'])} ms",
             f"{fmt(p_med)} ms" if p_med else "–", p_med / chat["median_ms"] if p_med and chat["median_ms"] else None,
             f"{fmt(chat['median_ms'])} / {fmt(chat['p99_ms'])}", p_med, chat.get("other_cpu_pct"),
             pchat.get("other_cpu_pct"))
    rss, pm = ours.get("rss_end_mib") or {}, h.get("e_memory_mib")
    if rss:  # memory: ratio = the peer's RSS over ours
        p_rss = pm["end"].get("VmRSS") if pm else None
        line("server memory (RSS at the end; ours: gunicorn master + workers + Dramatiq, peer: uvicorn)", "–", "–",
             f"{fmt(rss['server'])} MiB", f"{fmt(p_rss)} MiB" if p_rss else "–",
             p_rss / rss["server"] if p_rss and rss.get("server") else None, "–", None, None, None)
    cli = ours.get("cli", {})
    for name in CLI_COMMANDS:
        c = cli.get(name)
        if c:
            line(f"`wire --json {name}` (CLI wall time; the peer installs no CLI)", 1, c["n"],
                 f"{fmt(c['median_ms'])} ms", "–", None, f"{fmt(c['median_ms'])} / {fmt(c['p99_ms'])}", None,
                 cli.get("other_cpu_pct"), None)
    lines.append("")
    lines.append(
        "* ratio: throughput rows ours ÷ peer's ops/s (the peer's claim is 2 requests, see bench/README.md); "
        "the race our rounds with one winner ÷ the peer's; latency and memory the peer's figure ÷ ours."
    )
    if noisy:
        lines.append(
            f"* ⚠ other processes on this machine used more than {NOISY_PCT}% of a core during a "
            "measurement (last column): that ratio is unreliable; re-run on a quiet machine."
        )
    race = ours["race"]
    lines.append(
        f"* race, beadwire: {race['agents']} agents × {len(race['rounds'])} rounds; exactly one 200 in "
        f"**{race['rounds_exactly_one_200']}/{len(race['rounds'])}** rounds (clean 1×200 + 19×409: "
        f"{race['rounds_clean']}); one claim holder afterwards in {race['rounds_one_holder']}/"
        f"{len(race['rounds'])}; 200s per round {[r['winners_200'] for r in race['rounds']]}"
    )
    if chat:
        line = (
            f"* chat, beadwire: reply `POST /v1/chat` → answer of the blocked `GET /v1/chat/wait`: median "
            f"**{fmt(chat['median_ms'])} ms**, p99 {fmt(chat['p99_ms'])} ms, max {fmt(chat['max_ms'])} ms "
            f"(n={chat['n']}); asking (`POST /v1/chat` with wait) median {fmt(chat['ask_median_ms'])} ms"
        )
        if pchat.get("reply_to_sse_median_ms"):
            line += (
                f"; {label}: reply → SSE event median **{fmt(pchat['reply_to_sse_median_ms'])} ms**, p99 "
                f"{fmt(pchat.get('reply_to_sse_p99_ms'))} ms (n={pchat.get('n')}), opening a chat session "
                f"median {fmt(pchat.get('send_median_ms'))} ms"
            )
        lines.append(line)
    md = ours.get("mail_delivery")
    if md:
        lines.append(
            f"* mail delivery, beadwire: all {md['mails']} mails were in their recipients' mailbox streams "
            f"{md['seconds']} s after the last send returned"
            + ("" if md["all_delivered"] else " — **NOT ALL DELIVERED** within the cap")
            + f" (polled with {md['whoami_calls']} `GET /v1/whoami` banner reads)"
        )
    pr = h.get("c_race")
    if pr:
        lines.append(
            f"* race, {label}: {pr['agents']} agents × {len(pr['rounds'])} rounds; exactly one holder in "
            f"**{pr['rounds_with_exactly_one_winner']}/{len(pr['rounds'])}** rounds; max {pr['max_winners']} "
            f"holders; holders per round {[r['claim_rows_in_db'] for r in pr['rounds']]}"
        )
    sizes = (
        f"* `/v1/status` body: beadwire {ours.get('status50_bytes')} B with 50 online, "
        f"{ours.get('status_big_bytes')} B with {ours.get('status_big_online')} online (every workspace listed)"
    )
    if h.get("d_status", {}).get("status_bytes"):
        sizes += f"; {label} {h['d_status']['status_bytes']} B with 50"
    if extra.get("status_bytes"):
        sizes += (
            f", {extra['status_bytes']} B with {extra['online']} online "
            f"({extra['status_agents_listed']} agents listed)"
        )
    if extra.get("init_500s_retried"):
        sizes += f"; peer answered {extra['init_500s_retried']} `/v1/init` calls with 500 (retried)"
    lines.append(sizes)
    if (peer or {}).get("extra_error"):
        last = peer["extra_error"].strip().splitlines()[-1:] or ["?"]
        lines.append(f"* peer, status with many online: `bench/peer_extra.py` failed: {last[0][:300]}")
    rs, re_ = ours["rss_start_mib"], ours["rss_end_mib"]
    lines.append(
        f"* server RSS, beadwire (gunicorn master + {rs['procs'].get('web', 1) - 1} workers + Dramatiq "
        f"{rs['procs'].get('worker', 0)} procs): {rs['server']} MiB at start → {re_['server']} MiB at end "
        f"(web {rs.get('web')} → {re_.get('web')}, worker {rs.get('worker')} → {re_.get('worker')}; "
        f"not counted: clock {re_.get('clock')}, redis {re_.get('redis')})"
    )
    pm = h.get("e_memory_mib")
    if pm:
        lines.append(
            f"* server RSS, {label} (one uvicorn process): {pm['start'].get('VmRSS')} MiB at start → "
            f"{pm['end'].get('VmRSS')} MiB at end (not counted: PostgreSQL PSS {pm['end'].get('postgres_pss_mib')}, "
            f"Redis PSS {pm['end'].get('redis_pss_mib')})"
        )
    for key, what in (
        ("profile", "c=8 claims"),
        ("profile_status_big", f"`GET /v1/status` c=1, {ours.get('status_big_online')} online"),
    ):
        prof = ours.get(key) or {}
        if not prof.get("top_self"):
            continue
        lines.append("")
        wait = prof["writer_lock_wait_share_of_request_samples"]
        queued = (
            f"request threads spent **{wait}%** of their samples queued for the SQLite writer lock "
            f"(`WriterLock.hold`); of the rest"
            if wait
            else "busy request threads"
        )
        lines.append(
            f"Where the time goes, {what} (py-spy on every gunicorn thread during an extra, unmeasured run at "
            f"{prof['during_profile'].get('ops_s')} ops/s): {queued} ({prof['samples'].get('working')} samples):"
        )
        lines.append("")
        lines.append("| self (leaf) frame | % | inclusive, beadwire code | % |")
        lines.append("|---|---|---|---|")
        for a, b in itertools.zip_longest(prof["top_self"][:8], prof["top_inclusive_ours"][:8]):
            lines.append(
                f"| {a[0] if a else ''} | {a[2] if a else ''} | {b[0] if b else ''} | {b[2] if b else ''} |"
            )
    return "\n".join(lines)


def problems(ours: dict) -> list[str]:
    """Non-2xx answers from our server (409 is expected only in the race), client errors, log tracebacks."""
    out = []
    for key in ("claim_c1", "claim_c8", "status50_c1", "status50_c8", "status_big_c1", "mail_c1", "mail_c8"):
        r = ours.get(key) or {}
        bad = {k: v for k, v in r.get("statuses", {}).items() if not k.startswith("2")}
        if bad:
            tag = " (409 on a distinct bead is a BUG)" if key.startswith("claim") and "409" in bad else ""
            out.append(f"{key}: non-2xx statuses {bad}{tag}")
        if r.get("client_errors"):
            out.append(f"{key}: client errors {r['client_errors']}")
    if (ours.get("chat") or {}).get("errors"):
        out.append(f"chat: {ours['chat']['errors']}")
    if ours.get("mail_delivery") and not ours["mail_delivery"]["all_delivered"]:
        out.append(f"mail: not every mail reached its mailbox: {ours['mail_delivery']}")
    for r in ours.get("race", {}).get("rounds", []):
        if r["other"]:
            out.append(f"race {r['bead']}: unexpected statuses {r['other']}")
    for key in ("profile", "profile_status_big"):
        prof = (ours.get(key) or {}).get("during_profile") or {}
        bad = {k: v for k, v in prof.get("statuses", {}).items() if not k.startswith("2")}
        if bad:
            out.append(f"{key} run: non-2xx {bad}")
    for name in CLI_COMMANDS:
        c = (ours.get("cli") or {}).get(name) or {}
        if c and set(c.get("exit_codes", {})) != {0}:
            out.append(f"wire {name}: exit codes {c['exit_codes']}")
    if (ours.get("cli") or {}).get("error"):
        out.append(f"cli: {ours['cli']['error']}")
    if ours.get("server_log_tracebacks"):
        out.append(f"server log: {ours['server_log_tracebacks']} tracebacks")
    return out


def machine() -> dict:
    """What RESULTS.md says about the machine: CPU model, cores, RAM, Python."""
    model = "?"
    try:
        for row in Path("/proc/cpuinfo").read_text().splitlines():
            if row.startswith("model name"):
                model = row.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "ram_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "python": platform.python_version(),
        "os": platform.platform(),
    }


#: The issue's targets (issue 7): throughput at least 5× the peer's; fixed bounds for the rest.
THROUGHPUT_TARGET = 5.0
STATUS_BIG_TARGET_MS = 20.0
CHAT_TARGET_MS = 5.0
CLI_TARGET_MS = 150.0


def targets(ours: dict, peer: dict | None) -> list[tuple[str, str, bool | None]]:
    """(target, what was measured, met?) per target; None when it could not be judged (no peer)."""
    h = (peer or {}).get("harness") or {}
    out: list[tuple[str, str, bool | None]] = []
    for what, key, peer_part in (
        ("mail send c=1", "mail_c1", h.get("a_mail", {}).get("c1")),
        ("mail send c=8", "mail_c8", h.get("a_mail", {}).get("c8")),
        ("claims on distinct beads c=1", "claim_c1", h.get("b_claim", {}).get("c1")),
        ("claims on distinct beads c=8", "claim_c8", h.get("b_claim", {}).get("c8")),
    ):
        ops, p_ops = ours[key].get("ops_s"), (peer_part or {}).get("throughput_rps")
        ratio = ops / p_ops if ops and p_ops else None
        measured = f"{fmt(ops)} ops/s vs {fmt(p_ops)}: {ratio:.2f}×" if ratio else f"{fmt(ops)} ops/s (no peer figure)"
        ceiling = ((ours.get("ceiling") or {}).get(key) or {}).get("ops_s")
        least = ((ours.get("ceiling") or {}).get(f"min_{key}") or {}).get("ops_s")
        if ceiling and p_ops:
            measured += (f" (ceiling: a bare endpoint {fmt(ceiling)} ops/s = {ceiling / p_ops:.2f}× the peer; "
                         f"we reach {ops / ceiling:.0%} of it")
            if least:
                measured += f"; a minimal mail {fmt(least)} ops/s = {least / p_ops:.2f}×"
            measured += ")"
        if max(ours[key].get("other_cpu_pct") or 0, (peer_part or {}).get("other_cpu_pct") or 0) > NOISY_PCT:
            measured += " ⚠ (other load during the measurement)"
        out.append((f"{what}: ≥ {THROUGHPUT_TARGET:g}× the peer's throughput", measured,
                    None if ratio is None else ratio >= THROUGHPUT_TARGET))
    race = ours["race"]
    out.append(("race: every round exactly one winner", f"{race['rounds_exactly_one_200']}/{len(race['rounds'])} rounds",
                race["rounds_exactly_one_200"] == len(race["rounds"])))
    big = ours["status_big_c1"]
    out.append((f"`GET /v1/status` with {ours.get('status_big_online')} online: median < {STATUS_BIG_TARGET_MS:g} ms",
                f"{fmt(big['median_ms'])} ms", big["median_ms"] is not None and big["median_ms"] < STATUS_BIG_TARGET_MS))
    chat = ours.get("chat") or {}
    out.append((f"chat reply → waiter: median < {CHAT_TARGET_MS:g} ms", f"{fmt(chat.get('median_ms'))} ms",
                chat.get("median_ms") is not None and chat["median_ms"] < CHAT_TARGET_MS))
    cli = {k: v["median_ms"] for k, v in (ours.get("cli") or {}).items() if isinstance(v, dict) and "median_ms" in v}
    worst = max(cli, key=cli.get) if cli else None
    out.append((f"a `wire` command: median < {CLI_TARGET_MS:g} ms (each of {', '.join(CLI_COMMANDS)})",
                f"slowest `{worst}` {fmt(cli[worst])} ms" if worst else "not measured",
                bool(cli) and max(cli.values()) < CLI_TARGET_MS and len(cli) == len(CLI_COMMANDS)))
    return out


def results_md(meta: dict, text: str, goals: list[tuple[str, str, bool | None]], peer: dict | None) -> str:
    m = meta["machine"]
    peer_state = ("not run" if peer is None else "measured in the same run" if peer.get("source") == "measured"
                  else f"RECORDED figures ({peer.get('why')})")
    head = [
        "# beadwire benchmark results",
        "",
        f"* Date: {meta['started']}",
        (f"* Command: `python3 bench/bench.py {' '.join(meta['argv'])}` "
         f"({'quick' if meta['args']['quick'] else 'full'} run, {meta['total_s']} s), beadwire at {meta['git']}, "
         f"database {meta['args']['database']}"),
        (f"* Machine: {m['cpu']}, {m['cores']} vCPU, {m['ram_gib']} GiB RAM, Python {m['python']}, {m['os']}; "
         f"load average {' '.join(meta['loadavg_start'])} → {' '.join(meta['loadavg_end'])}"),
        f"* Peer: BeadHub 0.3.1, {peer_state}",
        "",
        "## Targets (issue 7)",
        "",
        "| target | measured | met |",
        "|---|---|---|",
    ]
    for goal, measured, met in goals:
        head.append(f"| {goal} | {measured} | {'–' if met is None else 'yes' if met else '**no**'} |")
    return "\n".join(head) + "\n\n## Table\n\n" + text


def git_state() -> str:
    """The commit the server code was measured at, and whether the worktree had local changes."""

    def git(*a: str) -> str:
        done = subprocess.run(["git", *a], cwd=ROOT, capture_output=True, text=True, check=False)
        return done.stdout.strip()

    head = git("rev-parse", "--short", "HEAD") or "?"
    dirty = [x for x in git("status", "--porcelain", "--untracked-files=no").splitlines() if x]
    return head + (f" + {len(dirty)} modified files" if dirty else "")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--peer", action="store_true", help="also run the same workloads against BeadHub 0.3.1")
    ap.add_argument("--quick", action="store_true", help="small counts (a smoke run, ~1 min)")
    ap.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    ap.add_argument(
        "--profile",
        action="store_true",
        help="extra, unmeasured c=8 claim run sampled by py-spy (if installed); prints top frames",
    )
    ap.add_argument(
        "--results",
        action="store_true",
        help="also write bench/RESULTS.md: date, machine, the table and the issue's targets (met or not)",
    )
    args = ap.parse_args()
    sz = SIZES["quick" if args.quick else "full"]
    stamp = time.strftime("%Y%m%d-%H%M%S")
    t_all = time.perf_counter()
    meta = {
        "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "nproc": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "mem_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "loadavg_start": Path("/proc/loadavg").read_text().split()[:3],
        "sizes": sz,
        "args": vars(args),
        "git": git_state(),
        "machine": machine(),
        "argv": sys.argv[1:],
    }
    print(f"[bench] {meta}", flush=True)
    global SAMPLER
    SAMPLER = CpuSampler().start()
    try:
        with tempfile.TemporaryDirectory(prefix="wire-bench-") as td:
            tmp = Path(td)
            ours = bench_ours(args, sz, tmp)
            ours["ceiling"] = bench_ceiling(sz, tmp)
            peer = bench_peer(args, sz, tmp) if args.peer else None
    finally:
        SAMPLER.stop()
    fill_other_cpu(ours)
    if peer and peer.get("source") == "measured":
        fill_other_cpu(peer)
    meta["loadavg_end"] = Path("/proc/loadavg").read_text().split()[:3]
    meta["total_s"] = round(time.perf_counter() - t_all, 1)
    table = report(ours, peer)
    issues = problems(ours)
    head = (
        f"beadwire bench {meta['started']} · {args.database} · {meta['nproc']} vCPU, {meta['mem_gib']} GiB · "
        f"python {meta['python']} · load avg {' '.join(meta['loadavg_start'])} → {' '.join(meta['loadavg_end'])} · "
        f"{'quick' if args.quick else 'full'} run, {meta['total_s']} s · beadwire at {meta['git']}"
    )
    text = f"{head}\n\n{table}\n"
    text += (
        "\nproblems: "
        + (
            "none (no non-2xx from beadwire outside the race)"
            if not issues
            else "\n" + "\n".join(f"* {x}" for x in issues)
        )
        + "\n"
    )
    if peer and peer.get("source") == "recorded":
        text += f"\npeer figures are RECORDED ({PEER_RECORDED}), not measured now: {peer.get('why')}\n"
    goals = targets(ours, peer)
    text += "\ntargets (issue 7):\n" + "".join(
        f"* {'–' if met is None else 'met' if met else 'MISSED'}: {goal}: {measured}\n" for goal, measured, met in goals
    )
    print("\n" + text)
    if args.results:
        (ROOT / "bench" / "RESULTS.md").write_text(results_md(meta, text, goals, peer))
        print(f"[bench] wrote {ROOT / 'bench' / 'RESULTS.md'}")
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    (OUT_DIR / f"{stamp}.md").write_text(text)
    (OUT_DIR / f"{stamp}.json").write_text(json.dumps({"meta": meta, "ours": ours, "peer": peer}, indent=2))
    print(f"[bench] wrote {OUT_DIR / (stamp + '.md')} and .json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
