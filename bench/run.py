"""beadwire load benchmark, with an optional side-by-side run of the BeadHub 0.3.1 peer.

    python3 -m bench [--peer] [--quick] [--database sqlite|postgres] [--profile] [--results]
    python3 bench/bench.py ...         (the same, from anywhere)

Starts its own `wire serve` stack (tests/servers.py) on a free loopback port, registers agents and
measures: claims on distinct beads (c=1, c=8), `GET /v1/status` with 50 workspaces online (c=1, c=8)
and with 1,000 online (c=1), a 20-agent race on one bead, mail send (c=1, c=8), chat reply-to-waiter
latency, server RSS, and `wire` CLI wall time.
With `--peer` it then starts BeadHub (../shared/peer/setup.sh beside the repository) and runs the same
workloads through the peer's own harness (bench.py there) plus `bench/peer_extra.py` (1,000 online), or
falls back to the recorded peer figures. Prints one markdown table and writes it to bench/out/<timestamp>.md;
`--results` also writes bench/RESULTS.md with issue 19's targets line.

Loopback only; every load loop is capped by a count and a time limit. Not part of the tests.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.layouts import bench_layouts
from bench.load import SIZES, CpuSampler, fill_other_cpu
from bench.ours import bench_ceiling, bench_ours
from bench.paths import OUT_DIR, PEER_RECORDED, RESULTS, ROOT
from bench.peer import bench_peer
from bench.report import problems, report
from bench.targets import Goal, targets
from tests.servers import start_postgres

#: What `--results` keeps of the RESULTS.md it replaces: from this line on, the other tools' figures
#: (bench/soak.py --write-results rewrites its own table there).
KEPT_FROM = "<!-- other tools:"
#: Where the section of a `--database postgres` run starts (it ends at `KEPT_FROM`): each database's run
#: rewrites its own section of RESULTS.md and keeps the other's.
PG_FROM = "<!-- postgres run:"
PG_MARK = f"{PG_FROM} `python3 -m bench --database postgres --results` rewrites this section -->"


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


def results_md(meta: dict, text: str, goals: list[Goal], peer: dict | None) -> str:
    """This run's section of RESULTS.md: the whole head of the file on SQLite, a section of its own on
    PostgreSQL (one heading level down)."""
    m = meta["machine"]
    pg = meta["args"]["database"] == "postgres"
    peer_state = (
        "not run"
        if peer is None
        else "measured in the same run"
        if peer.get("source") == "measured"
        else f"RECORDED figures ({peer.get('why')})"
    )
    h = "##" if pg else "#"
    head = [
        f"{h} PostgreSQL run (`--database postgres`)" if pg else "# beadwire benchmark results",
        "",
        f"* Date: {meta['started']}",
        (
            f"* Command: `python3 -m bench {' '.join(meta['argv'])}` "
            f"({'quick' if meta['args']['quick'] else 'full'} run, {meta['total_s']} s), "
            f"beadwire at {meta['git']}, database {meta['args']['database']}"
        ),
        (
            f"* Machine: {m['cpu']}, {m['cores']} vCPU, {m['ram_gib']} GiB RAM, Python {m['python']}, "
            f"{m['os']}; load average {' '.join(meta['loadavg_start'])} → {' '.join(meta['loadavg_end'])}"
        ),
        f"* Peer: BeadHub 0.3.1, {peer_state}",
        "",
        f"{h}# Targets (issue 19{', PostgreSQL' if pg else ''})",
        "",
        "| target | measured | met |",
        "|---|---|---|",
    ]
    for goal, measured, met in goals:
        head.append(f"| {goal} | {measured} | {'–' if met is None else 'yes' if met else '**no**'} |")
    return "\n".join(head) + f"\n\n{h}# Table\n\n" + text


def splice_results(old: str, section: str, database: str) -> str:
    """RESULTS.md with this run's section in place of its database's last one: the other database's
    section and the other tools' figures (from `KEPT_FROM` on) are kept as they were."""
    cut = old.find(KEPT_FROM)
    head, tools = (old[:cut], old[cut:]) if cut >= 0 else (old, "")
    cut = head.find(PG_FROM)
    sqlite_part, pg_part = (head[:cut], head[cut:]) if cut >= 0 else (head, "")
    if database == "postgres":
        pg_part = f"{PG_MARK}\n\n{section}"
    else:
        sqlite_part = section
    return "\n\n".join(part.strip("\n") for part in (sqlite_part, pg_part, tools) if part.strip()) + "\n"


def git_state() -> str:
    """The commit the server code was measured at, and whether the worktree had local changes."""

    def git(*a: str) -> str:
        done = subprocess.run(["git", *a], cwd=ROOT, capture_output=True, text=True, check=False)
        return done.stdout.strip()

    head = git("rev-parse", "--short", "HEAD") or "?"
    dirty = [x for x in git("status", "--porcelain", "--untracked-files=no").splitlines() if x]
    return head + (f" + {len(dirty)} modified files" if dirty else "")


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="python3 -m bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
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
        help="also write bench/RESULTS.md: date, machine, the table and issue 19's targets (met or not)",
    )
    return ap.parse_args()


def run_all(args: argparse.Namespace, sz: dict) -> tuple[dict, dict | None]:
    """Our stack, the bare endpoint (and on PostgreSQL the process layouts), then the peer, with the CPU
    of other processes sampled throughout. On PostgreSQL one throwaway cluster serves all of ours, each
    part in a database of its own; it is stopped before the peer runs."""
    sampler = CpuSampler().start()
    try:
        with tempfile.TemporaryDirectory(prefix="wire-bench-") as td:
            tmp = Path(td)
            pg = start_postgres(tmp) if args.database == "postgres" else None
            try:
                ours = bench_ours(args, sz, tmp, pg)
                ours["ceiling"] = bench_ceiling(sz, tmp, pg)
                if pg is not None:
                    ours["layouts"] = bench_layouts(sz, tmp, pg)
            finally:
                if pg is not None:
                    pg.stop()
            peer = bench_peer(args, sz, tmp, sampler) if args.peer else None
    finally:
        sampler.stop()
    fill_other_cpu(ours, sampler)
    if peer and peer.get("source") == "measured":
        fill_other_cpu(peer, sampler)
    return ours, peer


def render(meta: dict, args: argparse.Namespace, ours: dict, peer: dict | None, goals: list[Goal]) -> str:
    """The printed report: a header line, the table, problems and the targets line."""
    head = (
        f"beadwire bench {meta['started']} · {args.database} · {meta['nproc']} vCPU, {meta['mem_gib']} GiB · "
        f"python {meta['python']} · "
        f"load avg {' '.join(meta['loadavg_start'])} → {' '.join(meta['loadavg_end'])} · "
        f"{'quick' if args.quick else 'full'} run, {meta['total_s']} s · beadwire at {meta['git']}"
    )
    issues = problems(ours)
    text = f"{head}\n\n{report(ours, peer)}\n"
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
    text += "\ntargets (issue 19):\n" + "".join(
        f"* {'–' if met is None else 'met' if met else 'MISSED'}: {goal}: {measured}\n"
        for goal, measured, met in goals
    )
    return text


def write_results(meta: dict, text: str, goals: list[Goal], peer: dict | None) -> None:
    """bench/RESULTS.md: this run's section; the other database's section and the other tools' kept."""
    old = RESULTS.read_text() if RESULTS.exists() else ""
    RESULTS.write_text(splice_results(old, results_md(meta, text, goals, peer), meta["args"]["database"]))
    print(f"[bench] wrote {RESULTS}")


def main() -> int:
    args = parse_args()
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
    ours, peer = run_all(args, sz)
    meta["loadavg_end"] = Path("/proc/loadavg").read_text().split()[:3]
    meta["total_s"] = round(time.perf_counter() - t_all, 1)
    goals = targets(ours, peer)
    text = render(meta, args, ours, peer, goals)
    print("\n" + text)
    if args.results:
        write_results(meta, text, goals, peer)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    (OUT_DIR / f"{stamp}.md").write_text(text)
    (OUT_DIR / f"{stamp}.json").write_text(json.dumps({"meta": meta, "ours": ours, "peer": peer}, indent=2))
    print(f"[bench] wrote {OUT_DIR / (stamp + '.md')} and .json")
    return 0
