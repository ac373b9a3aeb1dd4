"""In-process cost of the hot request paths: CPU per request, SQL statements and Redis round trips.

Runs the Flask app in this process (test client, no sockets) on SQLite (or `--database postgres`)
and a real redis-server, so figures do not depend on what else the machine is doing: CPU time is
`time.process_time()` over N requests (this process only; Redis and PostgreSQL are not counted).
SQL/req counts statements (BEGIN included); DB trips adds COMMIT, ROLLBACK and the PostgreSQL pool's
check of a connection on checkout, each a round trip on PostgreSQL (`--statements` lists them), and
leaves out the rows PostgreSQL sends with the next statement or the COMMIT (store/db.py `defer`). On
PostgreSQL, PG CPU is what its processes (the postmaster and its backends) used per request, the least
of the three rounds as for our CPU.

    python3 -m bench.profile_paths                 # table of every path
    python3 -m bench.profile_paths --profile claim # + cProfile of one path (top 35 by tottime)
    python3 -m bench.profile_paths --database postgres

Paths: watch (an empty `GET /v1/watch` slice: an idle waiter's cost per slice),
claim (POST /v1/beads/<id>/claim, distinct beads), mail (POST /v1/mail, one recipient),
status50 / status1000 (GET /v1/status with 50 / 1,000 workspaces online), whoami (the
authenticate + heartbeat preamble plus a small answer), chat (reply POST /v1/chat while the
other side waits in GET /v1/chat/wait: the process's CPU during the reply, the wall time to the waiter's
answer, and the SQL statements and Redis round trips of the reply and the woken waiter together).
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("BEADWIRE_BROKER", "stub")


class Counter:
    """Counts SQL statements (peewee) and Redis commands (redis-py) issued by this process, and the
    COMMITs and ROLLBACKs apart: on PostgreSQL each of them is one more round trip (DB trips = both)."""

    def __init__(self) -> None:
        self.sql = 0
        self.ends = 0
        self.deferred = 0  # statements, but no round trip of their own (store/db.py `_Pool.defer`)
        self.redis = 0
        self.statements: list[str] = []
        self.keep = False

    def install(self, database: Any) -> None:
        import redis

        original = database._execute_cursor
        begin = database.begin

        def counted(sql: str, params: Any = None, **kw: Any) -> Any:
            self.sql += 1
            if self.keep:
                self.statements.append(sql)
            return original(sql, params, **kw)

        def counted_begin(*a: Any, **kw: Any) -> Any:
            self.sql += 1
            if self.keep:
                self.statements.append("BEGIN")
            return begin(*a, **kw)

        def ending(original_end: Any, word: str) -> Any:
            def counted_end(*a: Any, **kw: Any) -> Any:
                self.ends += 1
                if self.keep:
                    self.statements.append(word)
                return original_end(*a, **kw)

            return counted_end

        database._execute_cursor = counted
        defer = getattr(database, "defer", None)
        if defer is not None:  # PostgreSQL: a deferred statement rides on the next one's round trip

            def counted_defer(sql: str, params: Any) -> Any:
                self.deferred += 1
                if self.keep:
                    self.statements.append(f"{sql}  (deferred: sent with the next statement or COMMIT)")
                return defer(sql, params)

            database.defer = counted_defer
        database.begin = counted_begin
        database.commit = ending(database.commit, "COMMIT")
        database.rollback = ending(database.rollback, "ROLLBACK")
        adapter = getattr(database, "_adapter", None)
        if adapter is not None and hasattr(adapter, "is_connection_closed"):
            # Peewee's PostgreSQL pool checks each connection it hands out with a `SELECT 1` of its own
            adapter.is_connection_closed = ending(adapter.is_connection_closed, "SELECT 1 (the pool's check)")
        cmd = redis.Redis.execute_command
        pipe = redis.client.Pipeline.execute

        def counted_cmd(client: Any, *args: Any, **kw: Any) -> Any:
            self.redis += 1
            return cmd(client, *args, **kw)

        def counted_pipe(p: Any, *args: Any, **kw: Any) -> Any:
            self.redis += 1
            return pipe(p, *args, **kw)

        # counting wrappers patched onto the library's classes for the profile (they call the originals)
        redis.Redis.execute_command = counted_cmd  # type: ignore[method-assign, assignment]
        redis.client.Pipeline.execute = counted_pipe  # type: ignore[method-assign, assignment]
        # scripts go straight to a pooled connection, past execute_command (store/redis/scripts.py)
        from store.redis.scripts import Script

        evalsha = Script._evalsha

        def counted_evalsha(script: Script, *args: Any) -> Any:
            self.redis += 1
            return evalsha(script, *args)

        Script._evalsha = counted_evalsha  # type: ignore[method-assign]

    def reset(self) -> tuple[int, int, int]:
        out = (self.sql + self.deferred, self.redis, self.ends - self.deferred)
        self.sql = self.redis = self.ends = self.deferred = 0
        self.statements = []
        return out


class Env:
    def __init__(self, database: str) -> None:
        from store.config import Settings
        from tests.servers import start_postgres, start_redis

        self.tmp = Path(tempfile.mkdtemp(prefix="bw-prof-"))
        self.redis_proc = start_redis(self.tmp)
        self.pg = None
        url = f"sqlite:///{self.tmp / 'beadwire.db'}"
        if database == "postgres":
            self.pg = start_postgres(self.tmp)
            url = self.pg.create_database("prof")
        settings = Settings.from_env({"BEADWIRE_DATA_DIR": str(self.tmp), "BEADWIRE_BROKER": "stub",
                                      "DATABASE_URL": url, "BEADWIRE_LOG_LEVEL": "WARNING"})
        from actors.middleware import use_store
        from store import db
        from store.redis import make_client
        from store.schema import migrate
        from web import create_app

        self.app = create_app(settings, make_client(self.redis_proc.url))
        migrate()
        use_store(self.app.extensions["beadwire"])
        self.client: Any = self.app.test_client()  # Any: its answers' `.json` are read as the dicts they are
        self.keys: dict[str, str] = {}
        self.tokens: dict[tuple[str, str], str] = {}
        self.counter = Counter()
        self.counter.install(db.database.obj)

    def server_cpu(self) -> float:
        """CPU seconds PostgreSQL's processes (postmaster and children) have used so far; 0 on SQLite."""
        if self.pg is None or self.pg.pid is None:
            return 0.0
        ticks, parents = 0, {}
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                fields = Path(f"/proc/{entry.name}/stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            parents[int(entry.name)] = (int(fields[1]), int(fields[11]) + int(fields[12]))
        for pid, (ppid, used) in parents.items():
            if self.pg.pid in (pid, ppid):
                ticks += used
        return ticks / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.redis_proc.stop()
        if self.pg:
            self.pg.stop()

    def agent(self, project: str, alias: str, client: Any = None) -> str:
        if (project, alias) in self.tokens:
            return self.tokens[project, alias]
        body = {"project": project, "repo_origin": f"git@github.com:acme/{project}.git", "alias": alias}
        key = self.keys.get(project)
        r = (client or self.client).post("/v1/init", json=body,
                                         headers={"Authorization": f"Bearer {key}"} if key else {})
        assert r.status_code in (200, 201), r.json
        if r.json.get("project_key"):
            self.keys[project] = r.json["project_key"]
        self.tokens[project, alias] = r.json["token"]
        return r.json["token"]


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def measure(env: Env, name: str, n: int, op: Callable[[int], Any], profile: str | None) -> dict[str, Any]:
    for i in range(min(20, n)):  # warm: caches, prepared statements, first heartbeat writes
        op(-1 - i)
    env.counter.reset()
    prof = cProfile.Profile(time.process_time) if profile == name else None  # CPU, not waits
    # the least CPU of three rounds: other processes on the machine inflate CPU time (shared caches, SMT)
    rounds, cpus, walls, server = 3, [], [], []
    for r in range(rounds):
        cpu0, wall0, server0 = time.process_time(), time.perf_counter(), env.server_cpu()
        if prof:
            prof.enable()
        for i in range(r * n // rounds, (r + 1) * n // rounds):
            op(i)
        if prof:
            prof.disable()
        cpus.append((time.process_time() - cpu0) * rounds)
        server.append((env.server_cpu() - server0) * rounds)
        walls.append((time.perf_counter() - wall0) * rounds)
    cpu, wall = min(cpus), min(walls)
    sql, red, ends = env.counter.reset()
    env.counter.keep = True
    op(n)  # one more, to list its statements
    env.counter.keep = False
    statements = list(env.counter.statements)
    env.counter.reset()
    if prof:
        pstats.Stats(prof).sort_stats("tottime").print_stats(35)
        pstats.Stats(prof).sort_stats("cumulative").print_stats(45)
    return {"path": name, "n": n, "cpu_ms": 1000 * cpu / n, "wall_ms": 1000 * wall / n, "sql": sql / n,
            "redis": red / n, "trips": (sql + ends) / n, "statements": statements,
            "server_ms": 1000 * min(server) / n if env.pg else float("nan")}


def claim_path(env: Env, n: int, profile: str | None) -> dict[str, Any]:
    tokens = [env.agent("bench", f"w{i:02d}") for i in range(8)]
    refs = []
    for i in range(n + 40):
        r = env.client.post("/v1/beads", json={"title": f"bead {i}"}, headers=auth(tokens[0]))
        assert r.status_code == 201, r.json
        refs.append(r.json["id"])
    it = iter(refs)

    def op(i: int) -> None:
        r = env.client.post(f"/v1/beads/{next(it)}/claim", json={}, headers=auth(tokens[i % 8]))
        assert r.status_code == 200, r.json

    return measure(env, "claim", n, op, profile)


def mail_path(env: Env, n: int, profile: str | None) -> dict[str, Any]:
    tokens = [env.agent("bench", f"w{i:02d}") for i in range(8)]

    def op(i: int) -> None:
        k = i % 8
        body = {"to": f"w{(k + 1) % 8:02d}", "subject": f"m{i}", "body": f"bench message {i} " + "x" * 100}
        r = env.client.post("/v1/mail", json=body, headers=auth(tokens[k]))
        assert r.status_code == 201, r.json

    return measure(env, "mail", n, op, profile)


def watch_path(env: Env, n: int, profile: str | None) -> dict[str, Any]:
    """One empty `GET /v1/watch` slice (timeout 0): what an idle waiter costs each time its slice ends.
    Its own project: the mail path leaves mail in the bench project's mailboxes."""
    tokens = [env.agent("watchers", f"v{i:02d}") for i in range(8)]

    def op(i: int) -> None:
        r = env.client.get("/v1/watch?timeout=0", headers=auth(tokens[i % 8]))
        assert r.status_code == 200 and r.json["items"] == [], r.json
        r.close()  # gives the waiter slot back, as a sent answer does (web/common.py `hold_waiter`)

    return measure(env, "watch", n, op, profile)


def whoami_path(env: Env, n: int, profile: str | None) -> dict[str, Any]:
    tokens = [env.agent("bench", f"w{i:02d}") for i in range(8)]

    def op(i: int) -> None:
        r = env.client.get("/v1/mine", headers=auth(tokens[i % 8]))
        assert r.status_code == 200, r.json

    return measure(env, "mine (preamble)", n, op, profile)


def status_path(env: Env, online: int, n: int, profile: str | None) -> dict[str, Any]:
    project = f"st{online}"
    tokens = [env.agent(project, f"a{i:04d}") for i in range(online)]
    for i in range(10):
        r = env.client.post("/v1/beads", json={"title": f"held {i}"}, headers=auth(tokens[i]))
        claimed = env.client.post(f"/v1/beads/{r.json['id']}/claim", json={}, headers=auth(tokens[i]))
        assert claimed.status_code == 200
    for t in tokens:
        env.client.get("/v1/mine", headers=auth(t))
    size = []

    def op(i: int) -> None:
        r = env.client.get("/v1/status", headers=auth(tokens[i % online]))
        assert r.status_code == 200, r.json
        size.append(len(r.data))

    out = measure(env, f"status{online}", n, op, profile)
    out["bytes"] = size[-1]
    return out


def chat_path(env: Env, n: int, profile: str | None) -> dict[str, Any]:
    a, b = env.agent("chat", "chat-a"), env.agent("chat", "chat-b")
    waiter_client: Any = env.app.test_client()
    lat, reply_cpu, sql, red = [], [], [], []
    prof = cProfile.Profile(time.thread_time) if profile == "chat" else None  # the reply's CPU, not waits
    env.counter.reset()
    for i in range(n + 5):
        r = env.client.post("/v1/chat", json={"to": "chat-b", "body": f"q{i}", "wait": 60}, headers=auth(a))
        assert r.status_code == 201, r.json
        after, cursor = r.json["message"]["id"], r.json["cursor"]
        box: dict[str, Any] = {}
        ready = threading.Event()

        def wait(box: dict[str, Any] = box, ready: threading.Event = ready, query: str =
                 f"with=chat-b&after={after}&cursor={cursor}&timeout=10") -> None:
            ready.set()
            box["r"] = waiter_client.get(f"/v1/chat/wait?{query}", headers=auth(a))
            box["t"] = time.perf_counter()

        t = threading.Thread(target=wait)
        t.start()
        ready.wait()
        time.sleep(0.05)
        env.counter.reset()
        c0, t0 = time.process_time(), time.perf_counter()
        if prof and i >= 5:
            prof.enable()
        rr = env.client.post("/v1/chat", json={"to": "chat-a", "body": f"r{i}"}, headers=auth(b))
        c1 = time.process_time()
        t.join()
        if prof and i >= 5:
            prof.disable()
        counted = env.counter.reset()  # the reply's statements and commands, and the woken waiter's
        answer = box["r"]
        assert rr.status_code == 201 and answer.status_code == 200 and answer.json["messages"], answer.json
        # closing the answer runs what the server does once it is sent (web/chat.py): the waiter slot is
        # given back and the reply acknowledged; unclosed, every round kept its slot until the cap (16)
        answer.close()
        if i >= 5:
            lat.append(1000 * (box["t"] - t0))
            reply_cpu.append(1000 * (c1 - c0))
            sql.append(counted[0])
            red.append(counted[1])
    if prof:
        pstats.Stats(prof).sort_stats("tottime").print_stats(35)
    lat.sort()
    print(f"chat: reply -> waiter's answer, n={len(lat)}: median {statistics.median(lat):.2f} ms, "
          f"p90 {lat[int(0.9 * len(lat))]:.2f} ms, p99 {lat[min(len(lat) - 1, int(0.99 * len(lat)))]:.2f} ms")
    return {"path": "chat reply", "n": n, "cpu_ms": statistics.median(reply_cpu),
            "wall_ms": statistics.median(lat), "sql": statistics.mean(sql), "redis": statistics.mean(red),
            "statements": []}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--profile", help="cProfile this path (claim, mail, status50, status1000, chat, ...)")
    ap.add_argument("--only", help="comma-separated paths to run")
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--statements", action="store_true", help="print each path's SQL statements")
    a = ap.parse_args()
    env = Env(a.database)
    paths = {
        "mine": lambda: whoami_path(env, a.n, a.profile),
        "claim": lambda: claim_path(env, a.n, a.profile),
        "mail": lambda: mail_path(env, a.n, a.profile),
        "status50": lambda: status_path(env, 50, a.n, a.profile),
        "status1000": lambda: status_path(env, 1000, max(a.n // 10, 20), a.profile),
        "chat": lambda: chat_path(env, a.n, a.profile),
        "watch": lambda: watch_path(env, a.n, a.profile),
    }
    chosen = a.only.split(",") if a.only else list(paths)
    rows = []
    try:
        for name in chosen:
            rows.append(paths[name]())
    finally:
        env.stop()
    print(f"\n{'path':<18}{'n':>6}{'CPU ms/req':>12}{'wall ms/req':>13}{'SQL/req':>9}{'DB trips':>10}"
          f"{'redis/req':>11}{'PG CPU ms/req':>15}")
    for r in rows:
        extra = f"  ({r['bytes']} B)" if "bytes" in r else ""
        print(f"{r['path']:<18}{r['n']:>6}{r['cpu_ms']:>12.2f}{r['wall_ms']:>13.2f}{r['sql']:>9.1f}"
              f"{r.get('trips', float('nan')):>10.1f}{r['redis']:>11.1f}"
              f"{r.get('server_ms', float('nan')):>15.2f}{extra}")
    if a.statements:
        for r in rows:
            print(f"\n-- {r['path']}:")
            for s in r["statements"]:
                print("  ", s[:200])


if __name__ == "__main__":
    main()
