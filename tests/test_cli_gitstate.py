"""The claim holder's git state at the cost of one `git status` per command (issue 19: CLI start-up).

`X-Wire-Git` needs HEAD and the default branch: they are read from the ref files, and must say what
git says (loose, packed, symbolic, linked worktrees); where files cannot say (reftable, GIT_DIR),
git is asked. Ahead/behind and the commits naming the claims are kept in `.wire/claims.json` for the
commits they were worked out for, so a command that finds nothing moved runs no `git rev-list` or
`git log`. These tests count git runs, never time them.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from cli import gitrun, gitstate, local
from cli.client import Client

#: The real `subprocess.run`: this file's own git runs are not counted (`runs`).
RUN = subprocess.run
GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@x", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@x"}


def git(root: Path, *args: str) -> str:
    done = RUN(["git", *args], cwd=root, check=True, capture_output=True, text=True,
                          env={**os.environ, **GIT_ENV})
    return done.stdout.strip()


def repo(path: Path, branch: str = "main") -> Path:
    path.mkdir()
    git(path, "init", "-q", "-b", branch)
    return path


def commit(root: Path, message: str) -> str:
    git(root, "commit", "-q", "--allow-empty", "-m", message)
    return git(root, "rev-parse", "HEAD")


def from_git(root: Path) -> dict[str, str]:
    """HEAD and the default-branch candidates as `git show-ref` resolves them (the reference)."""
    out = RUN(["git", "show-ref", "--head", *gitstate.BASES], cwd=root, capture_output=True,
                         text=True).stdout
    return {name: oid for oid, name in (line.split(" ", 1) for line in out.splitlines())}


def test_the_ref_files_say_what_git_says(tmp_path: Path) -> None:
    origin = repo(tmp_path / "origin", "trunk")
    assert gitstate._refs_from_files(origin) == {} == from_git(origin)  # no commit yet
    commit(origin, "one")
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(origin), str(clone))  # origin/HEAD: a symbolic ref, to a packed one
    git(clone, "checkout", "-q", "-b", "main")
    commit(clone, "two")
    assert set(from_git(clone)) == {"HEAD", "refs/remotes/origin/HEAD", "refs/heads/main"}
    assert gitstate._refs_from_files(clone) == from_git(clone)
    git(clone, "pack-refs", "--all")  # every ref packed, none loose
    assert gitstate._refs_from_files(clone) == from_git(clone)
    git(clone, "checkout", "-q", "--detach", "HEAD~1")
    assert gitstate._refs_from_files(clone) == from_git(clone)
    git(clone, "checkout", "-q", "main")
    linked = tmp_path / "linked"
    git(clone, "worktree", "add", "-q", "-b", "feature", str(linked))
    commit(linked, "three")
    assert gitstate._refs_from_files(linked) == from_git(linked)
    assert gitstate.refs(linked) == (from_git(linked)["HEAD"], "refs/remotes/origin/HEAD",
                                     from_git(linked)["refs/remotes/origin/HEAD"])


def test_where_the_files_cannot_say_git_is_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = repo(tmp_path / "w")
    head = commit(root, "one")
    (root / ".git" / "reftable").mkdir()  # refs kept in reftable files
    assert gitstate._refs_from_files(root) is None
    assert gitstate.refs(root) == (head, "refs/heads/main", head)
    (root / ".git" / "reftable").rmdir()
    (root / ".git" / "refs" / "heads" / "main").write_text("not an object id\n")
    assert gitstate._refs_from_files(root) is None
    (root / ".git" / "refs" / "heads" / "main").write_text(head + "\n")
    monkeypatch.setenv("GIT_DIR", str(root / ".git"))
    assert gitstate._refs_from_files(root) is None


def runs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The git subcommands gitstate and local run from now on."""
    seen: list[str] = []
    real = gitrun.run_git

    def counting(root: Path, *args: str, **kwargs) -> bytes | None:
        seen.append(next(a for a in args if not a.startswith("-") and "=" not in a))
        return real(root, *args, **kwargs)

    monkeypatch.setattr(gitrun, "run_git", counting)
    return seen


def test_nothing_moved_no_git_but_the_status(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = repo(tmp_path / "w")
    commit(root, "start")
    git(root, "checkout", "-q", "-b", "wire/bob")
    (root / ".wire").mkdir()
    gitstate.record_claim(root, "bd-1", time.time() - 60)
    first = json.loads(gitstate.header(root, command=True) or "")
    seen = runs(monkeypatch)
    again = json.loads(gitstate.header(root, command=True) or "")
    assert seen == ["status"] and again == first
    sha = commit(root, "bd-1: the fix")  # HEAD moved: ahead and the commits are worked out again
    moved = json.loads(gitstate.header(root, command=True) or "")
    assert seen == ["status", "rev-list", "log", "status"]
    assert moved["ahead"] == 1 and len(moved["commits"]) == 1 and sha.startswith(moved["commits"][0]["sha"])
    seen.clear()
    gitstate.record_claim(root, "bd-2", time.time() + 5)  # made after every commit: none can name it
    assert json.loads(gitstate.header(root, command=True) or "") == {**moved, "idle": 0}
    assert seen == ["status"]
    gitstate.record_claim(root, "bd-3", time.time() - 3600)  # older than the others: the log goes further
    gitstate.header(root, command=True)
    assert seen == ["status", "log", "status"]


def test_a_command_runs_git_status_once_for_auto_reserve_and_the_git_state(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = repo(tmp_path / "w")
    commit(root, "start")
    (root / "work.py").write_text("x")
    git(root, "add", "work.py")
    local.write_workspace(root, {"url": "http://wire.test", "token": "bw_ws_x", "project": "p"})
    gitstate.record_claim(root, "bd-1")
    sent: list[dict[str, str]] = []

    def transport(method, url, body, headers, timeout):
        sent.append(headers)
        return 200, b"{}", {}

    seen = runs(monkeypatch)
    client = Client(transport=transport, start=root, write_through=False)
    client.get("/v1/whoami")
    client.held("bd-2", {}, True)  # a claim: the next call works the git state out again
    client.get("/v1/whoami")
    assert seen.count("status") == 1
    assert json.loads(sent[0]["X-Wire-Changed"]) == ["work.py"]
    assert "X-Wire-Git" in sent[0] and "X-Wire-Git" in sent[1]


def test_a_claim_is_one_call_carrying_the_git_state_and_bringing_the_record(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = repo(tmp_path / "w")
    commit(root, "start")
    local.write_workspace(root, {"url": "http://wire.test", "token": "bw_ws_x", "project": "p"})
    record = {"id": "bd-7", "title": "Seven", "status": "in_progress"}
    sent: list[tuple[str, dict[str, str]]] = []

    def transport(method, url, body, headers, timeout):
        sent.append((url, headers))
        answer = {"claimed": True, "bead": {"id": "bd-7"}}
        return 200, json.dumps({**answer, "records": [record]} if headers.get("X-Wire-Records") else answer
                               ).encode(), {}

    seen = runs(monkeypatch)
    answer = Client(transport=transport, start=root, auto_reserve=False).claim("bd-7")
    assert answer == {"claimed": True, "bead": {"id": "bd-7"}}  # what `wire claim` prints: no records
    assert [url for url, _ in sent] == ["http://wire.test/v1/beads/bd-7/claim"]
    git_state = json.loads(sent[0][1]["X-Wire-Git"])  # this worktree holding bd-7, before any call after
    assert git_state["branch"] == "main" and git_state["idle"] == 0
    assert (root / ".beads" / "issues.jsonl").read_text() == json.dumps(record, separators=(",", ":")) + "\n"
    assert "bd-7" in gitstate.claims(root)
    seen.clear()
    gitstate.header(root, command=True)  # the next command finds the commits kept for its claims
    assert seen == ["status"]


def test_the_server_answers_a_claim_with_the_record_only_when_asked(make_agent, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from cli import cli
    from tests.test_security_keys import FlaskTransport

    bob = make_agent(alias="bob")
    plain, asked = bob.create("Plain"), bob.create("Asked")
    answer = bob.post(f"/beads/{plain}/claim")
    assert answer.status_code == 200 and "records" not in answer.json  # the API as it was
    root = repo(tmp_path / "w")
    commit(root, "start")
    local.write_workspace(root, {"url": "http://wire.test", "token": bob.token, "project": "shop"})
    calls: list[str] = []
    flask = FlaskTransport(bob.client)

    def transport(method, url, body, headers, timeout):
        calls.append(f"{method} {url.split('/v1', 1)[1]}")
        return flask(method, url, body, headers, timeout)

    obj = Client(transport=transport, start=root, auto_reserve=False)
    out = CliRunner().invoke(cli, ["--json", "claim", asked], obj=obj)
    assert out.exit_code == 0, out.output
    assert calls == [f"POST /beads/{asked}/claim"] and "records" not in json.loads(out.output)
    filed = json.loads((root / ".beads" / "issues.jsonl").read_text())
    assert filed == bob.get(f"/sync/records?id={asked}").json["records"][0]
    assert filed["status"] == "in_progress"


def test_damaged_kept_figures_are_worked_out_again(tmp_path: Path) -> None:
    root = repo(tmp_path / "w")
    commit(root, "start")
    (root / ".wire").mkdir()
    gitstate.record_claim(root, "bd-1", time.time() - 60)
    good = json.loads(gitstate.header(root, command=True) or "")
    data = gitstate.read(root)
    data["counts"] = {"of": data["counts"]["of"]}  # no figures
    data["commits"] = {"of": [data["commits"]["of"][0], 5], "newest": 1}
    gitstate.write(root, data)
    assert json.loads(gitstate.header(root, command=True) or "") == good


def test_a_git_run_gives_its_output_or_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = repo(tmp_path / "w")
    assert gitrun.run_git(root, "rev-parse", "--show-toplevel") == f"{root}\n".encode()
    assert gitrun.run_git(root, "rev-parse", "--verify", "-q", "HEAD") is None  # git failed: no commit
    assert gitrun.run_git(tmp_path / "nowhere", "status") is None
    shim = tmp_path / "shim"
    shim.mkdir()
    pid_file = tmp_path / "pid"
    (shim / "git").write_text(f"#!/bin/sh\necho $$ > {pid_file}\nexec sleep 600\n")  # a git that hangs
    (shim / "git").chmod(0o755)
    monkeypatch.setenv("PATH", f"{shim}{os.pathsep}{os.environ['PATH']}")
    assert gitrun.run_git(root, "status", timeout=0.3) is None
    with pytest.raises(ProcessLookupError):  # killed at the timeout, and reaped
        os.kill(int(pid_file.read_text()), 0)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no git at all
    assert gitrun.run_git(root, "status") is None
