"""The CLI side of reservations, without a server: paths, `git status` parsing, the auto-reserve header,
and the banner's conflict warnings."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import click
import pytest

from cli import local
from cli.banner import Banner
from cli.client import CHANGED_HEADER, CHANGED_TRUNCATED_HEADER, Client, changed_headers
from cli.locks import left, repo_pattern


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    (tmp_path / "src" / "deep").mkdir(parents=True)
    (tmp_path / "src" / "a.py").write_text("a\n")
    return tmp_path


@pytest.mark.parametrize("cwd, arg, expected", [
    ("", "src/a.py", "src/a.py"), ("", "./src//a.py", "src/a.py"), ("src", "a.py", "src/a.py"),
    ("src", "../README.md", "README.md"), ("", "src", "src/"), ("", "src/", "src/"),
    ("src", "deep", "src/deep/"),
    ("", "*.sql", "**/*.sql"), ("src", "*.py", "src/**/*.py"), ("src", "deep/*.py", "src/deep/*.py"),
    ("", "src/components/**", "src/components/**"), ("", ".", "/"), ("src", ".", "src/"),
])
def test_paths_are_taken_from_the_current_directory_and_sent_from_the_root(tree, cwd, arg, expected):
    assert repo_pattern(arg, tree, tree / cwd) == expected


def test_absolute_paths_inside_the_worktree_work_and_outside_are_refused(tree):
    assert repo_pattern(str(tree / "src" / "a.py"), tree, tree / "src" / "deep") == "src/a.py"
    with pytest.raises(click.BadParameter):
        repo_pattern("../../x", tree, tree / "src")
    with pytest.raises(click.BadParameter):
        repo_pattern("/etc/passwd", tree, tree)


def test_git_status_porcelain_is_parsed_for_modified_added_renamed_and_unmerged_files():
    raw = (b" M a.py\0A  b.py\0R  new.py\0old.py\0 D gone.py\0D  staged-gone.py\0UU c.py\0MM d e.py\0"
           b"T  t\0AD ad.py\0")
    assert local.parse_status(raw) == ["a.py", "ad.py", "b.py", "c.py", "d e.py", "new.py", "t"]
    assert local.parse_status(b"") == []


def test_changed_paths_runs_git_status_in_a_real_repo(tmp_path):
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    (tmp_path / "kept.py").write_text("1\n")
    (tmp_path / "untracked.py").write_text("1\n")
    (tmp_path / ".beads").mkdir()
    (tmp_path / ".beads" / "issues.jsonl").write_text("{}\n")
    subprocess.run(["git", "add", "kept.py", ".beads"], cwd=tmp_path, check=True)
    # the beads file that write-through keeps changing is nobody's work: a worktree with only it is clean
    assert local.changed_paths(tmp_path) == ["kept.py"]
    assert local.changed_paths(tmp_path / "nowhere") is None


def test_the_changed_header_is_capped_in_paths_and_bytes_and_says_when_it_was_cut():
    small = changed_headers(["a.py", "é.py"])
    assert json.loads(small[CHANGED_HEADER]) == ["a.py", "é.py"] and small[CHANGED_HEADER].isascii()
    assert CHANGED_TRUNCATED_HEADER not in small
    many = changed_headers([f"f{i}.py" for i in range(300)])
    assert len(json.loads(many[CHANGED_HEADER])) == 200 and many[CHANGED_TRUNCATED_HEADER] == "1"
    long = changed_headers(["x" * 1000 + str(i) for i in range(10)])
    assert len(long[CHANGED_HEADER]) <= 6000 and long[CHANGED_TRUNCATED_HEADER] == "1"
    assert changed_headers([]) == {CHANGED_HEADER: "[]"}


class Recorder:
    """A transport that answers `{}` as a beadwire server would (its header) and keeps every request's
    headers, but those of the check a new server URL gets (`GET /v1/health`)."""

    def __init__(self) -> None:
        self.sent: list[dict[str, str]] = []

    def __call__(self, method, url, body, headers, timeout):
        if not url.endswith("/v1/health"):
            self.sent.append(headers)
        return 200, b"{}", {"X-Beadwire": "1"}


@pytest.fixture
def worktree(tmp_path: Path) -> Path:
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    (tmp_path / "a.py").write_text("1\n")
    subprocess.run(["git", "add", "a.py"], cwd=tmp_path, check=True)
    local.write_workspace(tmp_path, {"url": "http://127.0.0.1:1", "token": "bw_ws_x", "project": "p"})
    return tmp_path


def test_a_command_sends_its_modified_files_once_on_its_first_call_as_the_workspace(worktree):
    transport = Recorder()
    client = Client(transport=transport, start=worktree)
    client.request("POST", "/v1/init", body={}, auth=False)  # not as the workspace: nothing sent
    client.request("GET", "/v1/policy", token="bw_pk_key")  # as the project key: nothing sent
    client.whoami()
    client.whoami()
    sent = [h.get(CHANGED_HEADER) for h in transport.sent]
    assert sent == [None, None, '["a.py"]', None]


def test_auto_reserve_off_or_outside_a_worktree_sends_nothing(worktree, tmp_path_factory, monkeypatch):
    monkeypatch.setenv("WIRE_CONFIG_DIR", str(tmp_path_factory.mktemp("cfg")))  # http://x gets checked once
    transport = Recorder()
    Client(transport=transport, start=worktree, auto_reserve=False).whoami()
    bare = tmp_path_factory.mktemp("bare")
    Client(transport=transport, token="bw_ws_x", url="http://x", start=bare).whoami()
    assert [h.get(CHANGED_HEADER) for h in transport.sent] == [None, None]


def conflict(path="src/a.py", alias="bob", pattern="src/**", reason="refactor", seconds=245) -> dict:
    return {"path": path, "pattern": pattern, "alias": alias, "reason": reason, "bead": None, "auto": False,
            "seconds_left": seconds}


def test_the_banner_warns_about_each_conflict_once_per_command():
    header = json.dumps({"waiting": [], "new": [], "unread": 0, "conflicts": [conflict()]})
    shown = Banner()
    assert shown.lines(header) == ["warning: src/a.py is reserved by bob as src/** (refactor; 4m05s left)"]
    assert shown.lines(header) == []


def test_the_banner_skips_conflicts_the_answer_prints_itself():
    other = conflict(path="b.py", pattern="b.py", reason="\x1b[31mred")
    header = json.dumps({"waiting": [], "new": [], "unread": 0, "conflicts": [conflict(), other]})
    lines = Banner().lines(header, {"granted": [], "conflicts": [conflict()]})
    assert lines == ["warning: b.py is reserved by bob (red; 4m05s left)"]


@pytest.mark.parametrize("seconds, text", [(0, "0s"), (45, "45s"), (60, "1m00s"), (299, "4m59s"),
                                           (7260, "2h01m"), (None, "?")])
def test_time_left_reads_well(seconds, text):
    assert left(seconds) == text
