"""Time a two-way `wire sync` of the 677-bead Gas Town file against a real `wire serve` stack.

    python3 -m bench.bench_sync [--database sqlite|postgres] [--rounds 3]

Each round: a fresh project and git worktree holding tests/data/beads/gastown-issues.jsonl; then
`wire --json sync` three times, timed from the outside (process start to exit, so interpreter start
and imports are included): the first sync (677 beads created, no base), a no-op sync (with the base),
and a sync after 50 beads were edited in the file (title and updated_at). The server's share is the
`POST /v1/sync` alone, timed with the same file, base and client in this process. Medians are printed.
It starts and stops everything itself (tests/servers.py). Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GASTOWN = ROOT / "tests" / "data" / "beads" / "gastown-issues.jsonl"
EDITED = 50


def wire(cwd: Path, env: dict[str, str], *args: str) -> tuple[float, dict]:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", "from cli import main; main()", "--json", *args], cwd=cwd,
                          env=env, capture_output=True, text=True, check=True)
    return time.perf_counter() - started, json.loads(done.stdout)


def edit(path: Path, count: int) -> None:
    records = [json.loads(line) for line in path.read_text().splitlines()]
    for record in records[:count]:
        record.update(title=record["title"] + " (edited)", updated_at="2999-01-01T00:00:00Z")
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


def server_only(url: str, root: Path, token: str) -> float:
    """The `POST /v1/sync` of a no-op sync alone (file and base as the worktree has them)."""
    from cli.client import Client

    client = Client(url, token=token, auto_reserve=False, write_through=False)
    text = (root / ".beads" / "issues.jsonl").read_text()
    base = (root / ".wire" / "beads.base.jsonl").read_text()
    started = time.perf_counter()
    client.sync(text, "full", base=base)
    return time.perf_counter() - started


def one_round(url: str, tmp: Path, n: int) -> dict[str, float]:
    repo = tmp / f"r{n}"
    (repo / ".beads").mkdir(parents=True)
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=repo, check=True)
    origin = f"git@github.com:bench/gastown{n}.git"
    subprocess.run(["git", "remote", "add", "origin", origin], cwd=repo, check=True)
    (repo / ".beads" / "issues.jsonl").write_bytes(GASTOWN.read_bytes())
    env = {**os.environ, "WIRE_URL": url, "WIRE_CONFIG_DIR": str(tmp / f"cfg{n}"), "PYTHONPATH": str(ROOT)}
    wire(repo, env, "init", "--project", f"bench-sync-{n}")
    first, answer = wire(repo, env, "sync")
    assert answer["created"] == 677, answer
    noop, answer = wire(repo, env, "sync")
    assert (answer["created"], answer["updated"], answer["pulled"]) == (0, 0, 0), answer
    token = json.loads((repo / ".wire" / "workspace.json").read_text())["token"]
    post = server_only(url, repo, token)
    edit(repo / ".beads" / "issues.jsonl", EDITED)
    changed, answer = wire(repo, env, "sync")
    assert answer["updated"] == EDITED, answer
    return {"first sync (677 created)": first, "no-op sync": noop, f"{EDITED} beads changed": changed,
            "no-op: POST /v1/sync alone": post}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    from tests.servers import start_postgres, start_stack

    with tempfile.TemporaryDirectory(prefix="bench-sync-") as name:
        tmp = Path(name)
        pg = start_postgres(tmp / "pg") if args.database == "postgres" else None
        try:
            url = pg.create_database("benchsync") if pg else None
            stack = start_stack(tmp, database_url=url, workers=1)
            try:
                rounds = [one_round(stack.url, tmp, n) for n in range(args.rounds)]
            finally:
                stack.stop()
        finally:
            if pg:
                pg.stop()
    print(f"| {args.database}, median of {args.rounds} | seconds |\n|---|---|")
    for key in rounds[0]:
        print(f"| {key} | {statistics.median(r[key] for r in rounds):.3f} |")


if __name__ == "__main__":
    main()
