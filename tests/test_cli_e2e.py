"""The `wire` CLI as an agent runs it: real git worktrees, a real `wire serve` stack, subprocesses."""

from __future__ import annotations

import itertools
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import beads_file

pytestmark = pytest.mark.slow
_slugs = itertools.count(1)


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    from tests.servers import start_stack

    server = start_stack(tmp_path_factory.mktemp("cli-stack"), workers=2)
    yield server
    server.stop()


class Wire:
    """Runs `wire` in one worktree with its own config dir (as one agent on one machine)."""

    def __init__(self, cwd: Path, env: dict[str, str]) -> None:
        self.cwd, self.env = cwd, env

    def __call__(self, *args: str, code: int | None = 0,
                 stdin: str | None = None) -> subprocess.CompletedProcess:
        proc = subprocess.run([sys.executable, "-c", "from cli import main; main()", *args], cwd=self.cwd,
                              env=self.env, capture_output=True, text=True, timeout=60, input=stdin)
        if code is not None:
            assert proc.returncode == code, (args, proc.returncode, proc.stdout, proc.stderr)
        return proc

    def json(self, *args: str, code: int | None = 0):
        out = self("--json", *args, code=code).stdout
        return json.loads(out)


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


def make_repo(root: Path, name: str, origin: str) -> Path:
    repo = root / name
    repo.mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "remote", "add", "origin", origin)
    return repo


@pytest.fixture
def agents(stack, tmp_path):
    """agents(n, project=...) -> list of Wire, each in its own clone of one origin, the first initialised
    with `wire init` (creating the project) and the others joining with the key it printed."""

    def make(n: int = 2, origin: str = "git@github.com:acme/shop.git", project: str | None = None,
             name: str = "clone") -> list[Wire]:
        project = project or f"cli{next(_slugs)}"
        wires, key = [], None
        for i in range(n):
            repo = make_repo(tmp_path, f"{name}{i}", origin)
            env = {**os.environ, "WIRE_URL": stack.url, "WIRE_CONFIG_DIR": str(tmp_path / f"cfg{i}"),
                   "HOME": str(tmp_path / f"home{i}")}
            env.pop("WIRE_JSON", None)
            env.pop("WIRE_PROJECT_KEY", None)
            wire = Wire(repo, env)
            args = ["init", "--project", project, "--alias", f"{name}-agent{i}", "--human", f"Human {i}"]
            if key:
                args += ["--key", key]
            result = wire.json(*args)
            key = key or result["project_key"]
            wires.append(wire)
        return wires

    return make


def test_init_registers_the_worktree_and_keeps_the_token_out_of_git(agents):
    (alice,) = agents(1)
    state = alice.cwd / ".wire" / "workspace.json"
    assert stat.S_IMODE(state.stat().st_mode) == 0o600
    assert ".wire/" in (alice.cwd / ".git" / "info" / "exclude").read_text()
    assert git(alice.cwd, "status", "--porcelain") == ""
    me = alice.json("whoami")
    assert me["alias"] == "clone-agent0" and me["repo"] == "github.com/acme/shop"


def test_the_project_key_is_returned_once_and_saved_privately(stack, tmp_path):
    repo = make_repo(tmp_path, "solo", "https://github.com/acme/solo")
    env = {**os.environ, "WIRE_URL": stack.url, "WIRE_CONFIG_DIR": str(tmp_path / "cfg")}
    first = Wire(repo, env).json("init", "--project", "solo-proj")
    assert first["project_key"].startswith("bw_pk_")
    keys = tmp_path / "cfg" / "keys.json"
    assert stat.S_IMODE(keys.stat().st_mode) == 0o600
    assert first["project_key"] in keys.read_text()
    again = Wire(repo, env).json("init", "--project", "solo-proj")
    assert "project_key" not in again or not again["project_key"]
    assert again["workspace"]["id"] == first["workspace"]["id"]


def test_joining_an_existing_project_without_its_key_is_refused(agents, stack, tmp_path):
    agents(1, project="guarded")
    repo = make_repo(tmp_path, "intruder", "git@github.com:acme/shop.git")
    env = {**os.environ, "WIRE_URL": stack.url, "WIRE_CONFIG_DIR": str(tmp_path / "intruder-cfg")}
    proc = Wire(repo, env)("init", "--project", "guarded", "--alias", "clone-agent0", code=None)
    assert proc.returncode == 1
    assert "project key" in proc.stderr


def test_init_outside_a_git_repo_or_without_origin_says_so(stack, tmp_path):
    env = {**os.environ, "WIRE_URL": stack.url, "WIRE_CONFIG_DIR": str(tmp_path / "cfg")}
    plain = tmp_path / "plain"
    plain.mkdir()
    assert "git" in Wire(plain, env)("init", "--project", "x", code=1).stderr.lower()
    bare = tmp_path / "noorigin"
    bare.mkdir()
    git(bare, "init", "-q")
    assert "origin" in Wire(bare, env)("init", "--project", "x", code=1).stderr


def test_a_claim_race_between_two_clones_is_refused_with_the_holders_name(agents):
    alice, bob = agents(2)
    bead = alice.json("create", "Fix login", "-p", "P1")["id"]
    alice("claim", bead)
    proc = bob("claim", bead, code=3)
    assert f"{bead} is being worked on by clone-agent0 (Human 0)" in proc.stderr + proc.stdout
    assert "--jump-in" in proc.stderr + proc.stdout
    err = bob.json("claim", bead, code=3)
    assert err["error"]["code"] == "claim_conflict"
    taken = bob.json("claim", bead, "--jump-in", "alice is on leave")
    assert taken["previous"]["alias"] == "clone-agent0"
    assert [b["id"] for b in bob.json("mine")] == [bead]


def test_the_agent_loop_from_the_command_line(agents):
    alice, bob = agents(2)
    first = alice.json("create", "Schema", "-p", "high", "-t", "feature", "-l", "db")["id"]
    second = alice.json("create", "API", "--blocked-by", first)["id"]
    assert [b["id"] for b in bob.json("ready")] == [first]
    explained = bob.json("ready", "--explain", second)
    assert explained["ready"] is False and any(first in r for r in explained["reasons"])
    bob("update", first, "--status", "in_progress")
    bob("comment", first, "migrations drafted")
    closed = bob.json("close", first, "--reason", "done")
    assert [b["id"] for b in closed["unblocked"]] == [second]
    assert bob.json("show", first)["comments"][0]["text"] == "migrations drafted"
    assert [b["id"] for b in alice.json("search", "Schema")] == [first]
    assert [b["id"] for b in alice.json("list", "--label", "db", "--all")] == [first]
    assert alice.json("deps", second)["resolved_blockers"][0]["id"] == first


def test_status_shows_the_team_with_claims_and_their_epic(agents):
    alice, bob = agents(2)
    epic = alice.json("create", "Checkout epic", "-t", "epic")["id"]
    task = alice.json("create", "Card form", "--parent", epic)["id"]
    assert task == f"{epic}.1"
    bob("claim", task)
    status = alice.json("status")
    assert status["me"]["alias"] == "clone-agent0"
    bob_row = next(w for w in status["team"] if w["alias"] == "clone-agent1")
    assert bob_row["online"] is True and bob_row["branch"] == "main"
    assert bob_row["claims"][0]["bead"] == task and bob_row["claims"][0]["epic"]["id"] == epic
    human = alice("status").stdout
    assert "clone-agent1" in human and task in human


def test_sync_uploads_the_beads_file_and_tombstones_what_was_removed(agents):
    (alice,) = agents(1)
    beads = alice.cwd / ".beads"
    beads.mkdir()
    (beads / "issues.jsonl").write_text(beads_file("beadhub-beads.jsonl"))
    result = alice.json("sync")
    assert result["created"] == 3
    assert [b["id"] for b in alice.json("ready")] == ["bd-root"]
    (beads / "issues.jsonl").write_text(beads_file("beadhub-beads.jsonl").splitlines()[0] + "\n")
    # two of the repo's three live beads: more than 10%, so only with --allow-delete (issue 14)
    assert alice.json("sync", code=3)["error"]["would_delete"] == ["bd-child", "bd-closed"]
    assert alice.json("sync", "--allow-delete")["tombstoned"] == 2


def test_a_malformed_beads_file_is_rejected_naming_the_line(agents):
    (alice,) = agents(1)
    bad = alice.cwd / "bad.jsonl"
    bad.write_text('{"id": "bd-1", "title": "ok"}\n{"id": "bd-2", "title": \n')
    proc = alice("sync", "--file", str(bad), code=1)
    assert "line 2, column 25: not valid JSON (expecting value)" in proc.stderr
    assert proc.stderr.count("line 2") == 1  # named once (issue 18)
    assert alice.json("list", "--all") == []


def test_unknown_beads_exit_4_and_a_dead_server_exits_5(agents, tmp_path):
    (alice,) = agents(1)
    assert alice.json("show", "bd-nope", code=4)["error"]["code"] == "not_found"
    dead = Wire(alice.cwd, {**alice.env, "WIRE_URL": "http://127.0.0.1:9"})
    assert dead("whoami", code=5).returncode == 5


def test_usage_errors_exit_2(agents):
    (alice,) = agents(1)
    alice("claim", code=2)
    alice("create", "x", "-p", "P9", code=1)


def test_cross_repo_references_resolve_across_the_project(agents):
    (front,) = agents(1, origin="git@github.com:acme/web.git", project="multi", name="web")
    back = agents(1, origin="git@github.com:acme/api.git", project="multi-api", name="api")[0]
    # same project needs the key: join the api clone to `multi` explicitly
    key = json.loads((Path(front.env["WIRE_CONFIG_DIR"]) / "keys.json").read_text())
    (back.cwd / ".wire").rename(back.cwd / ".wire-old")
    back.json("init", "--project", "multi", "--key", next(iter(key.values())), "--alias", "api-agent")
    api_bead = back.json("create", "Endpoint")["id"]
    web_bead = front.json("create", "Page")["id"]
    front("link", web_bead, "--blocked-by", f"api:{api_bead}")
    assert front.json("ready", "--explain", web_bead)["ready"] is False
    back("claim", api_bead)
    back("close", api_bead)
    assert front.json("ready", "--explain", web_bead)["ready"] is True


def test_history_shows_who_claimed_and_closed_a_bead_newest_first(agents):
    alice, bob = agents(2)
    # this checkout's `wire`, whatever `beadwire` is installed
    root = str(Path(__file__).resolve().parents[1])
    path = os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))
    for wire in (alice, bob):
        wire.env = {**wire.env, "PYTHONPATH": path}
    bead = alice.json("create", "Fix login")["id"]
    bob("claim", bead)
    bob("close", bead, "--reason", "done")
    changes = alice.json("history", bead)
    assert [(c["who"], c["kind"]) for c in changes][:2] == [("clone-agent1", "bead.closed"),
                                                            ("clone-agent1", "claim.created")]
    assert ("clone-agent0", "bead.created") in [(c["who"], c["kind"]) for c in changes]
    lines = alice("history", bead).stdout.splitlines()
    assert len(lines) == len(changes)
    assert lines[0].split()[2:5] == ["clone-agent1", "bead.closed", "reason=done"]
    assert lines[1].split()[2:5] == ["clone-agent1", "claim.created", "title=Fix"]
    assert lines[0][:10] == changes[0]["at"][:10]  # the date, then the minute: `2026-12-04 15:02`
    assert alice.json("history", "bd-nope", code=4)["error"]["code"] == "not_found"
