"""The rough edges a new user hit (issue 18), each as the user met it: the real `wire` CLI in
subprocesses, real git repos, a real `wire serve` stack."""

from __future__ import annotations

import itertools
import os
import re
import time
from pathlib import Path

import pytest

from tests.test_cli_e2e import Wire, git, make_repo

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
_projects = itertools.count(1)


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    from tests.servers import start_stack

    pythonpath = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    server = start_stack(tmp_path_factory.mktemp("edges-stack"), workers=1, env={"PYTHONPATH": pythonpath})
    yield server
    server.stop()


def wire_env(stack, tmp: Path, name: str) -> dict[str, str]:
    """One agent's machine: its own config dir and HOME, this worktree's code."""
    env = {**os.environ, "WIRE_URL": stack.url, "WIRE_CONFIG_DIR": str(tmp / f"cfg-{name}"),
           "HOME": str(tmp / f"home-{name}"),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    for var in ("WIRE_JSON", "WIRE_PROJECT_KEY"):
        env.pop(var, None)
    return env


@pytest.fixture
def team(stack, tmp_path):
    """team(*aliases) -> one Wire per alias, each in its own clone (on `main`) of one origin, the first
    creating a new project, the others joining it with its key. Nothing else is run."""

    def make(*aliases: str) -> list[Wire]:
        project, key, wires = f"edges{next(_projects)}", None, []
        for alias in aliases or ("alice", "bob"):
            repo = make_repo(tmp_path, alias, "git@github.com:acme/shop.git")
            wire = Wire(repo, wire_env(stack, tmp_path, alias))
            args = ["init", "--project", project, "--alias", alias, "--human", f"{alias.title()} Human"]
            answer = wire.json(*args, *(["--key", key] if key else []))
            key = key or answer["project_key"]
            wires.append(wire)
        return wires

    return make


# -- wire init -------------------------------------------------------------------------------------

def test_init_prints_the_branch_the_worktree_is_on(stack, tmp_path):
    repo = make_repo(tmp_path, "solo", "git@github.com:acme/solo.git")
    wire = Wire(repo, wire_env(stack, tmp_path, "solo"))
    printed = wire("init", "--project", f"edges-solo{next(_projects)}", "--alias", "solo").stdout
    assert "branch main" in printed and "branch -" not in printed
    assert wire.json("whoami")["branch"] == "main"


def test_a_freshly_initialised_agent_is_online_at_once(team):
    _alice, bob = team("alice", "bob")
    # alice has run nothing since `wire init`: bob's view of the team shows her online, on her branch
    row = next(w for w in bob.json("status")["team"] if w["alias"] == "alice")
    assert (row["online"], row["status"], row["branch"]) == (True, "online", "main")
    line = next(line for line in bob("status").stdout.splitlines() if line.startswith("alice"))
    assert " online " in line and " offline " not in line


# -- wire release ----------------------------------------------------------------------------------

def test_releasing_a_bead_you_do_not_hold_says_so_and_exits_3(team):
    alice, bob = team("alice", "bob")
    free = alice.json("create", "Nobody's")["id"]
    refused = alice("release", free, code=3)
    assert f"you hold no claim on {free}" in refused.stderr and "released" not in refused.stdout
    assert alice.json("release", free, code=3)["error"]["code"] == "not_held"
    held = bob.json("create", "Bob's")["id"]
    bob("claim", held)
    assert "held by bob" in alice("release", held, code=3).stderr
    assert bob("release", held).stdout.startswith(f"released {held}")


# -- titles ----------------------------------------------------------------------------------------

def test_a_blank_title_is_a_usage_error_and_a_server_refusal_is_printed_once(team):
    (alice,) = team("alice")
    for blank in ("", "   "):
        refused = alice("create", blank, code=2)
        assert "title must not be blank" in refused.stderr
    bead = alice.json("create", "Named")["id"]
    assert "title must not be blank" in alice("update", bead, "--title", " ", code=2).stderr
    assert alice.json("list", "--all")[0]["title"] == "Named" and len(alice.json("list", "--all")) == 1
    # a refusal of the server's validation: its message, not again as a detail line
    too_long = alice("create", "x" * 1001, code=1).stderr
    assert too_long.count("Longer than maximum length 1000") == 1, too_long


# -- claims the rule refuses -----------------------------------------------------------------------

def test_claiming_a_blocked_bead_or_an_epic_says_why_and_points_at_no_holder(team):
    alice, bob = team("alice", "bob")
    blocker = alice.json("create", "Schema")["id"]
    blocked = alice.json("create", "API", "--blocked-by", blocker)["id"]
    epic = alice.json("create", "Checkout", "-t", "epic")["id"]
    alice.json("create", "Card form", "--parent", epic)
    for bead in (blocked, epic):
        why = alice.json("ready", "--explain", bead)["reasons"]
        refused = alice("claim", bead, code=3).stderr
        assert f"{bead} cannot be claimed: {why[0]}" in refused, (why, refused)
        assert "holder" not in refused and "--jump-in" not in refused
        assert "wire ready" in refused
        assert "holder" not in alice.json("claim", bead, code=3)["error"].get("hint", "")
    # a bead someone holds: still the holder's name and the way to take it over
    alice("claim", blocker)
    taken = bob("claim", blocker, code=3).stderr
    assert f"{blocker} is being worked on by alice" in taken and "--jump-in" in taken


# -- a wrong project key ---------------------------------------------------------------------------

@pytest.mark.parametrize("wrong", ["bw_pk_" + "0" * 40, "not-a-key"])
def test_a_wrong_project_key_says_to_check_the_key_not_to_init_again(team, wrong):
    (alice,) = team("alice")
    refused = alice("key", "rotate", "--key", wrong, code=1).stderr
    hint = next(line for line in refused.splitlines() if line.startswith("hint:"))
    assert "wire init" not in hint and "project key" in hint and "--key" in hint, refused
    refused_again = alice.json("workspace", "revoke", "alice", "--key", wrong, code=1)
    assert "wire init" not in refused_again["error"]["hint"]
    assert alice.json("whoami")["alias"] == "alice"  # nothing was revoked


# -- wire lock -------------------------------------------------------------------------------------

def test_renewing_a_lock_without_reason_or_bead_keeps_them(team):
    alice, bob = team("alice", "bob")
    alice("lock", "schema.sql", "--reason", "adding the orders table", "--bead", "bd-7", "--ttl", "60")
    renewed = alice.json("lock", "schema.sql", "--ttl", "600")["granted"][0]
    assert (renewed["reason"], renewed["bead"]) == ("adding the orders table", "bd-7")
    (seen,) = bob.json("locks")
    assert (seen["reason"], seen["bead"], seen["alias"]) == ("adding the orders table", "bd-7", "alice")
    assert seen["seconds_left"] > 60  # renewed, not just kept
    warned = bob("lock", "schema.sql").stderr
    assert "adding the orders table" in warned
    # what a renewal restates replaces what was there
    assert alice.json("lock", "schema.sql", "--reason", "indexes")["granted"][0]["reason"] == "indexes"


# -- wire mail open --------------------------------------------------------------------------------

def test_a_notice_opens_as_a_notice_to_its_reader(team):
    alice, bob = team("alice", "bob")
    bead = alice.json("create", "Cart total")["id"]
    alice("claim", bead)
    bob("claim", bead, "--jump-in", "alice is on leave")
    deadline = time.monotonic() + 20
    while not (shown := alice("mail", "open").stdout).startswith("#") and time.monotonic() < deadline:
        time.sleep(0.2)
    header = shown.splitlines()[0]
    assert re.match(r"#\d+ notice to alice · ", header), shown
    assert "from notice" not in shown and "bob jumped in on" in shown


# -- wire add-worktree -----------------------------------------------------------------------------

def test_add_worktree_carries_the_humans_name_over_unless_told_otherwise(team):
    (alice,) = team("alice")
    (alice.cwd / "README").write_text("shop\n")
    git(alice.cwd, "add", "README")
    git(alice.cwd, "-c", "user.name=T", "-c", "user.email=t@example.com", "commit", "-qm", "first")
    added = alice.json("add-worktree", "reviewer", "--alias", "rev")
    assert added["workspace"]["human"] == "Alice Human"
    assert Wire(Path(added["path"]), alice.env).json("whoami")["human"] == "Alice Human"
    other = alice.json("add-worktree", "qa", "--alias", "qa1", "--human", "Grace Hopper")
    assert other["workspace"]["human"] == "Grace Hopper"
    team_humans = {w["alias"]: w["human"] for w in alice.json("status")["team"]}
    assert team_humans == {"alice": "Alice Human", "rev": "Alice Human", "qa1": "Grace Hopper"}


# -- wire list --priority --------------------------------------------------------------------------

def test_list_filters_by_priority_and_names_a_bad_one(team):
    (alice,) = team("alice")
    made = {p: alice.json("create", f"P{p} work", "-p", f"P{p}")["id"] for p in range(5)}

    def listed(*args: str) -> list[str]:
        return [b["id"] for b in alice.json("list", *args)]

    assert listed("--priority", "P1") == listed("--priority", "1") == [made[1]]
    assert listed("--priority", "0-1") == [made[0], made[1]]
    assert listed("--priority", "P0-P2") == [made[0], made[1], made[2]]
    table = alice("list", "--priority", "P3-P4").stdout
    assert "P3 work" in table and "P4 work" in table and "P2 work" not in table
    refused = alice("list", "--priority", "P7", code=1).stderr
    assert "priority filter must be" in refused and "'P7'" in refused
    assert "runs backwards" in alice("list", "--priority", "P2-P0", code=1).stderr
