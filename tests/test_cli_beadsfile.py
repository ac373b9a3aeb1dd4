"""The CLI's side of the beads file, without a server: write-through after each bead change, the base
and its validity against git, the `wire sync` output and the git merge driver's registration."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import beadsfile, local, offline
from cli.client import Client, Journaled, ServerUnreachable
from tests.test_cli_offline import URL, Script, refused

LINES = ['{"id": "bd-1",  "title": "odd spacing, untouched"}', '{"id":"bd-2","title":"Two","status":"open"}',
         '{"id":"bd-3","title":"Three"}']


@pytest.fixture(autouse=True)
def no_pauses(monkeypatch):
    from cli import client as client_module

    monkeypatch.setattr(client_module, "RETRY_PAUSES", (0.0, 0.0))


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    (tmp_path / ".git").mkdir()
    local.write_workspace(tmp_path, {"url": URL, "token": "bw_ws_test", "project": "p", "alias": "ana"})
    (tmp_path / ".beads").mkdir()
    (tmp_path / ".beads" / "issues.jsonl").write_text("".join(line + "\n" for line in LINES))
    return tmp_path


def make(tree: Path, script: Script) -> Client:
    return Client(URL, transport=script, start=tree, auto_reserve=False)


def records(ref: str, **fields) -> tuple[int, dict]:
    return 200, {"repo": "github.com/acme/shop", "records": [{"id": ref, "title": "Two", **fields}]}


def file_lines(tree: Path) -> list[str]:
    return (tree / ".beads" / "issues.jsonl").read_text().splitlines()


@pytest.mark.parametrize("command", [
    lambda c: c.claim("bd-2"), lambda c: c.release("bd-2"), lambda c: c.close("bd-2", "done"),
    lambda c: c.reopen("bd-2"), lambda c: c.comment("bd-2", "hi"),
    lambda c: c.add_dep("bd-2", "bd-3", "blocks"),
    lambda c: c.update_bead("bd-2", {"title": "Two"}),
])
def test_each_bead_command_writes_exactly_its_bead_through_in_place(tree, command):
    synced = (tree / ".beads" / "issues.jsonl").read_text()
    beadsfile.save_base(tree, synced, synced, None)  # as the last sync left it
    script = Script((200, {"ok": True}), records("bd-2", status="in_progress"))
    assert command(make(tree, script)) == {"ok": True}  # the command's own answer, unchanged
    method, path, _, _ = script.calls[1]
    assert (method, path) == ("GET", "/v1/sync/records?id=bd-2")
    assert file_lines(tree) == [LINES[0], '{"id":"bd-2","title":"Two","status":"in_progress"}', LINES[2]]
    # the base follows, so the next sync sees no local edit; and it still describes the file
    assert beadsfile.load_base(tree)[0] == (tree / ".beads" / "issues.jsonl").read_text()


def test_a_created_bead_is_appended_and_a_bead_of_another_repo_is_left_out(tree):
    script = Script((201, {"id": "bd-9"}), (200, {"records": [{"id": "bd-9", "title": "New"}]}),
                    (200, {"ok": True}), (200, {"records": []}))
    c = make(tree, script)
    c.create_bead({"title": "New"})
    c.claim("api:bd-4")
    assert script.calls[3][1] == "/v1/sync/records?id=api%3Abd-4"
    assert file_lines(tree) == [*LINES, '{"id":"bd-9","title":"New"}']
    assert not (tree / ".wire" / beadsfile.BASE_FILE).exists()  # no sync yet: no base to keep in step


def test_a_failed_write_through_warns_and_the_command_still_succeeds(tree, capsys):
    down = (503, {"error": {"code": "unavailable", "message": "db"}})
    script = Script((200, {"claimed": True}), down, down, down)
    assert make(tree, script).claim("bd-2") == {"claimed": True}
    assert "not updated" in capsys.readouterr().err and file_lines(tree) == LINES


def test_a_call_replayed_from_the_journal_is_written_through_once(tree, capsys):
    with pytest.raises(Journaled):
        make(tree, Script(*[refused()] * 3)).claim("bd-2")
    up = Script((200, {"claimed": True}), records("bd-2", status="in_progress"), (200, {"alias": "ana"}))
    make(tree, up).whoami()
    assert [(m, p) for m, p, _, _ in up.calls] == [("POST", "/v1/beads/bd-2/claim"),
                                                   ("GET", "/v1/sync/records?id=bd-2"), ("GET", "/v1/whoami")]
    assert [json.loads(line)["id"] for line in file_lines(tree)] == ["bd-1", "bd-2", "bd-3"]
    assert json.loads(file_lines(tree)[1])["status"] == "in_progress"


def test_the_cli_writes_a_beads_line_as_the_server_and_the_merge_driver_do():
    from store.merge import dump_record

    record = {"id": "bd-1", "title": "Caf\u00e9 \u2013 \"quoted\"", "labels": ["a", "b"], "n": 1.5, "x": None,
              "deps": [{"id": "bd-2", "type": "blocks"}], "emoji": "\U0001f600"}
    assert beadsfile.dump_record(record) == dump_record(record)


def test_records_replace_the_last_copy_of_a_line_and_drop_earlier_ones():
    text = '{"id":"a","v":1}\n{"id":"b"}\nnot json\n{"id":"a","v":2}\n'
    out = beadsfile.apply_records(text, [{"id": "a", "v": 3}, {"id": "c"}])
    assert out == '{"id":"b"}\nnot json\n{"id":"a","v":3}\n{"id":"c"}\n'


# -- the base and git --------------------------------------------------------------------------------

def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@x", *args], cwd=cwd, check=True,
                          capture_output=True, text=True).stdout


def test_the_base_counts_only_while_the_file_descends_from_what_wire_wrote(tmp_path):
    git(tmp_path, "init", "-q", "-b", "main")
    beads = tmp_path / ".beads" / "issues.jsonl"
    beads.parent.mkdir()
    beads.write_text('{"id":"bd-1"}\n')
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-qm", "one")
    git(tmp_path, "branch", "old")
    synced = '{"id":"bd-1"}\n{"id":"bd-2"}\n'
    beads.write_text(synced)  # what a sync wrote, and its base
    beadsfile.save_base(tmp_path, synced, synced, beadsfile.head_blob(tmp_path))
    assert beadsfile.load_base(tmp_path) == (synced, "")
    beads.write_text('{"id":"bd-2"}\n')  # a deletion made in the worktree
    assert beadsfile.load_base(tmp_path)[0] == synced
    git(tmp_path, "checkout", "--", ".beads/issues.jsonl")  # the committed file put back: bd-2 not deleted
    assert beadsfile.load_base(tmp_path)[0] is None
    beads.write_text(synced)
    git(tmp_path, "commit", "-qam", "synced")
    beads.write_text('{"id":"bd-2"}\n')
    git(tmp_path, "commit", "-qam", "deleted bd-1")  # committed on top of what wire wrote: a real deletion
    assert beadsfile.load_base(tmp_path)[0] == synced
    git(tmp_path, "checkout", "-q", "old")  # an older file: what it lacks was never deleted
    base, note = beadsfile.load_base(tmp_path)
    assert base is None and "checkout, reset or pull" in note
    (tmp_path / ".wire" / beadsfile.BASE_FILE).write_text("tampered\n")
    assert "damaged" in beadsfile.load_base(tmp_path)[1]


# -- `wire sync` output -------------------------------------------------------------------------------

def run_sync(tree: Path, monkeypatch, script: Script, *args: str):
    from cli import cli

    monkeypatch.chdir(tree)
    return CliRunner().invoke(cli, ["sync", *args], obj=make(tree, script))


def test_a_long_list_of_conflicts_is_summarised_with_counts_and_the_first_ten(tree, monkeypatch):
    conflicts = [{"id": f"bd-{i}", "field": "record", "kept": "server", "reason": "held by bob: not deleted"}
                 for i in range(25)]
    answer = {"sync": 7, "dry_run": False, "created": 0, "updated": 0, "tombstoned": 0, "pulled": 0,
              "unchanged": 3, "total": 3, "conflicts": conflicts, "changes": {}, "records": []}
    result = run_sync(tree, monkeypatch, Script((200, answer)))
    lines = result.output.splitlines()
    assert result.exit_code == 0, result.output
    assert lines[1:3] == ["25 conflicts:", "  bd-0: held by bob: not deleted"]
    assert lines[-1] == "  and 15 more (--json for all)" and len(lines) == 13
    json_result = run_sync(tree, monkeypatch, Script((200, answer)), "--json")
    assert len(json.loads(json_result.output)["conflicts"]) == 25


def test_a_refused_mass_deletion_exits_3_and_lists_what_it_would_remove(tree, monkeypatch):
    refusal = {"error": {"code": "sync_deletes",
                         "message": "this sync would tombstone 30 of the repo's 30 live "
                                    "beads: nothing was changed",
                         "would_delete": [f"bd-{i}" for i in range(30)]}}
    result = run_sync(tree, monkeypatch, Script((409, refusal)))
    assert result.exit_code == 3
    assert "30 would tombstone:" in result.output and "and 20 more (--json for all)" in result.output
    assert file_lines(tree) == LINES


def test_a_sync_sends_the_file_with_its_base_and_writes_back_what_comes(tree, monkeypatch):
    beadsfile.save_base(tree, LINES[0] + "\n", LINES[0] + "\n", None)
    answer = {"sync": 1, "dry_run": False, "created": 0, "updated": 0, "tombstoned": 0, "pulled": 1,
              "unchanged": 2, "total": 3, "conflicts": [], "changes": {},
              "records": [{"id": "bd-4", "title": "New"}]}
    script = Script((200, answer))
    result = run_sync(tree, monkeypatch, script)
    assert result.exit_code == 0, result.output
    body = script.calls[0][2]
    assert ((body["jsonl"], body["base"], body["mode"])
            == ("".join(x + "\n" for x in LINES), LINES[0] + "\n", "full"))
    assert file_lines(tree) == [*LINES, '{"id":"bd-4","title":"New"}']
    assert beadsfile.load_base(tree)[0] == (tree / ".beads" / "issues.jsonl").read_text()


# -- the git merge driver ------------------------------------------------------------------------------

def test_guard_install_registers_the_beads_merge_driver_and_uninstall_removes_it(tmp_path, monkeypatch):
    from cli import cli

    git(tmp_path, "init", "-q")
    monkeypatch.chdir(tmp_path)
    assert CliRunner().invoke(cli, ["guard", "install"]).exit_code == 0
    assert "guard merge %O %A %B %P" in git(tmp_path, "config", "merge.beads.driver")
    assert git(tmp_path, "check-attr", "merge", ".beads/issues.jsonl").strip().endswith("merge: beads")
    assert CliRunner().invoke(cli, ["guard", "uninstall"]).exit_code == 0
    assert git(tmp_path, "check-attr", "merge", ".beads/issues.jsonl").strip().endswith("unspecified")


def test_the_pre_commit_guard_never_checks_the_beads_file(tmp_path):
    from cli.guard import staged_paths

    git(tmp_path, "init", "-q")
    (tmp_path / ".beads").mkdir()
    (tmp_path / ".beads" / "issues.jsonl").write_text("{}\n")
    (tmp_path / "app.py").write_text("x\n")
    git(tmp_path, "add", ".")
    assert staged_paths(tmp_path) == ["app.py"]


def test_an_offline_edit_reaches_the_server_once_with_its_base_line(tree):
    beadsfile.save_base(tree, LINES[1] + "\n", "", None)
    with pytest.raises(Journaled):
        make(tree, Script(*[refused()] * 3)).update_bead("bd-2", {"title": "Edited offline"})
    answer = {"created": 0, "updated": 1, "unchanged": 0, "conflicts": [],
              "records": [{"id": "bd-2", "title": "Edited offline", "status": "open", "updated_at": "x"}]}
    up = Script((200, answer), (200, {"alias": "ana"}))
    make(tree, up).whoami()
    body = up.calls[0][2]
    assert (body["mode"], body["pull"], body["base"]) == ("incremental", False, LINES[1] + "\n")
    assert [json.loads(line)["id"] for line in body["jsonl"].splitlines()] == ["bd-2"]
    assert json.loads(file_lines(tree)[1])["updated_at"] == "x"  # the server's answer is the line now
    assert not offline.journal_path(tree).exists()
    again = Script((200, {"alias": "ana"}))
    make(tree, again).whoami()
    assert [p for _, p, _, _ in again.calls] == ["/v1/whoami"]  # applied once: nothing left to replay
    assert ServerUnreachable  # the import is used by the journal fixtures above
