"""Reservations as agents use them: `wire lock|unlock|locks`, auto-reserve from `git status`, and the
pre-commit guard, in real git clones against a real `wire serve` stack."""

from __future__ import annotations

import os
import subprocess
import time

import pytest

from tests.test_cli_e2e import Wire, agents, stack  # noqa: F401  (fixtures)

pytestmark = pytest.mark.slow

IDENTITY = {"GIT_AUTHOR_NAME": "T", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "T",
            "GIT_COMMITTER_EMAIL": "t@example.com"}


def git(wire: Wire, *args: str, code: int | None = 0) -> subprocess.CompletedProcess:
    """git in the agent's clone, with the agent's environment (so hooks reach the same server)."""
    proc = subprocess.run(["git", *args], cwd=wire.cwd, env={**wire.env, **IDENTITY}, capture_output=True,
                          check=False, text=True, timeout=60)
    if code is not None:
        assert proc.returncode == code, (args, proc.returncode, proc.stdout, proc.stderr)
    return proc


def commit_base(wire: Wire, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = wire.cwd / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    git(wire, "add", "-A")
    git(wire, "commit", "-q", "-m", "base", "--no-verify")


def share_history(first: Wire, second: Wire) -> None:
    """Give `second` the commits of `first` (both are clones of one origin, with no remote to push to)."""
    git(second, "pull", "-q", "--no-rebase", str(first.cwd), "main")


@pytest.fixture
def two(agents):  # noqa: F811
    ana, bob = agents(2)
    commit_base(ana, {"src/cart.py": "total = 1\n", "src/util.py": "x = 1\n", "README.md": "shop\n"})
    share_history(ana, bob)
    return ana, bob


def mine(wire: Wire) -> list[tuple[str, str]]:
    return [(r["pattern"], r["reason"]) for r in wire.json("locks", "--mine")]


# -- lock / unlock / locks --------------------------------------------------------------------------

def test_lock_warns_about_an_overlap_naming_holder_reason_and_time_left(two):
    ana, bob = two
    bob("lock", "src/", "--reason", "refactor cart", "--ttl", "600", "--bead", "bd-9")
    proc = ana("lock", "src/cart.py", "--reason", "fix")
    assert "reserved src/cart.py" in proc.stdout
    assert "warning: src/cart.py is reserved by clone-agent1 as src/** (refactor cart, bd-9; " in proc.stderr
    assert " left)" in proc.stderr
    answer = ana.json("lock", "src/cart.py")
    assert [c["alias"] for c in answer["conflicts"]] == ["clone-agent1"]


def test_paths_are_relative_to_the_current_directory_and_globs_match_below_it(two):
    ana, _ = two
    sub = Wire(ana.cwd / "src", ana.env)
    sub("lock", "cart.py", "*.txt")
    sub("lock", str(ana.cwd / "README.md"))
    assert sorted(p for p, _ in mine(ana)) == ["README.md", "src/**/*.txt", "src/cart.py"]
    assert sub("lock", "../../elsewhere", code=2).returncode == 2
    released = sub.json("unlock", "*.txt", "cart.py")["released"]
    assert sorted(r["pattern"] for r in released) == ["src/**/*.txt", "src/cart.py"]


def test_unlock_releases_paths_or_everything_and_says_what_was_not_held(two):
    ana, _ = two
    ana("lock", "a.py", "b.py", "*.sql")
    proc = ana("unlock", "a.py", "nope.py")
    assert "released a.py" in proc.stdout and "not held: nope.py" in proc.stdout
    ana("unlock", "--all")
    assert mine(ana) == []
    ana("unlock", code=2)


def test_locks_lists_the_repo_and_check_is_read_only(two):
    ana, bob = two
    bob("lock", "src/**", "--reason", "big one")
    table = ana("locks").stdout
    assert "src/**" in table and "clone-agent1" in table and "big one" in table
    checked = ana.json("locks", "--check", "src/util.py", "docs/x.md")
    assert [(h["path"], h["pattern"], h["alias"], h["mine"]) for h in checked["holders"]] == [
        ("src/util.py", "src/**", "clone-agent1", False)]
    assert "is reserved by clone-agent1" in ana("locks", "--check", "src/util.py").stdout
    assert mine(ana) == []
    ana("locks", "src/util.py", code=2)


def test_a_short_lease_runs_out_on_its_own(two):
    ana, bob = two
    bob("lock", "src/cart.py", "--ttl", "1")
    assert [r["alias"] for r in ana.json("locks")] == ["clone-agent1"]
    deadline = time.monotonic() + 15
    while ana.json("locks") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert ana.json("locks") == []
    assert ana.json("lock", "src/cart.py")["conflicts"] == []


def test_other_repos_never_conflict(agents, two):  # noqa: F811
    ana, _ = two
    (other,) = agents(1, origin="git@github.com:acme/other.git", name="other")
    other("lock", "src/")
    assert ana.json("lock", "src/cart.py")["conflicts"] == []


# -- auto-reserve ------------------------------------------------------------------------------

def test_any_command_reserves_modified_files_and_releases_them_once_reverted(two):
    ana, _ = two
    (ana.cwd / "src" / "cart.py").write_text("total = 2\n")
    ana("whoami")
    assert mine(ana) == [("src/cart.py", "auto")]
    git(ana, "checkout", "--", "src/cart.py")
    ana("whoami")
    assert mine(ana) == []


def test_added_and_renamed_files_are_reserved_too(two):
    ana, _ = two
    (ana.cwd / "src" / "new.py").write_text("n = 1\n")
    git(ana, "add", "src/new.py")
    git(ana, "mv", "src/util.py", "src/helpers.py")
    ana("status")
    assert sorted(p for p, _ in mine(ana)) == ["src/helpers.py", "src/new.py"]


def test_a_second_clone_modifying_the_same_file_gets_the_warning(two):
    ana, bob = two
    (bob.cwd / "src" / "cart.py").write_text("total = 3\n")
    bob("ready")
    (ana.cwd / "src" / "cart.py").write_text("total = 4\n")
    proc = ana("ready")
    assert "warning: src/cart.py is reserved by clone-agent1 (auto; " in proc.stderr
    assert proc.stderr.count("src/cart.py is reserved") == 1
    assert "warning: src/cart.py" in ana("--json", "whoami").stderr  # also in JSON mode, on stderr
    git(bob, "checkout", "--", "src/cart.py")
    bob("whoami")
    assert "reserved" not in ana("ready").stderr


def test_auto_reserve_can_be_turned_off(two):
    ana, _ = two
    (ana.cwd / "README.md").write_text("changed\n")
    quiet = Wire(ana.cwd, {**ana.env, "WIRE_NO_AUTO_RESERVE": "1"})
    quiet("whoami")
    assert quiet.json("locks", "--mine") == []
    ana("--no-auto-reserve", "whoami")
    assert quiet.json("locks", "--mine") == []


# -- the pre-commit guard --------------------------------------------------------------------------

def test_the_guard_warns_by_default_and_the_commit_goes_through(two):
    ana, bob = two
    ana("guard", "install")
    bob("lock", "src/cart.py", "--reason", "pricing rewrite")
    (ana.cwd / "src" / "cart.py").write_text("total = 5\n")
    git(ana, "add", "src/cart.py")
    proc = git(ana, "commit", "-m", "touch cart")
    assert "src/cart.py is reserved by clone-agent1 (pricing rewrite;" in proc.stderr
    assert git(ana, "log", "-1", "--format=%s").stdout.strip() == "touch cart"


def test_the_strict_guard_refuses_naming_the_holder(two):
    ana, bob = two
    ana("guard", "install", "--strict")
    bob("lock", "src/**", "--reason", "moving things")
    (ana.cwd / "src" / "util.py").write_text("x = 2\n")
    git(ana, "add", "src/util.py")
    proc = git(ana, "commit", "-m", "blocked", code=1)
    assert "src/util.py is reserved by clone-agent1 as src/** (moving things;" in proc.stderr
    assert "commit refused" in proc.stderr and "clone-agent1" in proc.stderr
    git(ana, "commit", "-q", "-m", "forced", "--no-verify")
    (ana.cwd / "README.md").write_text("free file\n")
    git(ana, "commit", "-q", "-am", "unreserved files pass")


def test_the_strict_guard_catches_a_rename_of_a_reserved_file(two):
    ana, bob = two
    ana("guard", "install", "--strict")
    bob("lock", "src/cart.py", "--reason", "mine")
    git(ana, "mv", "src/cart.py", "src/basket.py")
    proc = git(ana, "commit", "-m", "rename", code=1)
    assert "src/cart.py is reserved by clone-agent1" in proc.stderr


def test_the_strict_guard_checks_what_a_merge_commit_resolves_not_what_it_brings(two):
    ana, bob = two
    ana("guard", "install", "--strict")
    git(ana, "checkout", "-q", "-b", "feature")
    (ana.cwd / "src" / "cart.py").write_text("total = 'feature'\n")
    (ana.cwd / "src" / "util.py").write_text("x = 'feature'\n")
    git(ana, "commit", "-q", "-am", "feature work", "--no-verify")
    git(ana, "checkout", "-q", "main")
    (ana.cwd / "src" / "cart.py").write_text("total = 'main'\n")
    git(ana, "commit", "-q", "-am", "main work", "--no-verify")
    bob("lock", "src/util.py", "--reason", "not yours")  # the merge only brings util.py in: allowed
    git(ana, "merge", "feature", "--no-edit", code=1)  # conflict in cart.py
    (ana.cwd / "src" / "cart.py").write_text("total = 'both'\n")
    git(ana, "add", "src/cart.py")
    git(ana, "commit", "-q", "--no-edit")
    assert "Merge" in git(ana, "log", "-1", "--format=%s").stdout
    # the same merge again, with the resolved file reserved: refused
    git(ana, "reset", "-q", "--hard", "HEAD~1")
    bob("lock", "src/cart.py", "--reason", "pricing")
    git(ana, "merge", "feature", "--no-edit", code=1)
    (ana.cwd / "src" / "cart.py").write_text("total = 'both'\n")
    git(ana, "add", "src/cart.py")
    proc = git(ana, "commit", "--no-edit", code=1)
    assert "src/cart.py is reserved by clone-agent1 (pricing;" in proc.stderr
    assert "src/util.py" not in proc.stderr


def test_install_is_idempotent_and_chains_an_existing_hook(two):
    ana, bob = two
    hook = ana.cwd / ".git" / "hooks" / "pre-commit"
    hook.write_text("#!/bin/sh\necho previous-hook-ran >&2\nexit 0\n")
    hook.chmod(0o755)
    first = ana("guard", "install", "--strict").stdout
    assert "pre-commit.wire-chained" in first
    ana("guard", "install", "--strict")
    ana("guard", "install", "--strict")
    chained = hook.parent / "pre-commit.wire-chained"
    assert chained.read_text().startswith("#!/bin/sh\necho previous-hook-ran")
    assert hook.read_text().count("beadwire-guard") == 1
    bob("lock", "README.md")
    (ana.cwd / "README.md").write_text("x\n")
    proc = git(ana, "commit", "-am", "x", code=1)
    assert "previous-hook-ran" in proc.stderr and "README.md is reserved by clone-agent1" in proc.stderr
    ana("guard", "uninstall")
    assert hook.read_text().startswith("#!/bin/sh\necho previous-hook-ran")
    git(ana, "commit", "-q", "-am", "x")


def test_a_failing_chained_hook_still_stops_the_commit(two):
    ana, _ = two
    hook = ana.cwd / ".git" / "hooks" / "pre-commit"
    hook.write_text("#!/bin/sh\necho lint-failed >&2\nexit 7\n")
    hook.chmod(0o755)
    ana("guard", "install")
    (ana.cwd / "README.md").write_text("y\n")
    assert "lint-failed" in git(ana, "commit", "-am", "y", code=1).stderr


def test_the_guard_never_blocks_when_the_server_is_unreachable_or_the_repo_unknown(two, tmp_path):
    ana, bob = two
    ana("guard", "install", "--strict")
    bob("lock", "README.md")
    down = Wire(ana.cwd, {**ana.env, "WIRE_URL": "http://127.0.0.1:9"})
    (ana.cwd / "README.md").write_text("offline\n")
    proc = git(down, "commit", "-am", "offline")
    assert "commit not checked" in proc.stderr
    # a clone that never ran `wire init`: the hook has nobody to ask, and lets the commit through
    (ana.cwd / ".wire").rename(tmp_path / "wire-backup")
    (ana.cwd / "README.md").write_text("unknown\n")
    git(ana, "commit", "-q", "-am", "unknown")


def test_the_guard_outside_a_repo_says_so(stack, tmp_path):  # noqa: F811
    plain = tmp_path / "plain"
    plain.mkdir()
    wire = Wire(plain, {**os.environ, "WIRE_URL": stack.url, "WIRE_CONFIG_DIR": str(tmp_path / "cfg")})
    assert "not a git repository" in wire("guard", "install", code=1).stderr
