"""The stack's processes from /proc (tree, RSS and PSS per kind) and py-spy profiles of the web processes."""

from __future__ import annotations

import collections
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.paths import OUT_DIR


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


def smaps_kib(pid: int) -> dict[str, int]:
    """`/proc/PID/smaps_rollup` in KiB (Rss, Pss, Pss_Anon, Private_Dirty, ...); {} when unreadable."""
    out: dict[str, int] = {}
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
            name, _, rest = line.partition(":")
            out[name] = int(rest.split()[0])
    except (OSError, ValueError, IndexError):
        return {}
    return out


#: The kinds of process `wire serve` starts, in display order (bench/soak.py uses them too).
KINDS = ("web", "worker", "clock", "redis")


def process_kind(cmd: str) -> str | None:
    """web (gunicorn master + workers), worker (`python -m actors.run`, or Dramatiq's CLI and its
    forked worker), clock (`python -m actors.clock`, Procfile only), redis; None for anything else."""
    if "gunicorn" in cmd:
        return "web"
    if "dramatiq" in cmd or "actors.run" in cmd:
        return "worker"
    if "actors.clock" in cmd:
        return "clock"
    return "redis" if "redis-server" in cmd else None


def stack_rss(root_pid: int) -> dict:
    """Memory (MiB) of the stack's processes by kind (`KINDS`), both ways (bench/README.md, "Memory"):
    RSS summed (what `ps` shows; counts a page shared by forked processes once per process) and PSS
    summed (each shared page split between the processes mapping it: what the stack really costs).

    Top level: PSS per kind (`web`, `worker`, ...), `total` (PSS of everything `wire serve` starts,
    issue 19's memory target) and `server` (web + worker); `rss` holds the same keys as RSS, `procs` the
    number of processes per kind.
    """
    groups: dict[str, list[int]] = collections.defaultdict(list)
    for pid, cmd in process_tree(root_pid).items():
        kind = process_kind(cmd)
        if kind:
            groups[kind].append(pid)
    figures = {k: [smaps_kib(p) for p in pids] for k, pids in groups.items()}

    def summed(field: str) -> dict[str, Any]:
        out: dict[str, Any] = {k: mib(sum(f.get(field, 0) for f in fs)) for k, fs in figures.items()}
        out["server"] = round(out.get("web", 0) + out.get("worker", 0), 1)
        out["total"] = round(sum(out.get(k, 0) for k in KINDS), 1)
        return out

    out = summed("Pss")
    out["rss"] = summed("Rss")
    out["procs"] = {k: len(v) for k, v in groups.items()}
    return out


def mib(kib: float) -> float:
    return round(kib / 1024, 1)


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


def profile_run(stack: Any, seconds: float, load: Callable[[], dict]) -> dict:
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


def print_profile(p: dict, what: str) -> None:
    if "top_self" not in p:
        print(f"[ours] profile ({what}): {p}", flush=True)
        return
    print(
        f"[ours] py-spy, {what} (100 samples/s, every thread of every gunicorn process): {p['samples']}; "
        f"request threads spent {p['writer_lock_wait_share_of_request_samples']}% of their samples queued "
        f"for the writer lock; {p['during_profile'].get('ops_s')} ops/s during profile",
        flush=True,
    )
    for title, key in (
        ("working samples, top self (leaf) frames", "top_self"),
        ("working samples, top inclusive, beadwire code", "top_inclusive_ours"),
        ("working samples, top inclusive, libraries", "top_inclusive_libs"),
    ):
        print(f"  {title}:")
        for f, _n, share in p[key][:10]:
            print(f"    {share:5.1f}%  {f}")
