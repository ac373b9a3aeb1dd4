"""The bench's bookkeeping, without running a benchmark: RESULTS.md keeps one section per database, a
PostgreSQL run's targets line (peer ratios, the share of the bare endpoint on PostgreSQL, the process
layouts), the report's rows for them, and the load loop spreading its threads over several web processes.
"""

from __future__ import annotations

import http.server
import os
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from bench.load import run_load
from bench.paths import ROOT
from bench.report import problems, report
from bench.run import KEPT_FROM, PG_FROM, splice_results
from bench.targets import targets

TOOLS = f"{KEPT_FROM} `python3 -m bench --results` rewrites what is above -->\n\n# The other tools\n"


def _run(ops: float) -> dict[str, Any]:
    return {"n": 100, "n_ok": 100, "statuses": {"200": 100}, "ops_s": ops, "median_ms": 1.0, "p99_ms": 2.0}


def fake_ours(database: str) -> dict[str, Any]:
    """The figures `bench_ours` (plus the ceiling and, on PostgreSQL, the layouts) would return."""
    rss = {"server": 200.0, "web": 150.0, "worker": 50.0, "clock": 40.0, "redis": 8.0, "total": 298.0,
           "procs": {"web": 3, "worker": 2}}
    ours: dict[str, Any] = {
        "database": database,
        **{key: _run(ops) for key, ops in (("claim_c1", 100.0), ("claim_c8", 300.0), ("status50_c1", 400.0),
                                           ("status50_c8", 600.0), ("status_big_c1", 60.0),
                                           ("mail_c1", 200.0), ("mail_c8", 500.0))},
        "race": {"agents": 20, "rounds": [{"bead": "b", "winners_200": 1, "other": {}}],
                 "rounds_exactly_one_200": 1, "rounds_clean": 1, "rounds_one_holder": 1},
        "rss_start_mib": rss, "rss_end_mib": rss,
        "ceiling": {"database": database, "mail_c1": _run(400.0), "mail_c8": _run(1000.0)},
    }
    if database == "postgres":
        ours["layouts"] = {
            "1w1k": {"webs": 1, "workers": 1, "claim_c8": _run(300.0), "mail_c8": _run(500.0)},
            "2w2k": {"webs": 2, "workers": 2, "claim_c8": _run(450.0), "mail_c8": _run(500.0)},
        }
    return ours


def fake_peer() -> dict[str, Any]:
    """The peer harness's figures: mail c=1 and claims c=8 at a third of ours or less, mail c=8 above."""
    return {"source": "measured", "harness": {
        "a_mail": {"c1": {"throughput_rps": 50.0}, "c8": {"throughput_rps": 200.0}},
        "b_claim": {"c1": {"throughput_rps": 40.0}, "c8": {"throughput_rps": 100.0}},
    }}


def test_each_database_rewrites_only_its_own_section_of_results() -> None:
    first = splice_results("# old results\n\n" + TOOLS, "# results\nsqlite one\n", "sqlite")
    both = splice_results(first, "## PostgreSQL run\npg one\n", "postgres")
    again = splice_results(both, "# results\nsqlite two\n", "sqlite")
    final = splice_results(again, "## PostgreSQL run\npg two\n", "postgres")
    assert "old results" not in first and "sqlite one" in first and first.endswith(TOOLS)
    assert "sqlite one" in both and "pg one" in both and both.endswith(TOOLS)
    assert "sqlite one" not in again and "sqlite two" in again and "pg one" in again
    assert "pg one" not in final and "pg two" in final and "sqlite two" in final and final.endswith(TOOLS)
    # the SQLite section first, then the PostgreSQL one, then the other tools
    assert final.index("sqlite two") < final.index(PG_FROM) < final.index("pg two") < final.index(KEPT_FROM)
    assert final.count(PG_FROM) == 1 and final.count(KEPT_FROM) == 1


def test_a_postgres_run_into_a_fresh_file_keeps_a_later_sqlite_run() -> None:
    pg_only = splice_results("", "## PostgreSQL run\npg\n", "postgres")
    assert pg_only.startswith(PG_FROM)
    both = splice_results(pg_only, "# beadwire benchmark results\nsqlite\n", "sqlite")
    assert both.index("sqlite") < both.index(PG_FROM) < both.index("\npg\n")


def test_postgres_targets_are_peer_ratios_shares_and_layouts() -> None:
    goals = {name: (measured, met) for name, measured, met in targets(fake_ours("postgres"), fake_peer())}
    peer = {name: v for name, v in goals.items() if "the peer's throughput" in name}
    assert len(peer) == 3
    mail_c1 = peer["PostgreSQL, mail send c=1: ≥ 3× the peer's throughput"]
    assert mail_c1 == ("200.0 ops/s vs 50.0: 4.00×", True)
    assert peer["PostgreSQL, mail send c=8: ≥ 3× the peer's throughput"][1] is False  # 2.5×
    assert peer["PostgreSQL, claims on distinct beads c=8: ≥ 3× the peer's throughput"][1] is True
    share = goals["PostgreSQL, mail send c=8: share of the bare endpoint on PostgreSQL (report only)"]
    assert share == ("500.0 ops/s = 50% of the bare endpoint's 1000.0 ops/s", None)
    layout = goals["PostgreSQL, 2 web + 2 worker processes, claims on distinct beads c=8 (report only)"]
    assert layout == ("450.0 ops/s vs 300.0 ops/s with 1 web + 1 worker: 1.50×", None)
    # the SQLite run's targets are not judged on PostgreSQL figures
    assert not any("≥ 85%" in name or "memory" in name for name in goals)


def test_a_sqlite_ceiling_is_no_share_of_the_postgres_endpoint() -> None:
    ours = fake_ours("postgres")
    ours["ceiling"]["database"] = "sqlite"
    goals = {name: (measured, met) for name, measured, met in targets(ours, fake_peer())}
    share = goals["PostgreSQL, mail send c=8: share of the bare endpoint on PostgreSQL (report only)"]
    assert share == ("500.0 ops/s, bare endpoint on PostgreSQL – ops/s", None)


def test_sqlite_targets_unchanged_by_the_postgres_rows() -> None:
    names = [name for name, _, _ in targets(fake_ours("sqlite"), fake_peer())]
    assert "mail send c=1: ≥ 85% of the bare endpoint" in names
    assert not any(name.startswith("PostgreSQL") for name in names)


def test_report_shows_the_postgres_ceiling_and_the_layouts() -> None:
    text = report(fake_ours("postgres"), fake_peer())
    assert "1 PostgreSQL txn (psycopg2) + 1 XADD" in text and "1 SQLite txn" not in text
    assert "| 2 web + 2 worker | 450.0 (1.50× 1 + 1) |" in text
    assert "| 1 web + 1 worker | 300.0 |" in text
    assert "1 SQLite txn" in report(fake_ours("sqlite"), fake_peer())


def with_gevent_ceiling(ours: dict[str, Any]) -> dict[str, Any]:
    """`ours` plus the bare (and on SQLite the minimal) endpoint served by `wire serve`'s gevent worker."""
    ours["ceiling"].update(gevent_mail_c1=_run(250.0), gevent_mail_c8=_run(800.0))
    if ours["database"] == "sqlite":
        ours["ceiling"].update(min_mail_c8=_run(700.0), gevent_min_mail_c8=_run(600.0))
    return ours


def test_targets_add_the_share_of_the_gevent_served_endpoint_report_only() -> None:
    ours = with_gevent_ceiling(fake_ours("sqlite"))
    goals = {name: (measured, met) for name, measured, met in targets(ours, fake_peer())}
    # the target is still judged against the gthread bare endpoint: 200 / 400 = 50% < 85%
    assert goals["mail send c=1: ≥ 85% of the bare endpoint"] == (
        "200.0 ops/s = 50% of the bare endpoint's 400.0 ops/s "
        "(80% of the same endpoint under `wire serve`'s gevent worker: 250.0 ops/s)", False)
    claims = goals["claims on distinct beads c=8: ≥ 70% of the bare endpoint"]
    assert claims == ("300.0 ops/s = 30% of the bare endpoint's 1000.0 ops/s "
                      "(38% of the same endpoint under `wire serve`'s gevent worker: 800.0 ops/s)", False)
    pg_ours = with_gevent_ceiling(fake_ours("postgres"))
    pg = {name: measured for name, measured, _ in targets(pg_ours, fake_peer())}
    assert pg["PostgreSQL, mail send c=8: share of the bare endpoint on PostgreSQL (report only)"] == (
        "500.0 ops/s = 50% of the bare endpoint's 1000.0 ops/s "
        "(62% of the same endpoint under `wire serve`'s gevent worker: 800.0 ops/s)")


def test_targets_without_the_gevent_variant_say_nothing_of_it() -> None:
    for database in ("sqlite", "postgres"):
        measured = [m for _, m, _ in targets(fake_ours(database), fake_peer())]
        assert not any("gevent" in m for m in measured)
    goals = {name: measured for name, measured, _ in targets(fake_ours("sqlite"), fake_peer())}
    mail_c8 = goals["mail send c=8: ≥ 85% of the bare endpoint"]
    assert mail_c8 == "500.0 ops/s = 50% of the bare endpoint's 1000.0 ops/s"


def test_report_rows_for_the_gevent_served_endpoint_beside_the_gthread_ones() -> None:
    lines = report(with_gevent_ceiling(fake_ours("sqlite")), fake_peer()).splitlines()
    bare = "| ceiling: bare Flask `POST /mail`, 1 SQLite txn + 1 XADD, no auth (bench/ceiling_app.py)"
    served = [line for line in lines if line.startswith(bare + " (gevent worker, as `wire serve`) |")]
    assert [line.split(" | ")[1:4] for line in served] == [["1", "100", "250.0 ops/s"],
                                                           ["8", "100", "800.0 ops/s"]]
    gthread = [line for line in lines if line.startswith(bare + " |")]
    assert [line.split(" | ")[1:4] for line in gthread] == [["1", "100", "400.0 ops/s"],
                                                            ["8", "100", "1000.0 ops/s"]]
    minimal = [line for line in lines if line.startswith("| ceiling: minimal mail") and "gevent" in line]
    assert len(minimal) == 1 and minimal[0].split(" | ")[1:4] == ["8", "100", "600.0 ops/s"]
    # the gthread rows first, then the gevent ones
    assert lines.index(gthread[-1]) < lines.index(served[0])
    pg = report(with_gevent_ceiling(fake_ours("postgres")), fake_peer())
    assert "+ 1 XADD, no auth (bench/ceiling_app.py) (gevent worker, as `wire serve`) |" in pg
    assert "gevent worker" not in report(fake_ours("sqlite"), fake_peer())


#: Imports bench/ceiling_app.py (under gevent's patches if argv[1] says so) and prints how it commits.
_CEILING_PROBE = """
import sys
if sys.argv[1] == "gevent":
    from gevent import monkey
    monkey.patch_all()
from bench import ceiling_app
with ceiling_app._connection() as conn:
    print(ceiling_app._writer is not None and ceiling_app._writer.group is not None,
          conn.execute("PRAGMA synchronous").fetchone()[0])
"""


@pytest.mark.parametrize(("worker", "expected"), [("gevent", "True 1"), ("gthread", "False 2")])
def test_the_ceiling_app_commits_as_the_store_under_gevent(tmp_path: Any, worker: str, expected: str) -> None:
    """Under gevent the bare endpoint groups its fsyncs like the store (synchronous=NORMAL plus the
    store's group commit, whose fsync runs in gevent's thread pool); under gthread it keeps FULL."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CEILING_DB": str(tmp_path / "c.db")}
    env.pop("CEILING_PG", None)
    done = subprocess.run([sys.executable, "-c", _CEILING_PROBE, worker], env=env, capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == expected.split()


def test_problems_name_a_failing_layout() -> None:
    ours = fake_ours("postgres")
    ours["layouts"]["2w2k"]["mail_c8"]["statuses"] = {"201": 90, "503": 10}
    assert any(p.startswith("layout 2w2k mail_c8: non-2xx {'503': 10}") for p in problems(ours))
    assert not problems(fake_ours("postgres"))


@pytest.fixture
def two_servers() -> Iterator[tuple[list[int], Counter[int]]]:
    hits: Counter[int] = Counter()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            hits[self.connection.getsockname()[1]] += 1
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    servers = [http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler) for _ in range(2)]
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in servers]
    for t in threads:
        t.start()
    yield [s.server_address[1] for s in servers], hits
    for s in servers:
        s.shutdown()
        s.server_close()


def test_load_threads_spread_over_the_web_processes(two_servers: tuple[list[int], Counter[int]]) -> None:
    ports, hits = two_servers
    seen: list[tuple[int, int]] = []

    def op(conn: Any, tid: int, i: int) -> int:
        seen.append((tid, conn.port))
        return conn.call("GET", "/x")[0]

    result = run_load(ports, 20, 4, 60.0, op)
    assert result["n_ok"] == 20
    assert all(port == ports[tid % 2] for tid, port in seen)
    assert set(hits) == set(ports)  # both got the warm-up call and load
