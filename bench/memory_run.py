"""The memory of a real `wire serve` stack at start and after some load, per process and per kind.

    python3 -m bench.memory_run [--root DIR] [--n 2000] [--out FILE]

`--root` runs the stack from another checkout (e.g. `git archive` of main, for a before/after in the
same minute). Memory is not timing-sensitive, so this is valid on a busy machine. Load: 8 workspaces
register, `n` beads are synced and claimed at c=8, `n` mails sent at c=8 and delivered, `/v1/status` with
50 online read n/4 times, 20 chat round trips.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from bench import workloads
from bench.load import WORKERS
from bench.memory import mib, process_kind, process_tree, smaps_kib, stack_rss
from tests.servers import start_stack


def per_process(root_pid: int) -> list[dict]:
    """One row per process of the stack: kind, pid, RSS, PSS, anonymous PSS (MiB), command line."""
    rows = []
    for pid, cmd in sorted(process_tree(root_pid).items()):
        f = smaps_kib(pid)
        rows.append({"kind": process_kind(cmd) or "other", "pid": pid, "rss": mib(f.get("Rss", 0)),
                     "pss": mib(f.get("Pss", 0)), "pss_anon": mib(f.get("Pss_Anon", 0)), "cmd": cmd[:120]})
    return rows


def snapshot(root_pid: int) -> dict:
    return {"groups": stack_rss(root_pid), "processes": per_process(root_pid),
            "supervisor": {k: mib(v) for k, v in smaps_kib(root_pid).items() if k in ("Rss", "Pss")}}


def load(port: int, n: int) -> dict:
    """Claims, mail, status and chat, as bench/ours.py's workloads, `n` of each kind."""
    aliases = [f"w{i:02d}" for i in range(WORKERS)]
    _, tokens = workloads.register(port, "mem", aliases)
    ids = [f"bd-m-{i:05d}" for i in range(n)]
    workloads.sync_beads(port, tokens[0], ids, "memory bead")
    out = workloads.claims(port, tokens, {8: ids}, 120.0)
    out.update(workloads.mail(port, tokens, {"mail_c1": n // 10, "mail_c8": n, "max_s": 120.0}))
    out.update(workloads.status50(port, {"status_c1": n // 8, "status_c8": n // 8, "max_s": 60.0}))
    _, pair = workloads.register(port, "chat", ["chat-a", "chat-b"])
    out["chat"] = workloads.chat_rounds(port, pair[0], pair[1], 20, 60.0)
    return {k: {"n_ok": v["n_ok"], "statuses": v["statuses"]} if "n_ok" in v else v
            for k, v in out.items() if isinstance(v, dict)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", help="checkout to run the stack from (default: this one)")
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--out", help="also write the JSON result here")
    ap.add_argument("--settle", type=float, default=3.0, help="seconds after start before the first reading")
    args = ap.parse_args()
    env = {"PYTHONPATH": str(Path(args.root).resolve())} if args.root else {}
    with tempfile.TemporaryDirectory(prefix="memrun-") as tmp:
        stack = start_stack(tmp, env=env)
        try:
            time.sleep(args.settle)
            start = snapshot(stack.pid or 0)
            port = int(stack.url.rsplit(":", 1)[1])
            done = load(port, args.n)
            time.sleep(2.0)
            end = snapshot(stack.pid or 0)
        finally:
            stack.stop()
    result = {"root": args.root or os.getcwd(), "n": args.n, "start": start, "end": end, "load": done}
    text = json.dumps(result, indent=1)
    if args.out:
        Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
