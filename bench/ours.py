"""The run against our own `wire serve` stack (tests/servers.py), the bare endpoint of
bench/ceiling_app.py in the same run, and the `wire` CLI's wall time."""

from __future__ import annotations

import argparse
import collections
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench import workloads
from bench.cli_startup import make_venv
from bench.load import CEILING_TOKEN, HOST, RACERS, WORKERS, Conn, pct, run_load
from bench.memory import print_profile, profile_run, stack_rss
from bench.paths import ROOT
from cli.serve import DEFAULT_CONNECTIONS, _gunicorn_extra_args
from tests.servers import (
    PgProc,
    Stack,
    free_port,
    healthy,
    start_child,
    start_postgres,
    start_redis,
    start_stack,
)


def bench_ours(args: argparse.Namespace, sz: dict, tmp: Path, pg: PgProc | None = None) -> dict:
    """Every workload against a fresh `wire serve` stack (on SQLite, or database `beadwire` of `pg`: a
    cluster of its own, stopped at the end, when `--database postgres` comes without one)."""
    res: dict[str, Any] = {"database": args.database}
    own_pg = start_postgres(tmp) if args.database == "postgres" and pg is None else None
    pg = pg or own_pg
    t0 = time.perf_counter()
    stack = start_stack(tmp, database_url=pg.url if pg else None, workers=2)
    res["stack_start_s"] = round(time.perf_counter() - t0, 2)
    res["url"] = stack.url
    print(f"[ours] stack up at {stack.url} ({args.database}) in {res['stack_start_s']} s", flush=True)
    try:
        measure(stack, args, sz, tmp, res)
    finally:
        t = time.perf_counter()
        stack.stop()
        if own_pg is not None:
            own_pg.stop()
        res["stack_stop_s"] = round(time.perf_counter() - t, 2)
    return res


def measure(stack: Stack, args: argparse.Namespace, sz: dict, tmp: Path, res: dict) -> None:
    """The workloads in order, each adding its figures to `res`."""
    port = int(stack.url.rsplit(":", 1)[1])
    time.sleep(1.0)  # let workers settle before the first RSS reading
    res["rss_start_mib"] = stack_rss(stack.pid)
    print(f"[ours] RSS start {res['rss_start_mib']}", flush=True)
    workers, racers, ids = setup_bench_project(port, sz, args.profile, res)
    res.update(workloads.claims(port, workers, {1: ids["c1"], 8: ids["c8"]}, sz["max_s"]))
    if args.profile:
        print("[ours] profiling an extra c=8 claim run with py-spy ...", flush=True)
        res["profile"] = profile_run(
            stack,
            sz["profile_s"],
            lambda: run_load(
                port,
                len(ids["pf"]),
                8,
                sz["profile_s"],
                lambda c, tid, i: c.call(
                    "POST", f"/v1/beads/{ids['pf'][i]}/claim", {}, workers[tid % WORKERS]
                )[0],
            ),
        )
        print_profile(res["profile"], "c=8 claims")
    res["race"] = workloads.race(port, racers, ids["race"], reader=workers[0])
    # mail send: one op = one POST /v1/mail to one recipient, as the peer harness's (a): the sender is
    # workspace i % 8, the recipient the next one; then wait until every mail is delivered
    res.update(workloads.mail(port, workers, sz))
    _, pair = workloads.register(port, "chat", ["chat-a", "chat-b"])
    res["chat"] = workloads.chat_rounds(port, pair[0], pair[1], sz["chat_n"], sz["max_s"])
    print(f"[ours] chat reply -> waiter: {res['chat']}", flush=True)
    res.update(workloads.status50(port, sz))
    big_figures, big = workloads.status_big(port, sz)
    res.update(big_figures)
    if args.profile:
        print(f"[ours] profiling an extra status run ({len(big)} online, c=1) with py-spy ...", flush=True)
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
    cli_start = time.monotonic()
    res["cli"] = cli_times(stack.url, sz["cli_runs"], tmp)
    res["cli"]["window"] = [cli_start, time.monotonic()]
    print(f"[ours] cli: {res['cli']}", flush=True)
    res["rss_end_mib"] = stack_rss(stack.pid)
    print(f"[ours] RSS end {res['rss_end_mib']}", flush=True)
    res["keepalive_reconnects"] = Conn.retries
    res.update(server_log(stack))


def setup_bench_project(port: int, sz: dict, profile: bool, res: dict) -> tuple[list[str], list[str], dict]:
    """Project "bench": 8 claim workers and 20 racers, every bead created beforehand by one sync."""
    t = time.perf_counter()
    aliases = [f"w{i:02d}" for i in range(WORKERS)] + [f"racer{i:02d}" for i in range(RACERS)]
    _, tokens = workloads.register(port, "bench", aliases)
    res["init_ms_avg"] = round((time.perf_counter() - t) * 1000 / len(aliases), 2)
    ids = {
        "c1": [f"bd-c1-{i:05d}" for i in range(sz["claims_c1"])],
        "c8": [f"bd-c8-{i:05d}" for i in range(sz["claims_c8"])],
        "pf": [f"bd-pf-{i:05d}" for i in range(1500 if profile else 0)],
        "race": [f"bd-race-{r:02d}" for r in range(sz["race_rounds"])],
    }
    every = ids["c1"] + ids["c8"] + ids["pf"] + ids["race"]
    t = time.perf_counter()
    workloads.sync_beads(port, tokens[0], every, "bench bead")
    res["sync_ms"] = round((time.perf_counter() - t) * 1000, 1)
    res["sync_beads"] = len(every)
    print(
        f"[ours] setup: {len(aliases)} inits avg {res['init_ms_avg']} ms; sync of {res['sync_beads']} beads "
        f"{res['sync_ms']} ms",
        flush=True,
    )
    return tokens[:WORKERS], tokens[WORKERS:], ids


def server_log(stack: Stack) -> dict:
    """Tracebacks and errors in the stack's log (the tail when there is a traceback)."""
    log = stack.log.read_text(errors="replace") if stack.log.exists() else ""
    out: dict[str, Any] = {
        "server_log_tracebacks": log.count("Traceback"),
        "server_log_errors": sum(1 for line in log.splitlines() if " ERROR " in line or "[ERROR]" in line),
    }
    if out["server_log_tracebacks"]:
        out["server_log_tail"] = log[-3000:]
    return out


#: `wire` commands timed by `cli_times` (name -> argv after `wire --json`; {bead} is a fresh bead each run).
CLI_COMMANDS = {
    "whoami": ["whoami"],
    "status": ["status"],
    "ready": ["ready"],
    "claim": ["claim", "{bead}"],
    "mail send": ["mail", "send", "cli-agent", "bench mail from the CLI"],
}


def cli_times(url: str, runs: int, tmp: Path) -> dict:
    """Wall time of each `wire --json <command>` of CLI_COMMANDS in a fresh git repo (median of `runs`),
    from a regular (non-editable) install of this checkout, as issue 19's target says: a wheel in a
    throwaway venv (bench/cli_startup.py `make_venv`); `python3 -c pass` is that venv's interpreter."""
    venv = make_venv("cli", ROOT, tmp)
    cmd = [str(venv / "bin" / "wire")]
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
            return {
                "error": f"wire create failed ({done.returncode}): {done.stderr[-400:] or done.stdout[-400:]}"
            }
    fresh = iter(beads[5:])
    python = str(venv / "bin" / "python")

    def timed(argv: list[str]) -> tuple[float, int]:
        if argv[0] == python:  # the yardstick: the venv's bare interpreter
            t = time.perf_counter()
            code = subprocess.run(argv, check=False, timeout=60).returncode
            return (time.perf_counter() - t) * 1000, code
        ms, done = wire_run(*(next(fresh) if a == "{bead}" else a for a in argv))
        return ms, done.returncode

    rows = {"python_pass": [python, "-c", "pass"], **CLI_COMMANDS}
    lat: dict[str, list[float]] = {name: [] for name in rows}
    codes: dict[str, collections.Counter] = {name: collections.Counter() for name in rows}
    # round-robin, a warm-up round (page cache) first: a moment of load on this shared machine hits
    # every command and the yardstick alike, not one command's whole series
    for k in range(runs + 1):
        for name, argv in rows.items():
            ms, code = timed(argv)
            if k:
                lat[name].append(ms)
                codes[name][code] += 1
    out: dict[str, Any] = {"command": " ".join(cmd), "installed": "wheel in a venv"}
    for name, series in lat.items():
        out[name] = {
            "n": len(series),
            "exit_codes": dict(codes[name]),
            "median_ms": round(statistics.median(series), 1),
            "p99_ms": round(pct(series, 99), 1),
            "ops_s": round(1000 * len(series) / sum(series), 1),
        }
    return out


#: How bench_ceiling serves bench/ceiling_app.py, each in turn: (result key prefix, gunicorn's arguments
#: before the bind). "" is the bare endpoint the targets divide by (gthread, 2 workers × 32 threads);
#: "gevent_" serves it as `wire serve` serves beadwire (cli/serve.py: our config module and gevent
#: worker class, 2 workers, 10,000 connections), the app then committing as the store does under gevent.
CEILING_VARIANTS = (
    ("", ["-k", "gthread", "-w", "2", "--threads", "32"]),
    (
        "gevent_",
        ["-c", "python:web.gunicorn_conf", "-w", "2", "--worker-connections", str(DEFAULT_CONNECTIONS)],
    ),
)


def bench_ceiling(sz: dict, tmp: Path, pg: PgProc | None = None) -> dict:
    """The same mail loops against bench/ceiling_app.py, served each way of `CEILING_VARIANTS` in turn
    (a database file of its own each): its bare route (one SQLite transaction + one XADD, nothing else),
    what this machine allows any such server right now, and its minimal mail (token lookup, presence
    Lua, three inserts, publish Lua). Given `pg`, only the bare route, on PostgreSQL (its own database
    `ceiling` in that cluster)."""
    redis_proc = start_redis(tmp)
    env = {"REDIS_URL": redis_proc.url, "CEILING_TOKEN": CEILING_TOKEN, "PYTHONPATH": str(ROOT)}
    if pg is not None:
        env["CEILING_PG"] = pg.create_database("ceiling")
    out: dict[str, Any] = {"database": "sqlite" if pg is None else "postgres"}
    routes = (("/mail", ""),) if pg is not None else (("/mail", ""), ("/mail-min", "min_"))
    try:
        for variant, gunicorn_args in CEILING_VARIANTS:
            variant_env = {**env, "CEILING_DB": str(tmp / f"ceiling{variant.rstrip('_')}.db")}
            out.update(_ceiling_variant(sz, tmp, variant, gunicorn_args, variant_env, routes))
    finally:
        redis_proc.stop()
    return out


def _ceiling_variant(
    sz: dict, tmp: Path, variant: str, gunicorn_args: list[str], env: dict, routes: tuple
) -> dict[str, Any]:
    """The mail loops at c=1 and c=8 on each route of bench/ceiling_app.py served one way."""
    port = free_port()
    # fmt: off
    args = [sys.executable, "-m", "gunicorn", *gunicorn_args, "-b", f"{HOST}:{port}",
            "--graceful-timeout", "5", *_gunicorn_extra_args(), "bench.ceiling_app:app"]
    # fmt: on
    url = f"http://{HOST}:{port}"
    out: dict[str, Any] = {}
    label = f"{'postgres' if 'CEILING_PG' in env else 'sqlite'}, {variant.rstrip('_') or 'gthread'}"
    web = start_child(f"ceiling{variant.rstrip('_')}", args, tmp, env, lambda _: healthy(url), url)
    try:
        for route, prefix in routes:

            def send(c: Conn, tid: int, i: int, route: str = route) -> int:
                to = f"w{(i + 1) % WORKERS:02d}"
                body = {"to": to, "subject": f"m{i}", "body": f"bench message {i} " + "x" * 100}
                return c.call("POST", route, body, CEILING_TOKEN)[0]

            for conc in (1, 8):
                r = run_load(port, sz[f"mail_c{conc}"], conc, sz["max_s"], send, ok=201)
                out[f"{variant}{prefix}mail_c{conc}"] = r
                print(f"[ceiling] POST {route} ({label}) c={conc}: {r}", flush=True)
    finally:
        web.stop()
    return out
