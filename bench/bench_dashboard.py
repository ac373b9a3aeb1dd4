#!/usr/bin/env python3
"""Dashboard page load with 1,000 workspaces and 10,000 beads in one project.

    python3 -m bench.bench_dashboard [--runs N] [--no-browser]

Seeds a fresh SQLite file and a bundled Redis (tests/servers.py) with one project: 1,000 workspaces
(400 online, with reservations), 10,000 beads in 3 repos (60 % open, 15 % claimed, 5 % blocked, 20 %
closed; 30 % of the open ones blocked by another bead), 2,000 mail messages, 300 chat messages, 30
pending escalations and 5,000 stream events. Then starts one gunicorn web process on it and measures,
per page, the server's answer time over loopback (median and p95 of N runs, with the answer size)
and, unless --no-browser, the full load in headless Chromium (navigation to `load`, plus the live
socket opening). Prints a markdown table and writes it to bench/out/dashboard-<timestamp>.md.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from tests.servers import free_port, run_release, start_redis, start_web

ROOT = Path(__file__).resolve().parent.parent


OUT_DIR = ROOT / "bench" / "out"
WORKSPACES, BEADS, ONLINE = 1000, 10_000, 400
PAGES = ["/team", "/team?page=5", "/team?status=online", "/work", "/work?q=auth", "/work?more=ready",
         "/work/graph", "/work/bead/{bead}", "/chat", "/mail", "/mail?page=20", "/escalations", "/activity",
         "/activity?group=claims", "/policy"]
_no_proxy = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def seed(env: dict[str, str]) -> dict[str, object]:
    """Fill the database and Redis `env` points at; returns the project key and a bead pk."""
    from store import db, open_store
    from store.config import Settings
    from store.models import Bead, Claim, Delivery, Dependency, Escalation, Message, Repo, Workspace
    from store.util import hash_secret, now
    from store.workspaces import init_workspace

    st = open_store(Settings.from_env(env))
    rng, ts = random.Random(7), now()
    db.connect()
    first = init_workspace(st, "big", "", "git@github.com:acme/api.git", "agent0000", "coordinator",
                           "Human 0", "host0", "/src")
    project_id = first.project.id
    repos = [Repo.get(Repo.project == project_id).id]
    with db.transaction():
        for name in ("web", "infra"):
            repo = Repo.insert(project=project_id, canonical=f"github.com/acme/{name}", name=name)
            repos.append(repo.execute())
        Workspace.insert_many([
            {"project": project_id, "repo": repos[i % 3], "alias": f"agent{i:04d}", "role": rng.choice(
                ("developer", "reviewer", "frontend", "backend")), "human": f"Human {i % 40}",
             "hostname": f"host{i % 50}", "path": f"/src/w{i}", "token_hash": hash_secret(f"bench-{i}"),
             "created_ts": ts - 86400, "last_seen_ts": ts - rng.uniform(0, 4 * 86400)}
            for i in range(1, WORKSPACES)]).execute()
    ws = [w for (w,) in Workspace.select(Workspace.id).where(Workspace.project == project_id).tuples()]
    words = ("auth", "cart", "search", "billing", "schema", "cache", "login", "orders", "export", "queue")
    rows = []
    for i in range(BEADS):
        status = rng.choices(("open", "in_progress", "blocked", "closed"), (60, 15, 5, 20))[0]
        rows.append({"project": project_id, "repo": repos[i % 3], "ref": f"bd-{i:05d}",
                     "title": f"{rng.choice(words)} {rng.choice(words)} task {i}",
                     "description": "lorem " * 40, "status": status, "priority": rng.randint(0, 4),
                     "created_ts": ts - i, "updated_ts": ts - i})
    with db.transaction():
        for start in range(0, BEADS, 500):
            Bead.insert_many(rows[start:start + 500]).execute()
    beads = list(Bead.select(Bead.id, Bead.repo, Bead.ref, Bead.status)
                 .where(Bead.project == project_id).tuples())
    deps, claims, taken = [], [], set()
    by_repo: dict[int, list[tuple]] = {}
    for bead in beads:
        by_repo.setdefault(bead[1], []).append(bead)
    for pk, repo, _ref, status in beads:
        if status == "open" and rng.random() < 0.3:
            target = rng.choice(by_repo[repo])
            if target[0] != pk:
                deps.append({"bead": pk, "project": project_id, "target_ref": target[2], "type": "blocks"})
        if status == "in_progress":
            holder = rng.choice(ws)
            claims.append({"project": project_id, "bead": pk, "workspace": holder, "claimed_ts": ts - 60})
            taken.add(pk)
    with db.transaction():
        for start in range(0, len(deps), 500):
            Dependency.insert_many(deps[start:start + 500]).on_conflict_ignore().execute()
        for start in range(0, len(claims), 500):
            Claim.insert_many(claims[start:start + 500]).execute()
    with db.transaction():
        for i in range(2300):
            kind = "chat" if i >= 2000 else "mail"
            a, b = rng.sample(ws[:200], 2)
            thread = f"c:{min(a, b)}:{max(a, b)}" if kind == "chat" else f"bd-{i:05d}"
            subject = f"about {thread}" if kind == "mail" else ""
            mid = Message.insert(project=project_id, kind=kind, sender=a, subject=subject, body="hello " * 30,
                                 thread=thread, created_ts=ts - 3000 + i).execute()
            Delivery.insert(message=mid, recipient=b, project=project_id,
                            acked_ts=None if i % 3 else ts).execute()
        for i in range(30):
            Escalation.insert(project=project_id, workspace=ws[i], subject=f"question {i}",
                              situation="why " * 50, options=json.dumps(["A", "B"]),
                              context=json.dumps({"branch": "main"}), created_ts=ts, remind_ts=ts + 3000,
                              expires_ts=ts + 4000).execute()
    for w in ws[:ONLINE]:
        presence = {"branch": "main", "host": "h", "alias": f"a{w}"}
        st.redis.heartbeat(project_id, w, ts - rng.uniform(0, 250), presence)
    for i in range(5000):
        claimed = {"bead": f"bd-{i:05d}", "alias": f"agent{i % 1000:04d}"}
        st.redis.add_event(project_id, "claim.created", claimed)
    db.close()
    sample = next(pk for pk, _, _, status in beads if status == "open")
    return {"key": first.project_key, "bead": sample, "deps": len(deps), "claims": len(claims)}


def timed_get(url: str, cookie: str) -> tuple[float, int, int]:
    request = urllib.request.Request(url, headers={"Cookie": cookie})
    start = time.perf_counter()
    with _no_proxy.open(request, timeout=60) as response:
        body = response.read()
        return (time.perf_counter() - start) * 1000, response.status, len(body)


def login(base: str, key: str) -> str:
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    request = urllib.request.Request(base + "/v1/dashboard/link", data=b"{}", method="POST", headers=headers)
    with _no_proxy.open(request, timeout=30) as response:
        path = json.loads(response.read())["path"]

    class Stop(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), Stop())
    try:
        opener.open(base + path, timeout=30)
    except urllib.error.HTTPError as answer:
        cookie = answer.headers["Set-Cookie"].split(";", 1)[0]
        answer.close()
        return cookie
    raise RuntimeError("the login link did not redirect")


def browser_loads(base: str, cookie: str, pages: list[str], runs: int) -> dict[str, float]:
    from playwright.sync_api import sync_playwright

    name, value = cookie.split("=", 1)
    out = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        context = browser.new_context()
        context.add_cookies([{"name": name, "value": value, "url": base}])
        page = context.new_page()
        for path in pages:
            times = []
            for _ in range(runs):
                start = time.perf_counter()
                page.goto(base + path, wait_until="load")
                page.wait_for_selector("body[data-ws=open]", timeout=15_000)
                times.append((time.perf_counter() - start) * 1000)
            out[path] = statistics.median(times)
        browser.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--no-browser", action="store_true")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-dash-"))
    redis = start_redis(tmp)
    env = {"REDIS_URL": redis.url, "DATABASE_URL": f"sqlite:///{tmp / 'bw.db'}",
           "BEADWIRE_DATA_DIR": str(tmp), "BEADWIRE_SQLITE_SYNCHRONOUS": "NORMAL"}
    web = None
    try:
        run_release(env)
        started = time.perf_counter()
        info = seed(env)
        print(f"seeded {WORKSPACES} workspaces, {BEADS} beads ({info['deps']} blocking deps, "
              f"{info['claims']} claims) in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        web = start_web(tmp, free_port(), env)
        url = str(web.url)  # set once it started
        cookie = login(url, str(info["key"]))
        pages = [p.format(bead=info["bead"]) for p in PAGES]
        rows = []
        for path in pages:
            timed_get(url + path, cookie)  # warm
            samples = [timed_get(url + path, cookie) for _ in range(args.runs)]
            assert all(status == 200 for _, status, _ in samples), (path, samples)
            ms = sorted(s[0] for s in samples)
            rows.append((path, statistics.median(ms), ms[int(0.95 * (len(ms) - 1))], samples[0][2]))
        loads = {} if args.no_browser else browser_loads(url, cookie, ["/team", "/work", "/activity"], 3)
        report(rows, loads, args.runs)
    finally:
        if web is not None:
            web.stop()
        redis.stop()


def report(rows: list[tuple[str, float, float, int]], loads: dict[str, float], runs: int) -> None:
    title = (f"Dashboard, {WORKSPACES} workspaces ({ONLINE} online), {BEADS} beads; one gunicorn process, "
             f"SQLite, median/p95 of {runs} runs over loopback")
    lines = [title, "",
             "| page | server median ms | p95 ms | answer KiB | Chromium load ms |",
             "|---|---:|---:|---:|---:|"]
    for path, median, p95, size in rows:
        browser = f"{loads[path]:.0f}" if path in loads else ""
        lines.append(f"| `{path}` | {median:.0f} | {p95:.0f} | {size / 1024:.0f} | {browser} |")
    text = "\n".join(lines)
    print(text)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    (OUT_DIR / f"dashboard-{time.strftime('%Y%m%d-%H%M%S')}.md").write_text(text + "\n")


if __name__ == "__main__":
    main()
