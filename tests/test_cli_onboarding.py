"""Onboarding through the real CLI against a real `wire serve`: add-worktree in a real git repo,
handoffs, and `wire prime`."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
_projects = itertools.count(1)


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    from tests.servers import start_stack

    server = start_stack(tmp_path_factory.mktemp("onboarding-stack"), workers=1)
    yield server
    server.stop()


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


class Wire:
    def __init__(self, env: dict[str, str]) -> None:
        self.env = env

    def __call__(self, cwd: Path, *args: str, code: int = 0) -> subprocess.CompletedProcess:
        proc = subprocess.run([sys.executable, "-c", "from cli import main; main()", *args], cwd=cwd,
                              env=self.env, capture_output=True, text=True, timeout=90, check=False)
        assert proc.returncode == code, (args, proc.returncode, proc.stdout, proc.stderr)
        return proc

    def json(self, cwd: Path, *args: str, code: int = 0):
        return json.loads(self(cwd, "--json", *args, code=code).stdout)


@pytest.fixture
def repo(stack, tmp_path):
    """A repo with one commit, registered as `lead`, and the `wire` of its machine."""
    path = tmp_path / "shop"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    git(path, "remote", "add", "origin", "git@github.com:acme/shop.git")
    (path / "README").write_text("shop\n")
    git(path, "add", "README")
    git(path, "-c", "user.name=T", "-c", "user.email=t@example.com", "commit", "-q", "-m", "first")
    python_path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "WIRE_URL": stack.url, "WIRE_CONFIG_DIR": str(tmp_path / "cfg"),
           "HOME": str(tmp_path), "PYTHONPATH": python_path}
    env.pop("WIRE_PROJECT_KEY", None)
    env.pop("WIRE_JSON", None)
    wire = Wire(env)
    wire.json(path, "init", "--project", f"onb{next(_projects)}", "--alias", "lead")
    return path, wire


def test_add_worktree_creates_a_branch_beside_the_repo_and_a_new_agent_of_the_same_project(repo):
    path, wire = repo
    added = wire.json(path, "add-worktree", "reviewer", "--alias", "rev")
    new = path.parent / "shop-rev"
    assert added["path"] == str(new) and added["branch"] == "wire/rev"
    assert git(new, "branch", "--show-current") == "wire/rev"
    assert str(new) in git(path, "worktree", "list")
    assert (new / "README").read_text() == "shop\n"
    assert git(new, "status", "--porcelain") == ""  # the identity stays out of git
    lead, rev = wire.json(path, "whoami"), wire.json(new, "whoami")
    assert (rev["alias"], rev["role"], rev["branch"]) == ("rev", "reviewer", "wire/rev")
    assert rev["project"] == lead["project"] and rev["id"] != lead["id"]
    own = json.loads((new / ".wire" / "workspace.json").read_text())
    assert own["token"] != json.loads((path / ".wire" / "workspace.json").read_text())["token"]
    assert {w["alias"] for w in wire.json(path, "status")["team"]} == {"lead", "rev"}


def test_add_worktree_without_alias_is_named_after_the_role_and_a_failed_join_leaves_nothing(repo):
    path, wire = repo
    added = wire.json(path, "add-worktree", "qa")
    assert added["path"] == str(path.parent / "shop-qa") and added["branch"] == "wire/qa"
    assert added["workspace"]["role"] == "qa"
    taken = wire(path, "add-worktree", "backend", "--alias", "lead", "--path", str(path.parent / "dup"),
                 code=3)
    assert "taken" in taken.stderr
    assert not (path.parent / "dup").exists() and "dup" not in git(path, "worktree", "list")
    assert "wire/lead" not in git(path, "branch", "--list")


def test_add_worktree_from_no_commit_says_what_to_do(repo):
    path, wire = repo
    failed = wire(path, "add-worktree", "qa", "--base", "no-such-branch", code=1)
    assert "names no commit" in failed.stderr and "--base" in failed.stderr
    assert not (path.parent / "shop-qa").exists() and "wire/qa" not in git(path, "branch", "--list")


def test_a_handoff_is_the_first_thing_prime_shows_to_the_next_run(repo):
    path, wire = repo
    assert wire(path, "handoff").stdout.startswith("HANDOFF: none")
    wire.json(path, "create", "half-done migration")
    bead = wire.json(path, "create", "the migration")["id"]
    wire(path, "claim", bead)
    left = wire(path, "handoff", f"{bead}: migration written, tests still failing\nnext: fix test_orders")
    assert "for your next run" in left.stdout
    text = wire(path, "prime").stdout.splitlines()
    assert text[0].startswith("HANDOFF from you, last run")
    assert text[1:3] == [f"  {bead}: migration written, tests still failing", "  next: fix test_orders"]
    assert any(line.startswith("YOU: lead") for line in text)
    resume = text.index("RESUME FIRST (your claims):")
    assert text[resume + 1].split()[0] == bead
    assert any(line.startswith("PLAYBOOK developer") for line in text)
    as_json = wire.json(path, "prime")
    assert as_json["handoff"]["body"].startswith(bead) and [b["id"] for b in as_json["claims"]] == [bead]


def test_a_handoff_to_another_agent_reaches_its_prime_and_banner(repo):
    path, wire = repo
    wire.json(path, "add-worktree", "developer", "--alias", "next")
    new = path.parent / "shop-next"
    wire(path, "handoff", "take over the checkout work", "--to", "next")
    prime = wire(new, "prime")
    assert prime.stdout.startswith("HANDOFF from lead")
    assert "take over the checkout work" in prime.stdout
    unknown = wire(path, "handoff", "x", "--to", "nxet", code=4)
    assert "next" in unknown.stderr
