"""Two-way beads sync as agents live it: real git repos (a bare origin, clones, a linked worktree), the
real `wire` CLI in subprocesses, a real `wire serve` stack (SQLite; the races on PostgreSQL too)."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.test_cli_e2e import Wire, git

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
BEADS = Path(".beads") / "issues.jsonl"
_projects = itertools.count(1)


def seed(n: int = 30) -> list[dict]:
    return [{"id": f"bd-{i}", "title": f"Bead {i}", "status": "open", "priority": 2, "issue_type": "task",
             "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z"}
            for i in range(1, n + 1)]


def jsonl(records: list[dict]) -> str:
    return "".join(json.dumps(r) + "\n" for r in records)


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    from tests.servers import start_stack

    server = start_stack(tmp_path_factory.mktemp("sync-stack"), workers=1)
    yield server
    server.stop()


def make_team(stack_url: str, tmp: Path, names: tuple[str, ...] = ("alice", "bob")) -> list[Wire]:
    """A bare origin holding the seed beads file; `alice` and `bob` clones, `alice2` a linked worktree of
    alice's clone; each registered with `wire init` in one new project."""
    origin, first = tmp / "origin.git", tmp / "seed"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(origin)], check=True)
    subprocess.run(["git", "clone", "-q", str(origin), str(first)], check=True, capture_output=True)
    (first / BEADS).parent.mkdir()
    (first / BEADS).write_text(jsonl(seed()))
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@x", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@x", "WIRE_URL": stack_url,
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    for var in ("WIRE_JSON", "WIRE_PROJECT_KEY"):
        env.pop(var, None)
    subprocess.run(["git", "add", "."], cwd=first, check=True, env=env)
    subprocess.run(["git", "commit", "-qm", "beads"], cwd=first, check=True, env=env)
    subprocess.run(["git", "push", "-q", "origin", "main"], cwd=first, check=True, env=env,
                   capture_output=True)
    project, key, wires = f"sync{next(_projects)}", None, []
    for name in names:
        where = tmp / name
        if name == "alice2":
            subprocess.run(["git", "worktree", "add", "-q", "-b", "wire/alice2", str(where)],
                           cwd=tmp / "alice", check=True, capture_output=True)
        else:
            subprocess.run(["git", "clone", "-q", str(origin), str(where)], check=True, capture_output=True)
        wire = Wire(where, {**env, "WIRE_CONFIG_DIR": str(tmp / f"cfg-{name}"),
                            "HOME": str(tmp / f"home-{name}")})
        answer = wire.json("init", "--project", project, "--alias", name, *(["--key", key] if key else []))
        key = key or answer["project_key"]
        wires.append(wire)
    return wires


@pytest.fixture
def team(stack, tmp_path):
    return lambda *names: make_team(stack.url, tmp_path, names or ("alice", "bob"))


def in_file(wire: Wire) -> dict[str, dict]:
    path = wire.cwd / BEADS
    return {r["id"]: r for r in map(json.loads, path.read_text().splitlines())} if path.exists() else {}


def on_server(wire: Wire) -> dict[str, dict]:
    return {b["id"]: b for b in wire.json("list", "--all", "--limit", "10000")}


def same_as_server(wire: Wire) -> None:
    """The worktree's file holds every live bead of the server (and the tombstones it knew), as the server
    has them."""
    keys = ("title", "status", "priority", "updated_at", "closed_at", "notes")
    server, mine = on_server(wire), in_file(wire)
    assert {i for i, b in server.items() if b["status"] != "tombstone"} <= set(mine) <= set(server)
    assert {i: [r.get(k) for k in keys] for i, r in mine.items()} == \
           {i: [server[i].get(k) for k in keys] for i in mine}


def edit(wire: Wire, change: dict[str, dict | None]) -> None:
    """Edit the worktree's beads file by hand: id -> new fields (None deletes the line)."""
    records = [r if r["id"] not in change else ({**r, **change[r["id"]]} if change[r["id"]] else None)
               for r in in_file(wire).values()]
    (wire.cwd / BEADS).write_text(jsonl([r for r in records if r]))


# -- the scenarios ----------------------------------------------------------------------------------

def test_create_then_sync_keeps_the_bead_and_a_close_changes_exactly_its_line(team):
    (alice,) = team("alice")
    assert alice.json("sync")["created"] == 30
    made = alice.json("create", "Fix the cart total")["id"]
    assert in_file(alice)[made]["title"] == "Fix the cart total"  # written through, not only on the server
    answer = alice.json("sync")
    assert (answer["tombstoned"], answer["created"], answer["conflicts"]) == (0, 0, [])
    assert on_server(alice)[made]["status"] == "open"
    # the team's git identity (make_team's env): a machine without a global one commits all the same
    subprocess.run(["git", "commit", "-qam", "sync"], cwd=alice.cwd, env=alice.env, check=True,
                   capture_output=True)
    alice("close", "bd-3", "--reason", "done")
    diff = git(alice.cwd, "diff", "--unified=0", "--", str(BEADS)).splitlines()
    changed = [line for line in diff if line[:1] in "+-" and not line.startswith(("+++", "---"))]
    assert [(line[0], json.loads(line[1:])["id"]) for line in changed] == [("-", "bd-3"), ("+", "bd-3")]
    assert (json.loads(changed[1][1:])["status"] == "closed"
            and json.loads(changed[1][1:])["close_reason"] == "done")
    # the beads file is nobody's work in progress: never reserved, and the worktree counts as clean
    assert alice.json("locks", "--mine") == []


def test_a_stale_worktree_catches_up_and_deletes_only_what_it_deleted(team):
    alice, bob = team()
    alice.json("sync")
    bob.json("sync")
    alice.json("claim", "bd-2")
    alice.json("close", "bd-3")
    made = alice.json("create", "Made while bob was away")["id"]
    edit(bob, {"bd-5": None})
    answer = bob.json("sync")
    assert (answer["tombstoned"], answer["changes"]["tombstoned"], answer["conflicts"]) == (1, ["bd-5"], [])
    mine = in_file(bob)
    assert (mine[made]["title"], mine["bd-2"]["status"], mine["bd-3"]["status"]) == \
           ("Made while bob was away", "in_progress", "closed")
    statuses = {i: b["status"] for i, b in on_server(bob).items()}
    assert statuses["bd-5"] == "tombstone" and list(statuses.values()).count("tombstone") == 1
    assert on_server(bob)["bd-2"]["claim"]["alias"] == "alice"  # bob's stale line did not release it
    same_as_server(bob)


def test_an_empty_file_deletes_nothing_and_gets_every_bead_back(team):
    (alice,) = team("alice")
    alice.json("sync")
    (alice.cwd / BEADS).write_text("")
    answer = alice.json("sync")
    assert (answer["tombstoned"], answer["pulled"]) == (0, 30)
    assert len(in_file(alice)) == 30 and len(alice.json("ready", "--limit", "100")) == 30


def test_a_foreign_file_cannot_close_a_bead_someone_else_holds(team):
    alice, bob = team()
    alice.json("sync")
    bob.json("sync")
    bob.json("claim", "bd-1")
    later = "2999-01-01T00:00:00Z"  # the file's close is the later edit: only the claim rule stops it
    edit(alice, {"bd-1": {"status": "closed", "closed_at": later, "updated_at": later}})
    proc = alice("sync")
    assert "1 conflicts:" in proc.stdout
    assert "bd-1: bd-1 is held by bob: the status closed was not applied" in proc.stdout
    assert on_server(alice)["bd-1"]["claim"]["alias"] == "bob"
    assert in_file(alice)["bd-1"]["status"] == "in_progress"


def test_both_sides_editing_one_bead_keep_both_fields_and_the_later_title(team):
    alice, bob = team()
    alice.json("sync")
    bob.json("sync")
    bob.json("update", "bd-4", "-p", "0")
    edit(alice, {"bd-4": {"notes": "from the file", "updated_at": "2026-02-01T00:00:00Z"}})
    assert alice.json("sync")["conflicts"] == []
    bead = on_server(bob)["bd-4"]
    assert ((bead["priority"], bead["notes"]) == (0, "from the file")
            and in_file(alice)["bd-4"]["priority"] == 0)
    bob.json("update", "bd-4", "--title", "Title from bob")
    edit(alice, {"bd-4": {"title": "Title from a hand edit"}})  # updated_at left as it was: bob's is later
    proc = alice("sync")
    assert "bd-4: title changed on both sides: the later edit wins" in proc.stdout
    assert "kept the server's Title from bob; lost Title from a hand edit" in proc.stdout
    assert on_server(alice)["bd-4"]["title"] == in_file(alice)["bd-4"]["title"] == "Title from bob"


def test_mass_deletion_needs_allow_delete_and_undo_puts_it_back(team):
    (alice,) = team("alice")
    alice.json("sync")
    before = (alice.cwd / BEADS).read_text()
    edit(alice, {f"bd-{i}": None for i in range(6, 31)})
    refused = alice("sync", code=3)
    assert "nothing was changed" in refused.stderr and "25 would tombstone:" in refused.stderr
    assert "  and 15 more (--json for all)" in refused.stderr
    assert all(b["status"] == "open" for b in on_server(alice).values())
    done = alice("sync", "--allow-delete")
    assert "25 tombstoned:" in done.stdout and "and 15 more (--json for all)" in done.stdout
    assert "a mass change" in done.stdout
    (run,) = [h for h in alice.json("sync", "--history") if h["counts"].get("tombstoned") == 25]
    undone = alice.json("sync", "--undo", str(run["sync"]))
    assert undone["restored"] == 25 and undone["conflicts"] == []
    assert all(b["status"] == "open" for b in on_server(alice).values())
    assert sorted(in_file(alice)) == sorted(json.loads(line)["id"] for line in before.splitlines())
    assert "undo of #" in alice("sync", "--history").stdout
    assert alice.json("sync")["tombstoned"] == 0  # the restored lines are the base now: nothing to redo


def test_a_dry_run_prints_the_plan_both_ways_and_changes_nothing(team):
    alice, bob = team()
    alice.json("sync")
    made = bob.json("create", "Only on the server")["id"]
    edit(alice, {"bd-1": {"title": "Edited", "updated_at": "2026-02-01T00:00:00Z"}, "bd-2": None})
    files = [(alice.cwd / BEADS).read_bytes(), (alice.cwd / ".wire" / "beads.base.jsonl").read_bytes()]
    server, history = on_server(alice), alice.json("sync", "--history")
    proc = alice("sync", "--dry-run")
    assert proc.stdout.startswith("dry run, nothing changed")
    for line in ("1 to update on the server:", "  bd-1", "1 to tombstone on the server:", "  bd-2",
                 "1 to write into the file:", f"  {made}"):
        assert line in proc.stdout.splitlines()
    assert files == [(alice.cwd / BEADS).read_bytes(),
                     (alice.cwd / ".wire" / "beads.base.jsonl").read_bytes()]
    assert (on_server(alice), alice.json("sync", "--history")) == (server, history)


def test_a_git_merge_of_the_beads_file_merges_bead_by_bead_through_the_driver(team):
    (alice,) = team("alice")
    env = alice.env
    alice.json("guard", "install")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["git", *args], cwd=alice.cwd, env=env, check=True, capture_output=True,
                              text=True)

    run("checkout", "-qb", "feature")
    edit(alice, {"bd-1": {"title": "Feature title", "updated_at": "2026-03-01T00:00:00Z"},
                 "bd-2": {"status": "closed", "updated_at": "2026-03-01T00:00:00Z"}})
    run("commit", "-qam", "feature edits")
    run("checkout", "-q", "main")
    edit(alice, {"bd-1": {"priority": 0, "updated_at": "2026-03-02T00:00:00Z"}, "bd-30": None})
    (alice.cwd / BEADS).write_text((alice.cwd / BEADS).read_text() + json.dumps(seed(31)[-1]) + "\n")
    run("commit", "-qam", "main edits")
    run("merge", "-q", "--no-edit", "feature")  # check=True: no conflict
    text = (alice.cwd / BEADS).read_text()
    assert "<<<<<<<" not in text
    merged = in_file(alice)
    assert (merged["bd-1"]["title"], merged["bd-1"]["priority"]) == ("Feature title", 0)
    assert merged["bd-2"]["status"] == "closed"
    assert "bd-30" not in merged and "bd-31" in merged and len(merged) == 30


def test_a_wire_killed_mid_write_through_leaves_the_old_file_or_the_new_never_half(team, tmp_path):
    (alice,) = team("alice")
    alice.json("sync")
    old = (alice.cwd / BEADS).read_text()
    for stop_at, expect_new in (("write", False), ("rename", True)):
        marker = tmp_path / f"at-{stop_at}"
        # tests/killpoint.py stops the process at that point of the atomic write and says so in `marker`
        code = "import tests.killpoint; from cli import main; main()"
        bead = "bd-1" if stop_at == "write" else "bd-2"
        env = {**alice.env, "KILLPOINT": stop_at, "KILLPOINT_MARKER": str(marker)}
        proc = subprocess.Popen([sys.executable, "-c", code, "close", bead], cwd=alice.cwd, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert marker.exists(), "the write-through never reached its kill point"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        now = in_file(alice)  # parses whole: never a torn line
        assert len(now) == 30
        if expect_new:  # renamed into place: the new file, whole
            assert now["bd-2"]["status"] == "closed"
        else:  # killed while the temp file was half written: the old file, byte for byte
            assert (alice.cwd / BEADS).read_text() == old
    alice.json("sync")  # the next sync settles what the killed ones left (the server closed both)
    assert {in_file(alice)["bd-1"]["status"], in_file(alice)["bd-2"]["status"]} == {"closed"}
    assert not list((alice.cwd / BEADS).parent.glob(".*.tmp"))
    same_as_server(alice)


# -- concurrency, on SQLite and PostgreSQL ------------------------------------------------------------

@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.pg)])
def any_stack(request, tmp_path_factory):
    if request.param == "sqlite":
        yield request.getfixturevalue("stack")
        return
    from tests.servers import start_stack

    pg = request.getfixturevalue("pg_server")
    server = start_stack(tmp_path_factory.mktemp("sync-pg"),
                         database_url=pg.create_database(f"sync{os.getpid()}"), workers=1)
    yield server
    server.stop()


def start(wire: Wire, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "from cli import main; main()", "--json", *args],
                            cwd=wire.cwd, env=wire.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def test_worktrees_syncing_at_once_and_racing_claims_lose_and_double_nothing(any_stack, tmp_path):
    alice, alice2, bob, carol = make_team(any_stack.url, tmp_path, ("alice", "alice2", "bob", "carol"))
    for wire in (alice, alice2, bob, carol):
        wire.json("sync")
    edit(alice, {"bd-1": {"title": "alice's", "updated_at": "2026-02-01T00:00:00Z"}})
    edit(alice2, {"bd-2": {"title": "alice2's", "updated_at": "2026-02-01T00:00:00Z"}})
    # bob's file closes bd-11..bd-20 while carol claims them, all at the same moment
    stamp = "2026-02-01T00:00:00Z"
    edit(bob, {f"bd-{i}": {"status": "closed", "closed_at": stamp, "updated_at": stamp}
               for i in range(11, 21)})
    racing = [start(alice, "sync"), start(alice2, "sync"), start(bob, "sync")]
    racing += [start(carol, "claim", f"bd-{i}") for i in range(11, 21)]
    outcomes = [(p.wait(timeout=120), p.communicate()) for p in racing]
    assert all(code == 0 for code, _ in outcomes[:3]), outcomes[:3]
    claimed = {f"bd-{i}" for i, (code, _) in zip(range(11, 21), outcomes[3:], strict=True) if code == 0}
    assert all(code in (0, 3) for code, _ in outcomes[3:])
    server = on_server(alice)
    assert (server["bd-1"]["title"], server["bd-2"]["title"]) == ("alice's", "alice2's")
    for i in range(11, 21):
        bead = server[f"bd-{i}"]
        if f"bd-{i}" in claimed:  # carol won: her claim stands, the close was refused
            assert bead["status"] == "in_progress" and bead["claim"]["alias"] == "carol"
        else:  # the close came first: no claim on a closed bead
            assert bead["status"] == "closed" and bead["claim"] is None
    assert sorted(b["id"] for b in carol.json("mine")) == sorted(claimed)
    for wire in (alice, alice2, bob):
        wire.json("sync")
    for wire in (alice, alice2, bob):
        same_as_server(wire)
