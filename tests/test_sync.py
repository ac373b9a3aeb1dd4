"""Beads sync: real beads files import with nothing lost; malformed files are rejected whole."""

from __future__ import annotations

import json

import pytest

from store.models import Bead, Dependency
from tests.conftest import BEADS_DATA, beads_file

SHARED_FILES = sorted(p.name for p in BEADS_DATA.glob("*.jsonl"))


def records(name: str) -> list[dict]:
    return [json.loads(line) for line in beads_file(name).splitlines() if line.strip()]


def _deps(record: dict) -> list[tuple[str, str]]:
    return sorted((d["depends_on_id"], d.get("type", "blocks")) for d in record.get("dependencies") or [])


def test_the_shared_files_are_all_there():
    assert len(SHARED_FILES) >= 7


@pytest.mark.parametrize("name", SHARED_FILES)
def test_every_shared_beads_file_imports_with_nothing_lost(make_agent, name):
    agent = make_agent(project="imp", origin=f"git@github.com:acme/{name.split('.')[0]}.git")
    originals = records(name)
    r = agent.sync(beads_file(name))
    assert r.status_code == 200, r.json
    assert r.json["created"] == len(originals) and r.json["conflicts"] == []
    for original in originals:
        got = agent.get(f"/beads/{original['id']}").json
        for key, value in original.items():
            if key == "dependencies":
                assert _deps(got) == sorted(_deps(original) + [(t, "blocks") for t in original.get("blocked_by", [])])
                assert all(d in got["dependencies"] for d in value), original["id"]
            elif key == "comments":
                assert [(c["id"], c["text"], c.get("author")) for c in got["comments"]] == \
                       [(c["id"], c["text"], c.get("author")) for c in value]
            else:
                assert got[key] == value, (original["id"], key)


def test_blocked_by_lists_become_blocking_dependencies(make_agent):
    agent = make_agent(project="variant")
    agent.sync(beads_file("mcp-agent-mail-beads-variant.jsonl"))
    got = agent.get("/beads/bd-2").json
    assert {"depends_on_id": "bd-1", "type": "blocks", "issue_id": "bd-2"} in got["dependencies"]
    assert got["blocked_by"] == ["bd-1"]


def test_a_second_identical_upload_changes_nothing(make_agent):
    agent = make_agent(project="again")
    text = beads_file("mcp-agent-mail-issues.jsonl")
    agent.sync(text)
    r = agent.sync(text)
    assert (r.json["created"], r.json["updated"], r.json["tombstoned"]) == (0, 0, 0)
    assert r.json["unchanged"] == len(records("mcp-agent-mail-issues.jsonl"))


def _line(**fields) -> str:
    base = {"id": "bd-1", "title": "One", "status": "open", "priority": 2, "issue_type": "task",
            "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z"}
    return json.dumps({**base, **fields})


def test_a_full_upload_tombstones_beads_absent_from_the_file(make_agent):
    agent = make_agent(project="tomb")
    agent.sync("\n".join([_line(id="bd-1"), _line(id="bd-2")]))
    r = agent.sync(_line(id="bd-1"))
    assert r.json["tombstoned"] == 1
    assert agent.get("/beads/bd-2").json["status"] == "tombstone"
    assert "bd-2" not in [b["id"] for b in agent.get("/beads").json]


def test_an_incremental_upload_tombstones_nothing(make_agent):
    agent = make_agent(project="incr")
    agent.sync("\n".join([_line(id="bd-1"), _line(id="bd-2")]))
    r = agent.sync(_line(id="bd-1", title="Renamed", updated_at="2026-02-01T00:00:00Z"), mode="incremental")
    assert (r.json["updated"], r.json["tombstoned"]) == (1, 0)
    assert agent.get("/beads/bd-2").json["status"] == "open"
    assert agent.get("/beads/bd-1").json["title"] == "Renamed"


def test_a_record_older_than_the_servers_is_a_conflict_not_applied(make_agent):
    agent = make_agent(project="older")
    agent.sync(_line(title="New", updated_at="2026-03-01T00:00:00Z"))
    r = agent.sync(_line(title="Old", updated_at="2026-02-01T00:00:00Z"))
    assert [c["id"] for c in r.json["conflicts"]] == ["bd-1"]
    assert agent.get("/beads/bd-1").json["title"] == "New"


def test_server_side_edits_win_over_a_stale_file(make_agent):
    agent = make_agent(project="edits")
    agent.sync(_line())
    agent.post("/beads/bd-1/comments", {"text": "server-side note"})
    r = agent.sync(_line(title="Stale copy"))
    assert [c["id"] for c in r.json["conflicts"]] == ["bd-1"]
    assert agent.get("/beads/bd-1").json["comments"][0]["text"] == "server-side note"


@pytest.mark.parametrize("bad_line, fragment", [
    ("{not json", "not valid JSON"),
    (json.dumps({"id": "bd-9", "title": 5}), "title must be a string"),
    (json.dumps({"id": "bd-9", "title": "x", "priority": "urgent!"}), "priority"),
    (json.dumps({"id": "bd-9", "title": "x", "labels": "a,b"}), "labels"),
    (json.dumps({"id": "bd-9", "title": "x", "status": "doing"}), "status"),
    (json.dumps({"id": "bd-9", "title": "x", "dependencies": [{"type": "blocks"}]}), "depends_on_id"),
    (json.dumps({"title": "no id"}), "id is required"),
    (json.dumps(["a", "list"]), "JSON object"),
])
def test_a_malformed_file_is_rejected_whole_naming_the_line(make_agent, bad_line, fragment):
    agent = make_agent(project="bad")
    text = "\n".join([_line(id="bd-1"), _line(id="bd-2"), bad_line])
    r = agent.sync(text)
    assert r.status_code == 422
    assert r.json["error"]["code"] == "sync_rejected"
    assert r.json["error"]["line"] == 3
    assert "line 3" in r.json["error"]["message"] and fragment in r.json["error"]["message"]
    assert Bead.select().count() == 0 and Dependency.select().count() == 0


def test_an_oversize_line_is_rejected(app, make_agent):
    agent = make_agent(project="huge")
    r = agent.sync(_line(description="x" * (app.extensions["beadwire"].settings.max_line + 10)))
    assert r.status_code == 422 and "longer than" in r.json["error"]["message"]


def test_sync_needs_a_string_body(make_agent):
    agent = make_agent(project="types")
    r = agent.post("/sync", {"jsonl": ["not", "a", "string"]})
    assert r.status_code == 422 and r.json["error"]["code"] == "invalid"


def test_ids_are_kept_exactly_including_case(make_agent):
    agent = make_agent(project="case")
    agent.sync("\n".join([_line(id="gt-polecat-toast", title="lower"), _line(id="gt-polecat-Toast", title="upper")]))
    assert agent.get("/beads/gt-polecat-toast").json["title"] == "lower"
    assert agent.get("/beads/gt-polecat-Toast").json["title"] == "upper"


def test_new_beads_take_the_prefix_the_repo_uses(make_agent):
    agent = make_agent(project="prefix")
    agent.sync(beads_file("gastown-issues.jsonl"))
    assert agent.create("A new one").startswith("gt-")
