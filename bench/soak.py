#!/usr/bin/env python3
"""beadwire soak test: many simulated agents doing the agent loop for minutes, then the books are checked.

    python3 -m bench.soak [--minutes 10] [--agents 200] [--database sqlite|postgres] [--think 1.0]
                          [--url URL --key PROJECT_KEY? --database-url ... --redis-url ...] [--write-results]

Starts its own `wire serve` stack (tests/servers.py: web with 2 gunicorn workers, a Dramatiq worker, the
clock, the bundled Redis, SQLite or a throwaway PostgreSQL) on a free loopback port, registers the agents
in one project, and runs each agent as a thread with its own keep-alive HTTP connection doing:

    mine -> ready -> claim (races expected: 409) -> reserve files -> comment -> mail someone
         -> (sometimes) chat: ask its partner and wait for the reply -> release files -> close -> open mail

A coordinator seeds beads at the start and tops the ready list up; agents also create beads. At the end
it checks, from the server's own records (the Event audit table, the Delivery rows, the mailbox streams):
  * claims: no bead ever had two holders at once; every claim the server acknowledged is in the audit
    trail with its holder, and every closed bead was closed by the one agent that held it;
  * mail: every mail acknowledged (201) was handed to its recipient exactly once (`POST /v1/mail/open`),
    no banner showed a mail twice, every delivery reached Redis, and no mail is left in any mailbox;
  * memory: RSS of the server processes, sampled every 30 s, stays flat (last <= 1.2 x the first
    sample after warm-up);
  * errors: zero answers other than 2xx, apart from the expected 409 claim conflicts; zero exceptions.
Prints a report table, writes the figures to bench/out/soak-<timestamp>.{md,json}, and with
--write-results replaces the soak table of bench/RESULTS.md ("## Soak"). Loopback only; bounded by --minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from contextlib import closing
from typing import TYPE_CHECKING, Any

from bench.memory import process_kind, vm_kib
from bench.paths import OUT_DIR
from bench.soak_agents import CHAT_WAIT_S, Agent, Books, Coordinator
from bench.soak_client import Client, Stats, cmdline, descendants
from bench.soak_report import report, write_results

if TYPE_CHECKING:
    from tests.servers import PgProc, Stack

REPO_ORIGIN = "https://github.com/soak/beadwire-soak"
#: RSS growth tolerated between the first sample after warm-up and the last.
RSS_FLAT_RATIO = 1.2
#: The server's processes whose memory is judged (Redis is shown apart).
SERVER_KINDS = ("web", "worker", "clock")
#: Bead-audit event kinds that end a claim.
ENDS_CLAIM = {"claim.released", "bead.closed", "claim.jumped", "claim.taken_stale"}


# --------------------------------------------------------------------------------------- the run


class Soak:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.url = ""
        self.think = args.think
        self.chat_prob = args.chat_prob
        self.stats = Stats()
        self.books = Books()
        self.stop = threading.Event()
        self.aliases: list[str] = []
        self.tokens: list[str] = []
        self.rss: list[dict[str, Any]] = []
        self.stack: Stack | None = None
        self.pg: PgProc | None = None
        self.tmp = ""
        self.database_url = args.database_url
        self.redis_url = args.redis_url
        self.project_id = 0

    # -- stack

    def start(self) -> None:
        if self.args.url:
            self.url = self.args.url.rstrip("/")
            return
        from tests.servers import start_postgres, start_stack

        self.tmp = tmp = tempfile.mkdtemp(prefix="beadwire-soak-")
        if self.args.database == "postgres":
            self.pg = start_postgres(tmp)
            self.database_url = self.pg.url
        self.stack = start_stack(tmp, database_url=self.database_url if self.pg else None)
        self.url = self.stack.url
        if not self.pg:
            self.database_url = f"sqlite:///{self.stack.data_dir / 'beadwire.db'}"

    def stop_stack(self) -> None:
        if self.stack is not None:
            self.stack.stop()
        if self.pg is not None:
            self.pg.stop()
        if self.tmp and not self.args.keep:
            shutil.rmtree(self.tmp, ignore_errors=True)
        elif self.tmp:
            print(f"kept the stack's files (logs, database) in {self.tmp}")

    # -- setup

    def register(self) -> str:
        """Create the project and the agents; returns the project key."""
        conn = Client(self.url, self.args.key or "", self.stats)
        first = conn.call("init", "POST", "/init", {"project": self.args.project, "repo_origin": REPO_ORIGIN,
                                                    "alias": "coordinator", "role": "coordinator"})
        if first is None or first.status not in (200, 201):
            raise SystemExit(f"could not create project {self.args.project}: {first and first.json}")
        key = first.json.get("project_key") or self.args.key
        self.project_id = int(first.json["project"]["id"])
        coordinator_token = first.json["token"]
        conn.token = key
        for i in range(self.args.agents):
            alias = f"agent-{i:03d}"
            joined = conn.call("init", "POST", "/init", {"project": self.args.project,
                                                         "repo_origin": REPO_ORIGIN, "alias": alias,
                                                         "role": "developer"})
            if joined is None or joined.status not in (200, 201):
                raise SystemExit(f"could not register {alias}: {joined and joined.json}")
            self.aliases.append(alias)
            self.tokens.append(joined.json["token"])
        conn.close()
        return coordinator_token

    # -- memory

    def server_pids(self) -> dict[str, list[int]]:
        """Our stack's processes by kind (from /proc: the descendants of `wire serve`)."""
        if self.stack is None or self.stack.pid is None:
            return {}
        groups: dict[str, list[int]] = defaultdict(list)
        for pid in descendants(self.stack.pid):
            cmd = " ".join(cmdline(pid))
            name = process_kind(cmd) or "other"
            groups[name].append(pid)
        return groups

    def sample_rss(self, started: float) -> None:
        if self.stack is None:  # --url: not our processes
            return
        sample: dict[str, Any] = {"t": round(time.monotonic() - started)}
        for name, pids in self.server_pids().items():
            sample[name] = round(sum(vm_kib(pid) for pid in pids) / 1024, 1)
            if name in SERVER_KINDS:
                own = sum(vm_kib(p, "RssAnon") for p in pids) / 1024
                sample["anon"] = round(sample.get("anon", 0) + own, 1)
        sample["server"] = round(sum(v for k, v in sample.items() if k in SERVER_KINDS), 1)
        self.rss.append(sample)

    # -- the loop

    def run(self) -> dict[str, Any]:
        self.start()
        try:
            coordinator_token = self.register()
            coordinator = Coordinator(self, coordinator_token)
            coordinator.seed(self.args.seed)
            agents = [Agent(i, alias, token, self)
                      for i, (alias, token) in enumerate(zip(self.aliases, self.tokens))]
            started = time.monotonic()
            self.sample_rss(started)
            coordinator.start()
            for agent in agents:
                agent.start()
                time.sleep(self.think / max(1, len(agents)))  # stagger: no thundering herd at t=0
            deadline = started + self.args.minutes * 60
            while time.monotonic() < deadline:
                time.sleep(min(self.args.rss_every, max(0.1, deadline - time.monotonic())))
                self.sample_rss(started)
                self.progress(started)
            self.stop.set()
            for thread in [coordinator, *agents]:
                thread.join(CHAT_WAIT_S + 60)
            duration = time.monotonic() - started
            load = self.stats.total()
            drained = self.drain(agents)
            return self.check(duration, load, drained)
        finally:
            self.stop.set()
            self.stop_stack()

    def progress(self, started: float) -> None:
        s = self.stats
        print(f"[{time.monotonic() - started:6.0f}s] requests {s.total():7d}  unexpected {s.unexpected()}  "
              f"claims {len(self.books.claims)}  mails {len(self.books.mail_sent)}  "
              f"rss {self.rss[-1]['server'] if self.rss else '-'} MiB", flush=True)

    def drain(self, agents: list[Agent]) -> float:
        """After the load: every agent opens its mail until all that was sent to it arrived (bounded)."""
        started = time.monotonic()
        owed = Counter(self.books.mail_sent.values())
        got = Counter(alias for alias, _ in self.books.mail_opened)
        deadline = started + 120
        for agent in agents:
            agent.api = Client(self.url, agent.api.token, self.stats)
            while got[agent.alias] < owed[agent.alias] and time.monotonic() < deadline:
                got[agent.alias] += agent.open_mail()
                if got[agent.alias] < owed[agent.alias]:
                    time.sleep(0.2)
            agent.api.close()
        return time.monotonic() - started

    # -- the books

    def sql(self, query: str) -> list[tuple]:
        url = self.database_url or ""
        if url.startswith("sqlite"):
            path = url.split(":///", 1)[1]
            with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)) as conn:
                return list(conn.execute(query))
        import psycopg2  # type: ignore[import-untyped]  # no stubs among our dependencies (types-psycopg2)

        with closing(psycopg2.connect(url)) as conn, conn.cursor() as cur:
            cur.execute(query)
            return list(cur.fetchall())

    def check_claims(self) -> dict[str, Any]:
        rows = self.sql(f"SELECT id, kind, bead_ref, data FROM event WHERE project_id = {self.project_id} "
                        "AND kind IN ('claim.created', 'claim.released', 'bead.closed', 'claim.jumped', "
                        "'claim.taken_stale') ORDER BY id")
        holder: dict[str, str | None] = {}
        history: dict[str, list[str]] = defaultdict(list)
        closers: dict[str, str] = {}
        overlaps: list[tuple[str, str | None, str]] = []
        other_endings: Counter[str] = Counter()
        for _, kind, ref, data in rows:
            alias = json.loads(data).get("alias")
            if kind == "claim.created":
                if holder.get(ref) not in (None, alias):
                    overlaps.append((ref, holder[ref], alias))
                holder[ref] = alias
                history[ref].append(alias)
            else:
                if kind == "bead.closed":
                    closers[ref] = alias
                elif kind != "claim.released":
                    other_endings[kind] += 1
                holder[ref] = None
        server_claims = Counter((ref, alias) for ref, aliases in history.items() for alias in aliases)
        acked = Counter(self.books.claims)
        one_holder = sum(1 for aliases in history.values() if len(set(aliases)) == 1)
        wrong_closer = [(ref, closers[ref], history[ref]) for ref in closers
                        if ref in history and closers[ref] not in history[ref]]
        return {
            "claims_acked": sum(acked.values()), "claim_events": sum(server_claims.values()),
            "beads_claimed": len(history), "beads_one_holder": one_holder, "overlaps": overlaps[:10],
            "acked_missing_from_audit": sorted((acked - server_claims).elements())[:10],
            "audit_not_acked": sorted((server_claims - acked).elements())[:10],
            "closed_by_someone_else": wrong_closer[:10], "jumped_or_stale": dict(other_endings),
            "ok": not overlaps and acked == server_claims and one_holder == len(history) and not wrong_closer
            and not other_endings,
        }

    def check_mail(self) -> dict[str, Any]:
        sent = self.books.mail_sent
        opened = Counter(self.books.mail_opened)
        twice = [k for k, n in opened.items() if n > 1]
        wrong = [(alias, i) for alias, i in opened if sent.get(i) != alias]
        missing = [i for i, to in sent.items() if (to, i) not in opened]
        shown = Counter(self.books.banner_mail)
        shown_twice = [k for k, n in shown.items() if n > 1]
        undelivered = self.undelivered()
        deadline = time.monotonic() + 90  # the fast path publishes at once; the sweep records it (>= 10 s)
        while undelivered and time.monotonic() < deadline:
            time.sleep(2)
            undelivered = self.undelivered()
        left = self.mail_left_in_mailboxes()
        return {
            "mail_acked": len(sent), "mail_opened": sum(opened.values()), "opened_twice": twice[:10],
            "opened_by_wrong_agent": wrong[:10], "never_opened": missing[:10],
            "banner_shown": sum(shown.values()), "banner_shown_twice": shown_twice[:10],
            "outbox_undelivered": undelivered, "mail_left_in_mailboxes": left,
            "ok": (not twice and not wrong and not missing and not shown_twice and undelivered == 0
                   and not left),
        }

    def undelivered(self) -> int:
        """Deliveries whose outbox row is not recorded as published into Redis."""
        return int(self.sql(f"SELECT COUNT(*) FROM outbox WHERE project_id = {self.project_id} "
                            "AND delivery_id IS NOT NULL AND delivered_ts IS NULL")[0][0])

    def mail_left_in_mailboxes(self) -> int | None:
        """Mail entries still in the workspaces' Redis mailboxes (all were opened: should be none)."""
        port = self.redis_port() if self.stack else None
        url = self.redis_url or (f"redis://127.0.0.1:{port}/0" if port else None)
        if not url:
            return None
        from store.keys import Keys
        from store.redis import make_client

        keys = Keys()
        client = make_client(url)
        try:
            rows = self.sql(f"SELECT id FROM workspace WHERE project_id = {self.project_id}")
            ids = [int(i) for (i,) in rows]
            entries = [f for ws in ids for _, f in client.xrange(keys.mailbox_key(self.project_id, ws)) or []]
            return sum(1 for f in entries if f and f.get("kind") == "mail")
        finally:
            client.close()

    def redis_port(self) -> int | None:
        for pid in self.server_pids().get("redis", []):
            args = cmdline(pid)
            if "--port" in args:
                return int(args[args.index("--port") + 1])
            # redis-server rewrites its command line to "redis-server 127.0.0.1:<port>"
            for arg in " ".join(args).split():
                host, _, port = arg.rpartition(":")
                if host and port.isdigit():
                    return int(port)
        return None

    def check_memory(self) -> dict[str, Any]:
        warm = [s for s in self.rss if s["t"] >= self.args.warmup] or self.rss
        first, last = warm[0]["server"], self.rss[-1]["server"]
        peak = max(s["server"] for s in self.rss)
        # judged on the processes' own memory: a leak grows it; mapped file pages come and go with the
        # size of the database and the kernel's page cache
        anon_first, anon_last = warm[0]["anon"], self.rss[-1]["anon"]
        return {"first_mib": first, "last_mib": last, "max_mib": peak, "at_start_mib": self.rss[0]["server"],
                "anon_at_start_mib": self.rss[0]["anon"], "anon_first_mib": anon_first,
                "anon_last_mib": anon_last,
                "anon_max_mib": max(s["anon"] for s in self.rss),
                "redis_last_mib": self.rss[-1].get("redis"), "samples": len(self.rss),
                "ok": anon_last <= anon_first * RSS_FLAT_RATIO}

    def check(self, duration: float, load_requests: int, drained: float) -> dict[str, Any]:
        stats = self.stats
        result: dict[str, Any] = {
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "machine": (f"{platform.node()}: {os.cpu_count()} CPUs, {platform.machine()}, "
                        f"Python {platform.python_version()}"),
            "load_avg_at_end": os.getloadavg(),
            "args": {k: v for k, v in vars(self.args).items() if k not in ("key",)},
            "duration_s": round(duration, 1), "requests": load_requests,
            "throughput_rps": round(load_requests / duration, 1), "drain_s": round(drained, 1),
            "beads_created": self.books.beads_created, "chat": dict(self.books.chat),
            "claim_conflicts_409": stats.status["claim"][409], "keepalive_retries": stats.keepalive_retries,
            "unexpected_answers": stats.unexpected(), "errors": stats.errors[:20],
            "exceptions": stats.exceptions[:20],
            "latency_ms": {op: {"n": len(v), "p50": round(statistics.median(v) * 1000, 1),
                                "p99": round(sorted(v)[int(0.99 * (len(v) - 1))] * 1000, 1)}
                           for op, v in sorted(stats.latency.items())},
            "claims": self.check_claims(), "mail": self.check_mail(),
            "memory": self.check_memory() if self.rss and "server" in self.rss[0] else {"ok": None},
            "rss": self.rss,
        }
        result["errors_ok"] = stats.unexpected() == 0
        checked = all(result[k]["ok"] is not False for k in ("claims", "mail", "memory"))
        result["ok"] = checked and result["errors_ok"]
        return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--agents", type=int, default=200)
    parser.add_argument("--think", type=float, default=1.0, help="mean seconds between an agent's calls")
    parser.add_argument("--chat-prob", type=float, default=0.1, help="chance an even agent asks its partner")
    parser.add_argument("--seed", type=int, default=300, help="beads the coordinator files before the start")
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--rss-every", type=float, default=30)
    parser.add_argument("--warmup", type=float, default=120, help="seconds before the RSS baseline")
    parser.add_argument("--url", help="an already running server instead of our own stack")
    parser.add_argument("--key", help="with --url: the project key, when the project exists")
    parser.add_argument("--project", default="soak")
    parser.add_argument("--database-url", help="with --url: the server's database, for the checks")
    parser.add_argument("--redis-url", help="with --url: the server's Redis, for the checks")
    parser.add_argument("--keep", action="store_true", help="keep the stack's files (logs, database)")
    parser.add_argument("--write-results", action="store_true",
                        help="replace the soak table of bench/RESULTS.md")
    args = parser.parse_args()
    if args.url and not args.database_url:
        parser.error("--url needs --database-url (the checks read the server's audit table)")

    result = Soak(args).run()
    table = report(result)
    print("\n" + table)
    if result["errors"] or result["exceptions"]:
        print("\nunexpected:", *result["errors"], *result["exceptions"], sep="\n  ")
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (OUT_DIR / f"soak-{stamp}.md").write_text(table + "\n")
    (OUT_DIR / f"soak-{stamp}.json").write_text(json.dumps(result, indent=2, default=str))
    if args.write_results:
        write_results(table)
    print(f"\n{'PASS' if result['ok'] else 'FAIL'}; figures in bench/out/soak-{stamp}.json")
    sys.exit(0 if result["ok"] else 1)


if __name__ == "__main__":
    main()
