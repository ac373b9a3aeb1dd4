"""Assignment that means something (issue 17): `POST/DELETE /v1/beads/<id>/assign` by a coordinator or
a human credential. The assignee is told, the bead heads its ready and prime and leaves everyone else's
ready, and anyone else's claim is refused (exit 3 in the CLI) unless they jump in.

Claims are decided in SQL (store/claims.py: no Lua script takes part), so these run on SQLite and
PostgreSQL, with a real Redis server carrying presence and mailboxes.
"""

from __future__ import annotations

import json

import pytest

from store import db
from store.models import Outbox

pytestmark = pytest.mark.parametrize("redis", [pytest.param("real", marks=pytest.mark.real)], indirect=True)


@pytest.fixture
def crew(make_pg_agent):
    """cora (coordinator), bob and ana (developers) in one project; and the project key."""
    cora = make_pg_agent(alias="cora", role="coordinator")
    bob, ana = make_pg_agent(alias="bob"), make_pg_agent(alias="ana")
    return cora, bob, ana, make_pg_agent.keys["shop"]


def as_key(agent, key, method, path, body=None):
    return agent.client.open(f"/v1{path}", method=method, json=body,
                             headers={"Authorization": f"Bearer {key}"})


def notices(agent, event):
    """Notices committed for an agent about `event`, newest last."""
    with db.database.connection_context():
        rows = Outbox.select().where(Outbox.recipient_id == agent.info["workspace"]["id"],
                                     Outbox.kind == "notice")
        payloads = [json.loads(r.payload) for r in rows.order_by(Outbox.id)]
    return [p for p in payloads if p["data"].get("event") == event]


def ids(beads):
    return [b["id"] for b in beads]


def test_a_coordinator_assigns_and_the_assignee_is_told_with_the_reason(crew):
    cora, bob, ana, _ = crew
    bead = ana.create("Fix login")
    r = cora.post(f"/beads/{bead}/assign", {"alias": "bob", "reason": "you wrote the auth module"})
    assert r.status_code == 200, r.json
    assert r.json["assignment"] == {"to": "bob", "by": "cora", "reason": "you wrote the auth module"}
    assert r.json["assignee"] == "bob"
    [notice] = notices(bob, "bead.assigned")
    assert f"{bead} was assigned to you by cora: you wrote the auth module" in notice["body"]


def test_the_bead_heads_the_assignees_ready_and_prime_and_leaves_everyone_elses_ready(crew):
    cora, bob, ana, _ = crew
    urgent = ana.create("Urgent thing", priority=0)
    given = ana.create("Given to bob", priority=3)
    cora.post(f"/beads/{given}/assign", {"alias": "bob", "reason": "your area"})
    assert ids(bob.get("/ready").json)[:2] == [given, urgent]
    assert given not in ids(ana.get("/ready").json) and urgent in ids(ana.get("/ready").json)
    prime = bob.get("/prime").json
    [top] = prime["assigned"]
    assert top["id"] == given and top["assignment"] == {"to": "bob", "by": "cora", "reason": "your area"}
    assert ana.get("/prime").json["assigned"] == []


def test_another_agents_claim_is_refused_naming_assignee_and_assigner(crew):
    cora, _bob, ana, _ = crew
    bead = ana.create("Fix login")
    cora.post(f"/beads/{bead}/assign", {"alias": "bob"})
    r = ana.post(f"/beads/{bead}/claim")
    assert r.status_code == 409
    assert r.json["error"]["code"] == "claim_conflict"
    assert r.json["error"]["message"] == f"{bead} is assigned to bob by cora"
    assert ana.get(f"/beads/{bead}").json["claim"] is None
    # the same refusal through `PATCH status=in_progress`
    assert ana.patch(f"/beads/{bead}", {"status": "in_progress"}).status_code == 409


def test_the_assignee_claims_and_releases_and_the_assignment_stays(crew):
    cora, bob, ana, _ = crew
    bead = ana.create("Fix login")
    cora.post(f"/beads/{bead}/assign", {"alias": "bob", "reason": "yours"})
    r = bob.post(f"/beads/{bead}/claim")
    assert r.status_code == 200 and r.json["bead"]["claim"]["alias"] == "bob"
    assert bob.get(f"/beads/{bead}").json["assignment"]["by"] == "cora"
    released = bob.delete(f"/beads/{bead}/claim")
    assert released.json["bead"]["assignment"] == {"to": "bob", "by": "cora", "reason": "yours"}
    assert ana.post(f"/beads/{bead}/claim").status_code == 409  # still bob's
    assert bead in ids(bob.get("/ready").json)


def test_jumping_in_takes_the_bead_reassigns_it_and_tells_the_assignee(crew):
    cora, bob, ana, _ = crew
    bead = ana.create("Fix login")
    cora.post(f"/beads/{bead}/assign", {"alias": "bob"})
    r = ana.post(f"/beads/{bead}/claim", {"jump_in": "bob is on leave"})
    assert r.status_code == 200, r.json
    shown = ana.get(f"/beads/{bead}").json
    assert shown["claim"]["alias"] == "ana" and shown["assignee"] == "ana" and "assignment" not in shown
    [notice] = notices(bob, "assignment.jumped")
    assert notice["body"] == f"ana jumped in on {bead}, assigned to you by cora: bob is on leave"
    ana.delete(f"/beads/{bead}/claim")  # the claimer's own release frees it for anyone
    assert bob.post(f"/beads/{bead}/claim").status_code == 200


def test_unassign_frees_the_bead_for_everyone_and_tells_the_former_assignee(crew):
    cora, bob, ana, _ = crew
    bead = ana.create("Fix login")
    cora.post(f"/beads/{bead}/assign", {"alias": "bob"})
    r = cora.delete(f"/beads/{bead}/assign")
    assert r.status_code == 200 and "assignment" not in r.json and r.json["assignee"] == ""
    assert bead in ids(ana.get("/ready").json)
    assert ana.post(f"/beads/{bead}/claim").status_code == 200
    assert ([n["body"] for n in notices(bob, "bead.unassigned")]
            == [f"{bead} is no longer assigned to you (by cora)"])


def test_only_coordinators_and_human_credentials_assign(crew):
    _cora, _bob, ana, key = crew
    bead = ana.create("Fix login")
    r = ana.post(f"/beads/{bead}/assign", {"alias": "bob"})
    assert r.status_code == 403 and "coordinator" in r.json["error"]["message"]
    assert ana.delete(f"/beads/{bead}/assign").status_code == 403
    r = as_key(ana, key, "POST", f"/beads/{bead}/assign", {"alias": "bob", "reason": "release blocker"})
    assert r.status_code == 200 and r.json["assignment"]["by"] == "project key"
    assert (ana.post(f"/beads/{bead}/claim").json["error"]["message"]
            == f"{bead} is assigned to bob by project key")


def test_bad_assignments_are_clear_4xx_and_change_nothing(crew):
    cora, _bob, ana, _ = crew
    bead = ana.create("Fix login")
    assert cora.post(f"/beads/{bead}/assign", {"alias": "nobody"}).status_code == 404
    assert cora.post(f"/beads/{bead}/assign", {}).status_code == 422
    assert cora.post(f"/beads/{bead}/assign", {"alias": "bob", "reason": "x" * 2001}).status_code == 422
    assert cora.post("/beads/bd-999/assign", {"alias": "bob"}).status_code == 404
    assert ana.get(f"/beads/{bead}").json["assignee"] == ""


def test_a_plain_agent_writing_assignee_sets_the_field_but_binds_nothing(crew):
    cora, bob, ana, _ = crew
    bead = ana.create("Fix login")
    assert ana.patch(f"/beads/{bead}", {"assignee": "bob"}).json["assignee"] == "bob"
    assert ana.post(f"/beads/{bead}/claim").status_code == 200  # not binding: anyone may claim
    other = ana.create("Other")
    # a coordinator's PATCH goes through the same store function: binding, with a notice
    assert cora.patch(f"/beads/{other}", {"assignee": "bob"}).json["assignment"]["by"] == "cora"
    assert ana.post(f"/beads/{other}/claim").status_code == 409
    # only the binding one told bob
    assert [n["data"]["bead"] for n in notices(bob, "bead.assigned")] == [other]


def test_when_an_assigned_bead_becomes_ready_the_assignee_is_told(crew):
    cora, bob, ana, _ = crew
    blocker = ana.create("schema")
    dep = ana.create("page", blocked_by=[blocker])
    cora.post(f"/beads/{dep}/assign", {"alias": "bob"})
    assert dep not in ids(bob.get("/ready").json)
    ana.post(f"/beads/{blocker}/claim")
    ana.post(f"/beads/{blocker}/close")
    [ready] = notices(bob, "bead.ready")
    assert ready["data"]["why"] == "assigned" and ready["data"]["bead"] == dep
    assert ids(bob.get("/ready").json)[0] == dep
