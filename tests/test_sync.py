"""Beads sync through the API: real beads files round-trip with nothing lost, the three-way merge
against the worktree's base, the claim rules, the guard rails, undo, and what people are told.

The merge tests run on SQLite and PostgreSQL (`make_db_agent`)."""

from __future__ import annotations

import json

import pytest

from store.models import Bead, Claim, Dependency, Event, Outbox, SyncChange, SyncRun
from tests.conftest import BEADS_DATA, BEADS_FILES, beads_file


def records(name: str) -> list[dict]:
    return [json.loads(line) for line in beads_file(name).splitlines() if line.strip()]


def _deps(record: dict) -> list[tuple[str, str]]:
    return sorted((d["depends_on_id"], d.get("type", "blocks")) for d in record.get("dependencies") or [])


def test_the_beads_files_are_all_in_the_repository():
    assert sorted(p.name for p in BEADS_DATA.glob("*.jsonl")) == sorted(BEADS_FILES)


@pytest.mark.parametrize("name", BEADS_FILES)
def test_every_beads_file_imports_with_nothing_lost(make_agent, name):
    agent = make_agent(project="imp", origin=f"git@github.com:acme/{name.split('.')[0]}.git")
    originals = records(name)
    r = agent.sync(beads_file(name))
    assert r.status_code == 200, r.json
    assert r.json["created"] == len(originals) and r.json["conflicts"] == []
    for original in originals:
        got = agent.get(f"/beads/{original['id']}").json
        for key, value in original.items():
            if key == "dependencies":
                blocked_by = [(t, "blocks") for t in original.get("blocked_by", [])]
                assert _deps(got) == sorted(_deps(original) + blocked_by)
                assert all(d in got["dependencies"] for d in value), original["id"]
            elif key == "comments":
                assert [(c["id"], c["text"], c.get("author")) for c in got["comments"]] == \
                       [(c["id"], c["text"], c.get("author")) for c in value]
            else:
                assert got[key] == value, (original["id"], key)


def _exported(agent, ids: list[str]) -> dict[str, dict]:
    out = {}
    for start in range(0, len(ids), 200):
        query = "&".join(f"id={i}" for i in ids[start:start + 200])
        r = agent.get(f"/sync/records?{query}")
        assert r.status_code == 200, r.json
        out.update({rec["id"]: rec for rec in r.json["records"]})
    return out


@pytest.mark.parametrize("name", BEADS_FILES)
def test_every_beads_file_is_written_back_exactly_as_it_came(make_db_agent, name):
    origin = f"git@github.com:acme/{name.split('.')[0]}.git"
    first = make_db_agent(project="trip", origin=origin)
    originals = {r["id"]: r for r in records(name)}
    assert first.sync(beads_file(name)).status_code == 200
    # what write-through and sync write into a file: every record equal to the original as JSON
    assert _exported(first, list(originals)) == originals
    # a worktree of the same repo with an empty file gets every live bead, exactly as written
    second = make_db_agent(project="trip", origin=origin, alias="second")
    r = second.sync("")
    live = {i: rec for i, rec in originals.items() if rec.get("status") != "tombstone"}
    assert {rec["id"]: rec for rec in r.json["records"]} == live
    assert (r.json["tombstoned"], r.json["created"], r.json["updated"]) == (0, 0, 0)


# -- the three-way merge ------------------------------------------------------------------------

def rec(ident: str = "bd-1", **fields) -> dict:
    return {"id": ident, "title": f"Bead {ident}", "status": "open", "priority": 2, "issue_type": "task",
            "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z", **fields}


def jsonl(*recs: dict) -> str:
    return "".join(json.dumps(r) + "\n" for r in recs)


def many(n: int) -> list[dict]:
    return [rec(f"bd-{i}") for i in range(1, n + 1)]


def written(answer: dict) -> dict[str, dict]:
    return {r["id"]: r for r in answer["records"]}


def test_a_bead_created_elsewhere_is_pulled_into_the_file_never_tombstoned(make_db_agent):
    alice = make_db_agent(project="pull")
    text = jsonl(*many(3))
    alice.sync(text)
    made = alice.create("Made with wire create")
    r = alice.sync(text, base=text)
    assert (r.json["tombstoned"], r.json["pulled"]) == (0, 1)
    assert written(r.json)[made]["title"] == "Made with wire create"
    assert "repo" not in written(r.json)[made] and "claim" not in written(r.json)[made]
    assert alice.get(f"/beads/{made}").json["status"] == "open"


def test_file_edits_are_pushed_server_edits_pulled_and_different_fields_both_kept(make_db_agent):
    alice = make_db_agent(project="both")
    base = jsonl(*many(3))
    alice.sync(base)
    alice.patch("/beads/bd-1", {"priority": 0})
    edited = jsonl(rec("bd-1", title="Renamed in the file", updated_at="2026-01-02T00:00:00Z"), *many(3)[1:])
    r = alice.sync(edited, base=base)
    assert (r.json["updated"], r.json["conflicts"]) == (1, [])
    bead = alice.get("/beads/bd-1").json
    assert (bead["title"], bead["priority"]) == ("Renamed in the file", 0)
    in_file = written(r.json)["bd-1"]
    assert (in_file["title"], in_file["priority"]) == ("Renamed in the file", 0)


def test_the_same_field_edited_on_both_sides_keeps_the_later_edit_and_the_other_in_history(make_db_agent):
    alice = make_db_agent(project="same")
    base = jsonl(*many(2))
    alice.sync(base)
    alice.patch("/beads/bd-1", {"title": "Server title"})  # now: later than the file's edit below
    older = jsonl(rec("bd-1", title="File title", updated_at="2026-01-02T00:00:00Z"), rec("bd-2"))
    r = alice.sync(older, base=base)
    (conflict,) = r.json["conflicts"]
    assert (conflict["field"], conflict["kept"], conflict["value"], conflict["lost"]) == \
           ("title", "server", "Server title", "File title")
    assert alice.get("/beads/bd-1").json["title"] == "Server title"
    assert written(r.json)["bd-1"]["title"] == "Server title"
    history = [json.loads(e.data) for e in Event.select().where(Event.kind == "bead.sync_conflict")]
    assert history[0]["lost"] == "File title"  # nothing is gone: the bead's history has it
    base = alice.sync("").json["records"]  # the server's state as the file now has it
    later = jsonl(*[{**b, "title": "Later file title", "updated_at": "2999-01-01T00:00:00Z"}
                    if b["id"] == "bd-1" else b for b in base])
    alice.patch("/beads/bd-1", {"title": "Earlier server title"})
    r = alice.sync(later, base=jsonl(*base))
    assert r.json["conflicts"][0]["kept"] == "file"
    assert alice.get("/beads/bd-1").json["title"] == "Later file title"


def test_a_bead_is_tombstoned_only_when_the_base_had_it_and_the_file_lost_it(make_db_agent):
    alice = make_db_agent(project="lost")
    beads = many(12)
    base = jsonl(*beads)
    alice.sync(base)
    r = alice.sync(jsonl(*beads[1:]), base=base)
    assert (r.json["tombstoned"], r.json["changes"]["tombstoned"]) == (1, ["bd-1"])
    bead = alice.get("/beads/bd-1").json
    assert bead["status"] == "tombstone" and bead["deleted_by"] == alice.alias


@pytest.mark.parametrize("how", ["no base", "empty file", "incremental"])
def test_without_a_base_from_an_empty_file_or_incrementally_nothing_is_deleted(make_db_agent, how):
    alice = make_db_agent(project="keep")
    beads = many(12)
    alice.sync(jsonl(*beads))
    options = {"no base": ("", jsonl(*beads[:1]), "full"), "empty file": (jsonl(*beads), "", "full"),
               "incremental": (jsonl(*beads), jsonl(*beads[:1]), "incremental")}
    base, text, mode = options[how]
    r = alice.sync(text, mode=mode, **({"base": base} if base else {}))
    assert r.json["tombstoned"] == 0 and r.json["conflicts"] == []
    # back in the file
    assert sorted(written(r.json)) == sorted(b["id"] for b in beads if jsonl(b) not in text)
    assert all(b["status"] == "open" for b in alice.get("/beads").json)


def test_a_file_edited_after_a_close_does_not_reopen_the_bead(make_db_agent):
    alice = make_db_agent(project="reopen")
    base = jsonl(*many(2))
    alice.sync(base)
    alice.post("/beads/bd-1/close", {"reason": "done"})
    later = jsonl(rec("bd-1", title="Edited later", updated_at="2999-01-01T00:00:00Z"), rec("bd-2"))
    r = alice.sync(later, base=base)
    bead = alice.get("/beads/bd-1").json
    assert (bead["status"], bead["close_reason"], bead["title"]) == ("closed", "done", "Edited later")
    assert (written(r.json)["bd-1"]["status"], r.json["conflicts"]) == ("closed", [])
    stale = jsonl({**written(r.json)["bd-1"], "status": "open", "updated_at": "2026-01-01T00:00:00Z"},
                  rec("bd-2"))
    r = alice.sync(stale, base=jsonl(written(r.json)["bd-1"], rec("bd-2")))  # an old line git put back
    assert alice.get("/beads/bd-1").json["status"] == "closed"
    assert written(r.json)["bd-1"]["status"] == "closed"


def test_a_file_record_older_than_the_servers_is_replaced_by_the_servers(make_db_agent):
    alice = make_db_agent(project="older")
    alice.sync(jsonl(rec(title="New", updated_at="2026-03-01T00:00:00Z")))
    r = alice.sync(jsonl(rec(title="Old", updated_at="2026-02-01T00:00:00Z")))
    assert (r.json["updated"], r.json["conflicts"]) == (0, [])
    assert written(r.json)["bd-1"]["title"] == "New" and alice.get("/beads/bd-1").json["title"] == "New"


# -- the claim rules ----------------------------------------------------------------------------------

def test_a_stale_file_cannot_close_or_delete_a_bead_another_agent_holds(make_db_agent):
    alice = make_db_agent(project="held")
    bob = make_db_agent(project="held", alias="bob")
    beads = many(12)
    base = jsonl(*beads)
    alice.sync(base)
    assert bob.post("/beads/bd-1/claim").status_code == 200
    assert bob.post("/beads/bd-2/claim").status_code == 200
    stale = jsonl(rec("bd-1", title="Renamed", status="closed", closed_at="2026-01-02T00:00:00Z",
                      updated_at="2026-01-02T00:00:00Z"), *beads[2:])
    r = alice.sync(stale, base=base, allow_delete=True)
    assert sorted((c["id"], c["field"]) for c in r.json["conflicts"]) == [
        ("bd-1", "status"), ("bd-2", "record")]
    assert all("held by bob" in c["reason"] for c in r.json["conflicts"])
    one, two = alice.get("/beads/bd-1").json, alice.get("/beads/bd-2").json
    assert (one["status"], one["claim"]["alias"], one["title"]) == ("in_progress", "bob", "Renamed")
    assert (two["status"], two["claim"]["alias"]) == ("in_progress", "bob")
    in_file = written(r.json)
    assert (in_file["bd-1"]["status"], in_file["bd-2"]["status"]) == ("in_progress", "in_progress")
    notices = [m["body"] for m in bob.get("/mail?unread=1").json if m["kind"] == "notice"]
    assert any("bd-1 (you hold it) was changed" in n and "title" in n for n in notices)


def test_the_holder_closing_its_bead_in_the_file_releases_its_claim(make_db_agent):
    alice = make_db_agent(project="mine")
    base = jsonl(*many(2))
    alice.sync(base)
    alice.post("/beads/bd-1/claim")
    base = jsonl(*alice.sync("").json["records"])
    closed = [{**b, "status": "closed", "closed_at": "2999-01-01T00:00:00Z",
               "updated_at": "2999-01-01T00:00:00Z"}
              if b["id"] == "bd-1" else b for b in map(json.loads, base.splitlines())]
    r = alice.sync(jsonl(*closed), base=base)
    assert r.json["updated"] == 1 and r.json["conflicts"] == []
    assert alice.get("/beads/bd-1").json["status"] == "closed" and Claim.select().count() == 0


# -- guard rails, dry run ----------------------------------------------------------------------------

def test_deleting_many_beads_or_a_claimed_one_needs_allow_delete_and_otherwise_changes_nothing(make_db_agent):
    alice = make_db_agent(project="guard")
    beads = many(30)
    base = jsonl(*beads)
    alice.sync(base)
    runs = SyncRun.select().count()
    r = alice.sync(jsonl(*beads[:5]), base=base)
    assert r.status_code == 409 and r.json["error"]["code"] == "sync_deletes"
    assert len(r.json["error"]["would_delete"]) == 25
    assert "25 of the repo's 30 live beads" in r.json["error"]["message"]
    assert Bead.select().where(Bead.status == "tombstone").count() == 0 and SyncRun.select().count() == runs
    alice.post("/beads/bd-7/claim")  # one deletion is quiet, unless the bead is claimed
    now = alice.sync("").json["records"]  # the file as write-through leaves it: bd-7 in progress
    without_7 = jsonl(*[b for b in now if b["id"] != "bd-7"])
    r = alice.sync(without_7, base=jsonl(*now))
    assert r.status_code == 409 and r.json["error"]["claimed"] == ["bd-7"]
    r = alice.sync(without_7, base=jsonl(*now), allow_delete=True)
    assert r.json["tombstoned"] == 1 and Claim.select().count() == 0


def test_a_dry_run_reports_both_ways_and_changes_nothing(make_db_agent):
    alice = make_db_agent(project="dry")
    beads = many(30)
    base = jsonl(*beads)
    alice.sync(base)
    made = alice.create("Server side")
    ids = [b["id"] for b in beads] + [made]
    before = (_exported(alice, ids), SyncRun.select().count(), Event.select().count())
    text = jsonl(rec("bd-1", title="Edited", updated_at="2026-01-02T00:00:00Z"), rec("bd-99"), *beads[1:5])
    r = alice.sync(text, base=base, dry_run=True)
    assert r.json["dry_run"] is True and r.json["sync"] is None and "records" not in r.json
    changes = r.json["changes"]
    assert (changes["created"], changes["updated"], changes["pulled"]) == (["bd-99"], ["bd-1"], [made])
    assert len(changes["tombstoned"]) == 25 and r.json["needs_allow_delete"] is True
    after = (_exported(alice, ids), SyncRun.select().count(), Event.select().count())
    assert after == before and alice.get("/beads/bd-99").status_code == 404


# -- undo, history, notices ----------------------------------------------------------------------------

def test_undo_puts_back_what_a_sync_changed_as_a_new_change(make_db_agent):
    alice = make_db_agent(project="undo")
    bob = make_db_agent(project="undo", alias="bob")
    beads = many(30)
    base = jsonl(*beads)
    alice.sync(base)
    alice.post("/beads/bd-3/claim")
    base = jsonl(*alice.sync("").json["records"])
    now = [json.loads(line) for line in base.splitlines()]
    renamed = {**now[3], "title": "Renamed", "updated_at": "2026-01-02T00:00:00Z"}
    # bd-1..bd-3 and bd-11..bd-30 deleted, one renamed, one new
    text = jsonl(*now[4:10], renamed, rec("bd-new"))
    r = alice.sync(text, base=base, allow_delete=True)
    run = r.json["sync"]
    assert (r.json["tombstoned"], r.json["updated"], r.json["created"], r.json["mass"]) == (23, 1, 1, True)
    alice.patch("/beads/bd-12", {"title": "Changed since"})  # a tombstone edited afterwards stays as it is
    undone = alice.post(f"/sync/{run}/undo")
    assert undone.status_code == 200, undone.json
    assert undone.json["restored"] == 24 and [c["id"] for c in undone.json["conflicts"]] == ["bd-12"]
    assert {b["id"]: b["status"] for b in alice.get("/beads?all=1&limit=100").json}["bd-1"] == "open"
    assert alice.get("/beads/bd-3").json["claim"]["alias"] == alice.alias  # its claim is back
    assert alice.get("/beads/bd-4").json["title"] == "Bead bd-4"
    assert alice.get("/beads/bd-new").json["status"] == "tombstone"
    assert {rec["id"] for rec in undone.json["records"]} >= {"bd-1", "bd-3", "bd-4", "bd-new"}
    history = alice.get("/sync/history").json
    assert [(h["kind"], h["undo_of"], h["undone_by"]) for h in history[:2]] == \
           [("undo", run, None), ("sync", None, undone.json["sync"])]
    assert alice.post(f"/sync/{run}/undo").json["error"]["code"] == "already_undone"
    assert bob.post("/sync/999999/undo").status_code == 404


def test_subscribers_and_holders_are_told_and_activity_gets_one_grouped_event(make_db_agent):
    alice = make_db_agent(project="tell")
    bob = make_db_agent(project="tell", alias="bob")
    base = jsonl(*many(3))
    alice.sync(base)
    bob.post("/beads/bd-1/subscribe")
    bob.post("/beads/bd-2/claim")
    events = Outbox.select().where(Outbox.kind == "beads.synced").count()
    text = jsonl(rec("bd-1", status="closed", closed_at="2026-01-02T00:00:00Z",
                     updated_at="2026-01-02T00:00:00Z"),
                 rec("bd-2", description="more detail", updated_at="2026-01-02T00:00:00Z"), rec("bd-3"))
    r = alice.sync(text, base=base)
    assert r.json["updated"] == 2
    notices = [m["body"] for m in bob.get("/mail?unread=1").json if m["kind"] == "notice"]
    assert any(n.startswith("bd-1 is now closed (synced by") for n in notices)
    assert any(n.startswith("bd-2 (you hold it) was changed") and "description" in n for n in notices)
    synced = Outbox.select().where(Outbox.kind == "beads.synced")
    (grouped,) = [json.loads(o.payload) for o in synced][events:]
    assert (grouped["sync"], grouped["updated"], grouped["mass"]) == (r.json["sync"], 2, False)
    history = Event.select().where(Event.bead_ref == "bd-2").order_by(Event.id)
    assert [e.kind for e in history][-1] == "bead.synced"


def test_the_sync_history_is_purged_after_its_window(db_app, make_db_agent):
    from store import retention
    from store.util import now

    alice = make_db_agent(project="old")
    alice.sync(jsonl(*many(2)))
    SyncRun.update(created_ts=now() - 31 * 86400).execute()
    alice.sync(jsonl(rec("bd-1", title="x", updated_at="2026-02-01T00:00:00Z"), rec("bd-2")))
    assert retention.purge_history(db_app.extensions["beadwire"])["syncs"] == 1
    assert [h["counts"]["updated"] for h in alice.get("/sync/history").json] == [1]
    assert SyncChange.select().join(SyncRun).where(SyncRun.created_ts < now() - 86400).count() == 0


def test_records_are_given_only_for_beads_of_the_callers_repo(make_db_agent):
    shop = make_db_agent(project="repos")
    api = make_db_agent(project="repos", origin="git@github.com:acme/api.git", alias="api")
    shop.sync(jsonl(rec("bd-1")))
    api.sync(jsonl(rec("bd-2")))
    assert [r["id"] for r in shop.get("/sync/records?id=bd-1&id=bd-2&id=nope").json["records"]] == ["bd-1"]
    assert shop.get("/sync/records").status_code == 422


# -- malformed files --------------------------------------------------------------------------------

@pytest.mark.parametrize("bad_line, fragment", [
    ("{not json", "line 3, column 2: not valid JSON (expecting property name enclosed in double quotes)"),
    ('{"id": "bd-9", "title": "cut', "line 3, column 25: not valid JSON (unterminated string)"),
    (json.dumps({"id": "bd-9", "title": 5}), "line 3: title must be a string"),
    (json.dumps({"id": "bd-9", "title": "x", "priority": "urgent!"}), "priority"),
    (json.dumps({"id": "bd-9", "title": "x", "labels": "a,b"}), "labels"),
    (json.dumps({"id": "bd-9", "title": "x", "status": "doing"}), "status"),
    (json.dumps({"id": "bd-9", "title": "x", "dependencies": [{"type": "blocks"}]}), "depends_on_id"),
    (json.dumps({"title": "no id"}), "id is required"),
    (json.dumps(["a", "list"]), "JSON object"),
])
def test_a_malformed_file_is_rejected_whole_naming_the_line(make_agent, bad_line, fragment):
    agent = make_agent(project="bad")
    text = "\n".join([json.dumps(rec("bd-1")), json.dumps(rec("bd-2")), bad_line])
    r = agent.sync(text)
    assert r.status_code == 422
    assert r.json["error"]["code"] == "sync_rejected"
    assert r.json["error"]["line"] == 3
    message = r.json["error"]["message"]
    assert fragment in message and message.count("line 3") == 1 and " at at " not in message
    assert Bead.select().count() == 0 and Dependency.select().count() == 0


def test_an_oversize_line_is_rejected(app, make_agent):
    agent = make_agent(project="huge")
    r = agent.sync(json.dumps(rec(description="x" * (app.extensions["beadwire"].settings.max_line + 10))))
    assert r.status_code == 422 and "longer than" in r.json["error"]["message"]


def test_sync_needs_a_string_body(make_agent):
    agent = make_agent(project="types")
    r = agent.post("/sync", {"jsonl": ["not", "a", "string"]})
    assert r.status_code == 422 and r.json["error"]["code"] == "invalid"


def test_ids_are_kept_exactly_including_case(make_agent):
    agent = make_agent(project="case")
    agent.sync(jsonl(rec("gt-polecat-toast", title="lower"), rec("gt-polecat-Toast", title="upper")))
    assert agent.get("/beads/gt-polecat-toast").json["title"] == "lower"
    assert agent.get("/beads/gt-polecat-Toast").json["title"] == "upper"


def test_new_beads_take_the_prefix_the_repo_uses(make_agent):
    agent = make_agent(project="prefix")
    agent.sync(beads_file("gastown-issues.jsonl"))
    assert agent.create("A new one").startswith("gt-")


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
    r = agent.sync(text, base=text)
    assert (r.json["created"], r.json["updated"], r.json["tombstoned"], r.json["pulled"]) == (0, 0, 0, 0)
    assert r.json["unchanged"] == len(records("mcp-agent-mail-issues.jsonl"))
