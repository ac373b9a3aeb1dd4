"""CPU seconds the web worker processes spend per request on a real `wire serve` (gunicorn, our gevent
worker), for mail send and claims at c=1 and c=8, against bench/ceiling_app.py served the same way
(ours.py's "gevent_" variant) in the same run.

A CPU count (utime + stime of the gunicorn workers from /proc/PID/stat, before and after N requests),
not wall time: valid on a loaded machine. `--spy SECONDS` adds a py-spy profile (top frames by share of
samples, `--idle` off so only on-CPU time counts) of one extra mail run at c=8.

    PYTHONPATH=. python3 -m bench.server_cpu [--n 2000] [--spy 15] [--only mail,claim,ceiling,syscalls]

`syscalls` (not in the default) counts the workers' system calls per mail with `strace -c`.
"""

from __future__ import annotations

import argparse
import collections
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench import workloads
from bench.load import CEILING_TOKEN, HOST, WORKERS, Conn, run_load
from bench.memory import process_tree
from bench.ours import CEILING_VARIANTS
from bench.paths import ROOT
from cli.serve import _gunicorn_extra_args
from tests.servers import free_port, healthy, start_child, start_redis, start_stack

_CLK = os.sysconf("SC_CLK_TCK")


def worker_pids(root: int) -> list[int]:
    """The gunicorn worker processes under `root` (gunicorn processes whose parent is gunicorn too)."""
    tree = process_tree(root)
    tree[root] = Path(f"/proc/{root}/cmdline").read_bytes().decode(errors="replace")
    gun = {p for p, c in tree.items() if "gunicorn" in c}
    out = []
    for pid in gun:
        ppid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        if ppid in gun:
            out.append(pid)
    return sorted(out)


def cpu_s(pids: list[int]) -> dict[str, float]:
    """CPU seconds of `pids`: user, system, and the share of the main threads (the gevent hub)."""
    out = {"user": 0.0, "sys": 0.0, "main": 0.0}
    for pid in pids:
        for task in Path(f"/proc/{pid}/task").iterdir():
            try:
                rest = (task / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue  # a pool thread that just ended
            user, system = int(rest[11]) / _CLK, int(rest[12]) / _CLK
            out["user"] += user
            out["sys"] += system
            if task.name == str(pid):
                out["main"] += user + system
    return out


def measure(pids: list[int], port: int, n: int, conc: int, op: Callable, ok: int) -> dict:
    """ms of web-worker CPU per `ok` answer over `n` requests at concurrency `conc`."""
    before = cpu_s(pids)
    r = run_load(port, n, conc, 600.0, op, ok=ok)
    after = cpu_s(pids)
    per = {k: round((after[k] - before[k]) * 1000 / max(1, r["n_ok"]), 3) for k in after}
    return {"n_ok": r["n_ok"], "cpu_ms_per_req": round(per["user"] + per["sys"], 3), "user_ms": per["user"],
            "sys_ms": per["sys"], "main_thread_ms": per["main"]}


def mail_op(route: str, tokens: list[str] | None) -> Callable:
    def send(c: Conn, tid: int, i: int) -> int:
        to = f"w{(i + 1) % WORKERS:02d}"
        body = {"to": to, "subject": f"m{i}", "body": f"bench message {i} " + "x" * 100}
        token = tokens[i % WORKERS] if tokens else CEILING_TOKEN
        return int(c.call("POST", route, body, token)[0])

    return send


def spy(pids: list[int], seconds: float, load: Callable[[], object], top: int = 25) -> list[str]:
    """py-spy on each worker during `load()`: the top frames (self and total share of on-CPU samples)."""
    exe = shutil.which("py-spy")
    if not exe:
        return ["py-spy not installed"]
    outs, procs = [], []
    for pid in pids:
        f = Path(tempfile.mkstemp(prefix="spy-", suffix=".txt")[1])
        outs.append(f)
        procs.append(subprocess.Popen(
            [exe, "record", "-p", str(pid), "--nolineno", "-r", "200", "-d", str(int(seconds)),
             "-f", "raw", "-o", str(f)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    time.sleep(1.0)
    load()
    for p in procs:
        p.wait(seconds + 30)
    self_c: collections.Counter = collections.Counter()
    total_c: collections.Counter = collections.Counter()
    samples = 0
    for f in outs:
        for line in f.read_text(errors="replace").splitlines():
            stack, _, count = line.rpartition(" ")
            if not stack or not count.isdigit():
                continue
            k = int(count)
            frames = stack.split(";")
            if any("threadpool.py" in f for f in frames):
                continue  # gevent's pool threads: idle waits mostly (their CPU: total - main thread)
            samples += k
            self_c[frames[-1]] += k
            for fr in set(frames):
                total_c[fr] += k
    lines = [f"{samples} samples of the hub threads (py-spy cannot tell idle here: Hub.run self ~ idle);"
             " top self:"]
    lines += [f"  {100 * v / samples:5.1f}%  {k}" for k, v in self_c.most_common(top)]
    lines += ["top total:"]
    lines += [f"  {100 * v / samples:5.1f}%  {k}" for k, v in total_c.most_common(top + 15)]
    return lines


def syscalls(pids: list[int], load: Callable[[], dict], top: int = 14) -> str:
    """System calls per `ok` answer of `load()` in the workers (`strace -c -f`): a count, like the CPU."""
    exe = shutil.which("strace")
    if not exe:
        return "strace not installed"
    outs = [Path(tempfile.mkstemp(prefix="strace-", suffix=".txt")[1]) for _ in pids]
    procs = [subprocess.Popen([exe, "-c", "-f", "-o", str(out), "-p", str(pid)], stderr=subprocess.DEVNULL)
             for pid, out in zip(pids, outs)]
    time.sleep(2.0)  # attached
    done = load()["n_ok"] or 1
    for proc in procs:
        proc.send_signal(signal.SIGINT)
        proc.wait(30)
    calls: collections.Counter = collections.Counter()
    for out in outs:
        for line in out.read_text(errors="replace").splitlines():
            f = line.split()
            if len(f) >= 5 and f[3].isdigit() and f[-1] != "total":
                calls[f[-1]] += int(f[3])
    per = " ".join(f"{name}={count / done:.2f}" for name, count in calls.most_common(top))
    return f"{sum(calls.values()) / done:.1f} syscalls/req over {done}: {per}"


def ours(tmp: Path, n: int, only: set[str], spy_s: float) -> None:
    stack = start_stack(tmp, workers=2)
    try:
        port = int(stack.url.rsplit(":", 1)[1])
        pids = worker_pids(stack.pid or 0)
        print(f"[ours] workers {pids}", flush=True)
        aliases = [f"w{i:02d}" for i in range(WORKERS)]
        _, tokens = workloads.register(port, "bench", aliases)
        ids = [f"bd-c-{i:05d}" for i in range(2 * n + 100)]
        workloads.sync_beads(port, tokens[0], ids, "bench bead")
        for conc in (1, 8):
            if "mail" in only:
                r = measure(pids, port, n, conc, mail_op("/v1/mail", tokens), 201)
                print(f"[ours] mail c={conc}: {r}", flush=True)
            if "claim" in only:
                part = ids[(conc // 8) * n:(conc // 8 + 1) * n]

                def claim(c: Conn, tid: int, i: int, part: list[str] = part) -> int:
                    return int(c.call("POST", f"/v1/beads/{part[i]}/claim", {}, tokens[tid % WORKERS])[0])

                print(f"[ours] claim c={conc}: {measure(pids, port, n, conc, claim, 200)}", flush=True)
        if "syscalls" in only:
            for conc in (1, 8):

                def mails(conc: int = conc) -> dict:
                    return run_load(port, n, conc, 600.0, mail_op("/v1/mail", tokens), ok=201)

                print(f"[ours] mail c={conc} (strace): {syscalls(pids, mails)}", flush=True)
        if spy_s:
            load = lambda: run_load(port, 10**6, 8, spy_s - 2, mail_op("/v1/mail", tokens), ok=201)  # noqa: E731
            print("\n".join(["[ours] py-spy, mail c=8:", *spy(pids, spy_s, load)]), flush=True)
    finally:
        stack.stop()


def ceiling(tmp: Path, n: int) -> None:
    redis_proc = start_redis(tmp)
    _, gargs = CEILING_VARIANTS[1]  # served as `wire serve` serves us (gevent)
    env = {"REDIS_URL": redis_proc.url, "CEILING_TOKEN": CEILING_TOKEN, "PYTHONPATH": str(ROOT),
           "CEILING_DB": str(tmp / "ceiling-cpu.db")}
    port = free_port()
    args = [sys.executable, "-m", "gunicorn", *gargs, "-b", f"{HOST}:{port}", "--graceful-timeout", "5",
            *_gunicorn_extra_args(), "bench.ceiling_app:app"]
    url = f"http://{HOST}:{port}"
    web = start_child("ceilingcpu", args, tmp, env, lambda _: healthy(url), url)
    try:
        pids = worker_pids(web.pid or 0)  # a started child has a pid
        for route in ("/mail", "/mail-min"):
            for conc in (1, 8):
                r = measure(pids, port, n, conc, mail_op(route, None), 201)
                print(f"[ceiling gevent] {route} c={conc}: {r}", flush=True)
    finally:
        web.stop()
        redis_proc.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--spy", type=float, default=0.0)
    ap.add_argument("--only", default="mail,claim,ceiling")
    a = ap.parse_args()
    only = set(a.only.split(","))
    with tempfile.TemporaryDirectory() as tmp:
        if only & {"mail", "claim", "syscalls"} or a.spy:
            ours(Path(tmp), a.n, only, a.spy)
        if "ceiling" in only:
            ceiling(Path(tmp), a.n)


if __name__ == "__main__":
    main()
