"""Claims over HTTP, every row of the claims table in DESIGN.md, on SQLite and on PostgreSQL.

| bead state                       | holder claims again | someone else claims                          |
|----------------------------------|---------------------|----------------------------------------------|
| open, unclaimed                  | -                   | succeeds                                     |
| in_progress (claimed)            | succeeds, idempotent| 409 naming the holder; jump-in takes it      |
| blocked / deferred / open epic   | 409                 | 409                                          |
| closed / tombstone               | 409                 | 409                                          |
"""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from store import db
from store.models import Bead, Claim, Outbox, Project, Workspace

#: Claims are decided in SQL, so every test runs on SQLite and on PostgreSQL. Redis only carries
#: presence and mail here, and its scripts run against a real server in test_lua.py: fakeredis is enough.
pytestmark = pytest.mark.parametrize("redis", [pytest.param("fake", marks=pytest.mark.fake)], indirect=True)


def ids(beads):
    return [b["id"] for b in beads]


def stamp(delta: timedelta = timedelta()) -> str:
    return (datetime.now(UTC) + delta).strftime("%Y-%m-%dT%H:%M:%SZ")


def record(bead_id, **fields):
    return json.dumps({"id": bead_id, "title": bead_id, "status": "open", "priority": 2, "issue_type": "task",
                       "created_at": stamp(timedelta(hours=-1)), "updated_at": stamp(), **fields})


def claim_rows(bead_id):
    with db.database.connection_context():
        return list(Claim.select().join(Bead).where(Bead.ref == bead_id))


def outbox_for(workspace_id, event):
    """Notices addressed to a workspace about `event` (claim.jumped, claim.taken_stale), as committed."""
    with db.database.connection_context():
        rows = Outbox.select().where(Outbox.recipient_id == workspace_id, Outbox.kind == "notice")
        return [p["data"] for p in (json.loads(r.payload) for r in rows) if p["data"].get("event") == event]


def mailbox(app, agent):
    """(event, notice details) of the notices in an agent's mailbox stream."""
    rs = app.extensions["beadwire"].redis
    key = rs.keys.mailbox_key(agent.info["project"]["id"], agent.info["workspace"]["id"])
    entries = [json.loads(fields["data"]) for _, fields in rs.client.xrange(key)
               if fields["kind"] == "notice"]
    return [(data["data"].get("event"), data["data"]) for data in entries]


def assert_refused(response, *mentions):
    assert response.status_code == 409, response.json
    assert response.json["error"]["code"] == "claim_conflict"
    for text in mentions:
        assert text in response.json["error"]["message"]


@pytest.fixture
def team(make_pg_agent):
    """ana (Ana Lovelace) and bob (Bob Byte) in one project and repo."""
    return make_pg_agent(alias="ana", human="Ana Lovelace"), make_pg_agent(alias="bob", human="Bob Byte")


# -- open, unclaimed ------------------------------------------------------------------------------

def test_anyone_can_claim_an_open_unclaimed_bead(team):
    ana, bob = team
    bead = ana.create("Fix login")
    r = bob.post(f"/beads/{bead}/claim")
    assert r.status_code == 200
    assert (r.json["claimed"], r.json["already_held"], r.json["previous"]) == (True, False, None)
    assert r.json["bead"]["status"] == "in_progress"
    assert r.json["bead"]["assignee"] == "bob"
    assert r.json["bead"]["claim"]["alias"] == "bob"
    assert ana.get(f"/beads/{bead}").json["claim"]["alias"] == "bob"
    assert ids(bob.get("/mine").json) == [bead]
    assert [(c["bead"], c["alias"], c["stale"]) for c in ana.get("/claims").json] == [(bead, "bob", False)]
    assert bead not in ids(ana.get("/ready").json)


# -- in progress ------------------------------------------------------------------------------------

def test_claiming_again_as_the_holder_is_idempotent(team):
    ana, _ = team
    bead = ana.create("Fix login")
    first = ana.post(f"/beads/{bead}/claim")
    again = ana.post(f"/beads/{bead}/claim")
    assert again.status_code == 200
    assert (again.json["claimed"], again.json["already_held"]) == (True, True)
    assert again.json["bead"]["claim"]["since"] == first.json["bead"]["claim"]["since"]
    assert len(claim_rows(bead)) == 1


@pytest.mark.parametrize("key", [None, "claim-body-1"])
def test_a_claim_body_means_the_same_whoever_reads_it_first(team, key):
    """A plain claim's body (none, or `{}`) is told from the WSGI environ and input alone; with an
    Idempotency-Key werkzeug reads the body first (its fingerprint). Either way any other body runs
    the schema: a 2-byte array is refused, a jump-in counts."""
    ana, bob = team
    bead = ana.create("Fix login")

    def claim(agent, n, **body):
        headers = {**agent._h(), **({"Idempotency-Key": f"{key}-{n}"} if key else {})}
        return agent.client.post(f"/v1/beads/{bead}/claim", headers=headers, **body)

    none = claim(ana, 1)
    assert none.status_code == 200 and none.json["already_held"] is False
    empty = claim(ana, 2, data=b"{}", content_type="application/json")
    assert empty.status_code == 200 and empty.json["already_held"] is True
    refused = claim(bob, 3, data=b"[]", content_type="application/json")
    assert refused.status_code == 400, refused.json
    taken = claim(bob, 4, json={"jump_in": "prod is down"})
    assert taken.status_code == 200 and taken.json["previous"]["alias"] == "ana"
    assert taken.json["bead"]["claim"]["reason"] == "prod is down"


def test_a_bead_held_by_someone_else_is_refused_with_the_holders_name(team):
    ana, bob = team
    bead = ana.create("Fix login")
    ana.post(f"/beads/{bead}/claim")
    r = bob.post(f"/beads/{bead}/claim")
    assert r.status_code == 409
    error = r.json["error"]
    assert error["code"] == "claim_conflict"
    assert error["message"] == f"{bead} is being worked on by ana (Ana Lovelace)"
    assert error["holder"] == {"alias": "ana", "human": "Ana Lovelace"}
    assert bob.get(f"/beads/{bead}").json["claim"]["alias"] == "ana"
    assert bob.get("/mine").json == []


def test_jumping_in_takes_the_bead_and_tells_the_previous_holder(team, pg_app, pg_worker):
    ana, bob = team
    bead = ana.create("Fix login")
    ana.post(f"/beads/{bead}/claim")
    reason = "prod is down and ana is asleep"
    r = bob.post(f"/beads/{bead}/claim", {"jump_in": reason})
    assert r.status_code == 200
    assert r.json["previous"]["alias"] == "ana"
    assert r.json["bead"]["claim"]["alias"] == "bob"
    assert r.json["bead"]["claim"]["reason"] == reason
    assert [(c["alias"], c["reason"]) for c in ana.get("/claims").json] == [("bob", reason)]
    assert ana.get("/mine").json == [] and ids(bob.get("/mine").json) == [bead]
    [notice] = outbox_for(ana.info["workspace"]["id"], "claim.jumped")
    assert notice["bead"] == bead and notice["by"] == "bob" and notice["reason"] == reason
    pg_worker.run()
    [(_, data)] = [m for m in mailbox(pg_app, ana) if m[0] == "claim.jumped"]
    assert data["bead"] == bead and data["reason"] == reason
    assert not [m for m in mailbox(pg_app, bob) if m[0] == "claim.jumped"]


def test_patching_status_in_progress_is_the_same_as_claiming(team):
    ana, bob = team
    bead = ana.create("Fix login")
    r = ana.patch(f"/beads/{bead}", {"status": "in_progress"})
    assert r.status_code == 200
    assert r.json["status"] == "in_progress" and r.json["claim"]["alias"] == "ana"
    assert ana.patch(f"/beads/{bead}", {"status": "in_progress"}).status_code == 200
    refused = bob.patch(f"/beads/{bead}", {"status": "in_progress"})
    assert refused.status_code == 409
    assert refused.json["error"]["message"] == f"{bead} is being worked on by ana (Ana Lovelace)"
    taken = bob.patch(f"/beads/{bead}", {"status": "in_progress", "jump_in": "handing over"})
    assert taken.status_code == 200
    assert taken.json["claim"]["alias"] == "bob"
    assert len(claim_rows(bead)) == 1


def test_a_refused_patch_changes_nothing(team):
    ana, bob = team
    bead = ana.create("Fix login", priority=2)
    ana.post(f"/beads/{bead}/claim")
    before = ana.get(f"/beads/{bead}").json
    r = bob.patch(f"/beads/{bead}", {"title": "bob's now", "priority": 0, "status": "in_progress"})
    assert r.status_code == 409
    after = ana.get(f"/beads/{bead}").json
    assert (after["title"], after["priority"], after["updated_at"]) == \
        (before["title"], before["priority"], before["updated_at"])


# -- blocked, deferred, epics --------------------------------------------------------------------------

def test_a_bead_blocked_by_an_active_bead_cannot_be_claimed_by_anyone(team):
    ana, bob = team
    blocker = ana.create("Schema")
    bead = ana.create("API", blocked_by=[blocker])
    assert_refused(ana.post(f"/beads/{bead}/claim"), blocker)
    assert_refused(bob.post(f"/beads/{bead}/claim"), blocker)
    assert_refused(bob.post(f"/beads/{bead}/claim", {"jump_in": "I insist"}), blocker)
    assert claim_rows(bead) == []
    ana.post(f"/beads/{blocker}/close")
    assert bob.post(f"/beads/{bead}/claim").status_code == 200


def test_a_held_bead_that_becomes_blocked_is_refused_to_its_holder_too(team):
    ana, bob = team
    bead, blocker = ana.create("API"), ana.create("Schema")
    ana.post(f"/beads/{bead}/claim")
    assert ana.post(f"/beads/{bead}/deps", {"target": blocker}).status_code == 201
    assert_refused(ana.post(f"/beads/{bead}/claim"), blocker)
    assert_refused(bob.post(f"/beads/{bead}/claim"))


def test_a_child_of_a_blocked_parent_cannot_be_claimed(team):
    ana, bob = team
    blocker = ana.create("Schema")
    parent = ana.create("Feature", blocked_by=[blocker])
    child = ana.create("Feature part", parent=parent)
    assert_refused(bob.post(f"/beads/{child}/claim"))


def test_a_deferred_bead_cannot_be_claimed_by_anyone(team):
    ana, bob = team
    bead = ana.create("Later")
    assert ana.patch(f"/beads/{bead}", {"status": "deferred"}).status_code == 200
    assert_refused(ana.post(f"/beads/{bead}/claim"))
    assert_refused(bob.post(f"/beads/{bead}/claim"))


def test_a_bead_deferred_into_the_future_cannot_be_claimed_by_anyone(team):
    ana, bob = team
    assert ana.sync("\n".join([record("bd-later", defer_until=stamp(timedelta(days=3))),
                               record("bd-due", defer_until=stamp(timedelta(days=-3)))])).status_code == 200
    assert_refused(ana.post("/beads/bd-later/claim"))
    assert_refused(bob.post("/beads/bd-later/claim"))
    # a deferral that has passed no longer holds anything back
    assert bob.post("/beads/bd-due/claim").status_code == 200


def test_a_held_bead_deferred_into_the_future_is_refused_to_its_holder_too(team):
    ana, bob = team
    assert ana.sync(record("bd-held")).status_code == 200
    assert ana.post("/beads/bd-held/claim").status_code == 200
    # the worktree's record, edited after the claim, now defers the bead
    synced = ana.sync(record("bd-held", status="in_progress", defer_until=stamp(timedelta(days=3)),
                             updated_at=stamp(timedelta(minutes=1))))
    assert synced.json["updated"] == 1, synced.json
    assert_refused(ana.post("/beads/bd-held/claim"))
    assert_refused(bob.post("/beads/bd-held/claim"))


def test_an_epic_with_open_children_cannot_be_claimed_by_anyone(team):
    ana, bob = team
    epic = ana.create("Epic", issue_type="epic")
    child = ana.create("Part", parent=epic)
    assert_refused(ana.post(f"/beads/{epic}/claim"))
    assert_refused(bob.post(f"/beads/{epic}/claim"))
    ana.post(f"/beads/{child}/close")
    assert bob.post(f"/beads/{epic}/claim").status_code == 200


def test_a_held_bead_that_gets_an_open_child_is_refused_to_its_holder_too(team):
    ana, bob = team
    bead = ana.create("Grows into an epic")
    ana.post(f"/beads/{bead}/claim")
    ana.create("Part", parent=bead)
    assert_refused(ana.post(f"/beads/{bead}/claim"))
    assert_refused(bob.post(f"/beads/{bead}/claim"))


# -- closed, tombstone ---------------------------------------------------------------------------------

def test_a_closed_bead_cannot_be_claimed_by_anyone(team):
    ana, bob = team
    bead = ana.create("Done")
    ana.post(f"/beads/{bead}/claim")
    ana.post(f"/beads/{bead}/close")
    assert_refused(ana.post(f"/beads/{bead}/claim"))
    assert_refused(bob.post(f"/beads/{bead}/claim"))
    assert_refused(bob.post(f"/beads/{bead}/claim", {"jump_in": "reopen it"}))
    assert ana.get(f"/beads/{bead}").json["status"] == "closed"


def test_a_tombstoned_bead_cannot_be_claimed_by_anyone(team):
    ana, bob = team
    both = "\n".join([record("bd-keep"), record("bd-gone")])
    ana.sync(both)
    ana.sync(record("bd-keep"), base=both, allow_delete=True)  # the file lost bd-gone: tombstoned
    assert ana.get("/beads/bd-gone").json["status"] == "tombstone"
    assert_refused(ana.post("/beads/bd-gone/claim"))
    assert_refused(bob.post("/beads/bd-gone/claim"))


# -- release and close -------------------------------------------------------------------------------

def test_releasing_puts_the_bead_back_in_the_ready_queue(team):
    ana, bob = team
    bead = ana.create("Fix login")
    ana.post(f"/beads/{bead}/claim")
    r = ana.delete(f"/beads/{bead}/claim")
    assert r.status_code == 200
    assert r.json["released"] is True
    released = r.json["bead"]
    assert (released["status"], released["claim"], released["assignee"]) == ("open", None, "")
    assert bead in ids(bob.get("/ready").json)
    assert ana.get("/claims").json == []
    assert bob.post(f"/beads/{bead}/claim").status_code == 200


def test_only_the_holder_can_release(team):
    ana, bob = team
    bead = ana.create("Fix login")
    ana.post(f"/beads/{bead}/claim")
    assert bob.delete(f"/beads/{bead}/claim").status_code == 409
    assert ana.get(f"/beads/{bead}").json["claim"]["alias"] == "ana"


def test_releasing_an_unclaimed_bead_is_refused_saying_so(team):
    ana, _ = team
    bead = ana.create("Free")
    r = ana.delete(f"/beads/{bead}/claim")
    assert r.status_code == 409
    assert (r.json["error"]["code"], r.json["error"]["message"]) == (
        "not_held", f"you hold no claim on {bead}")
    assert ana.get(f"/beads/{bead}").json["status"] == "open"


def test_patching_status_open_releases(team):
    ana, _ = team
    bead = ana.create("Fix login")
    ana.post(f"/beads/{bead}/claim")
    r = ana.patch(f"/beads/{bead}", {"status": "open"})
    assert (r.status_code, r.json["status"], r.json["claim"]) == (200, "open", None)
    assert claim_rows(bead) == []


def test_closing_releases_the_claim(team):
    ana, _ = team
    bead = ana.create("Fix login")
    ana.post(f"/beads/{bead}/claim")
    r = ana.post(f"/beads/{bead}/close", {"reason": "fixed"})
    assert r.status_code == 200
    assert (r.json["bead"]["status"], r.json["bead"]["claim"]) == ("closed", None)
    assert ana.get("/claims").json == [] and ana.get("/mine").json == []
    assert claim_rows(bead) == []


def test_only_the_holder_can_close_a_held_bead(team):
    ana, bob = team
    bead = ana.create("Fix login")
    ana.post(f"/beads/{bead}/claim")
    assert bob.post(f"/beads/{bead}/close").status_code == 409
    assert bob.patch(f"/beads/{bead}", {"status": "closed"}).status_code == 409
    assert ana.get(f"/beads/{bead}").json["status"] == "in_progress"


# -- stale claims ----------------------------------------------------------------------------------------

def go_offline_long_ago(app, agent, limit_seconds=1):
    """The project's stale limit becomes tiny; the agent was last seen an hour ago and its presence
    expired."""
    project_id, ws_id = agent.info["project"]["id"], agent.info["workspace"]["id"]
    with db.database.connection_context():
        Project.update(stale_claim_seconds=limit_seconds).where(Project.id == project_id).execute()
        Workspace.update(last_seen_ts=time.time() - 3600).where(Workspace.id == ws_id).execute()
    rs = app.extensions["beadwire"].redis
    rs.client.zrem(rs.keys.online_key(project_id), ws_id)
    rs.client.hdel(rs.keys.presence_key(project_id), ws_id)
    rs.client.delete(rs.keys.touch_key(project_id, ws_id))


def test_a_claim_of_a_long_gone_holder_is_shown_stale(pg_app, make_pg_agent):
    ana = make_pg_agent(alias="ana")
    bead = ana.create("Fix login")
    ana.post(f"/beads/{bead}/claim")
    bob = make_pg_agent(alias="bob")
    go_offline_long_ago(pg_app, ana)
    [claim] = bob.get("/claims").json
    assert (claim["bead"], claim["alias"], claim["stale"]) == (bead, "ana", True)
    team = {w["alias"]: w for w in bob.get("/status").json["team"]}
    assert team["ana"]["online"] is False
    assert team["ana"]["claims"][0]["stale"] is True


def test_a_stale_claim_is_taken_without_a_reason_and_the_old_holder_is_told(pg_app, pg_worker, make_pg_agent):
    ana = make_pg_agent(alias="ana")
    bead = ana.create("Fix login")
    ana.post(f"/beads/{bead}/claim")
    bob = make_pg_agent(alias="bob")
    go_offline_long_ago(pg_app, ana)
    r = bob.post(f"/beads/{bead}/claim")
    assert r.status_code == 200
    assert r.json["bead"]["claim"]["alias"] == "bob"
    assert (r.json["previous"]["alias"], r.json["previous"]["stale"]) == ("ana", True)
    [notice] = outbox_for(ana.info["workspace"]["id"], "claim.taken_stale")
    assert notice["bead"] == bead and notice["by"] == "bob"
    pg_worker.run()
    assert [data["bead"] for kind, data in mailbox(pg_app, ana) if kind == "claim.taken_stale"] == [bead]


def test_a_holder_who_comes_back_is_no_longer_stale(pg_app, make_pg_agent):
    ana = make_pg_agent(alias="ana", human="Ana Lovelace")
    bead = ana.create("Fix login")
    ana.post(f"/beads/{bead}/claim")
    bob = make_pg_agent(alias="bob")
    go_offline_long_ago(pg_app, ana, limit_seconds=600)
    assert bob.get("/claims").json[0]["stale"] is True
    ana.get("/whoami")  # any call is a heartbeat
    assert bob.get("/claims").json[0]["stale"] is False
    assert_refused(bob.post(f"/beads/{bead}/claim"), "ana (Ana Lovelace)")


# -- the race ----------------------------------------------------------------------------------------------

def test_twenty_agents_racing_for_one_bead_leave_exactly_one_holder(pg_app, make_pg_agent):
    agents = [make_pg_agent(alias=f"racer{n}") for n in range(20)]
    by_alias = {a.alias: a for a in agents}
    rounds = 30
    barrier = threading.Barrier(len(agents))

    def attempt(agent, bead):
        client = pg_app.test_client()
        barrier.wait(timeout=60)
        r = client.post(f"/v1/beads/{bead}/claim", json={},
                        headers={"Authorization": f"Bearer {agent.token}"})
        return agent.alias, r.status_code, r.json

    with ThreadPoolExecutor(len(agents)) as pool:
        for n in range(rounds):
            bead = agents[n % len(agents)].create(f"prize {n}")
            results = list(pool.map(attempt, agents, [bead] * len(agents)))
            winners = [alias for alias, status, _ in results if status == 200]
            assert len(winners) == 1, results
            losers = [body for _, status, body in results if status == 409]
            assert len(losers) == len(agents) - 1, results
            assert {body["error"]["code"] for body in losers} == {"claim_conflict"}
            assert {body["error"]["holder"]["alias"] for body in losers} == set(winners)
            [row] = claim_rows(bead)
            assert by_alias[winners[0]].info["workspace"]["id"] == row.workspace_id
    with db.database.connection_context():
        assert Claim.select().count() == rounds


def test_a_claim_is_dated_to_the_moment_it_was_made(team):
    ana, _ = team
    bead = ana.create("Fix login")
    before = time.time()
    r = ana.post(f"/beads/{bead}/claim")
    after = time.time()
    since = datetime.strptime(r.json["bead"]["claim"]["since"], "%Y-%m-%dT%H:%M:%S.%fZ")
    since_ts = since.replace(tzinfo=UTC).timestamp()
    assert before - 0.001 <= since_ts <= after + 0.001
    [claim] = ana.get("/claims").json
    assert claim["since"] == r.json["bead"]["claim"]["since"]
