"""Tenants are isolated: a workspace of project B never sees or touches project A's beads.

Both projects work on the same GitHub repo (the hardest case: same canonical origin, same repo
name), so every way of writing a reference (`id`, `shop:id`, `github.com/acme/shop:id`) is tried.
"""

from __future__ import annotations

import json

import pytest

ORIGIN = "git@github.com:acme/shop.git"
SECRET = "zebra"  # a word only project A's beads contain


def record(bead_id, **fields):
    return json.dumps({"id": bead_id, "title": f"rival {bead_id}", "status": "open", "priority": 2,
                       "issue_type": "task", "created_at": "2026-01-01T00:00:00Z",
                       "updated_at": "2026-01-01T00:00:00Z", **fields})


@pytest.fixture
def tenants(make_agent):
    """Project A (ana: an open bead with a comment and a blocker, a claimed one, a closed one) and
    project B (eve, one bead of her own, ids `rv-*` so they can never equal A's)."""
    ana = make_agent(project="shop", origin=ORIGIN, alias="ana", human="Ana")
    held = ana.create(f"{SECRET} held", description=f"{SECRET} text")
    plain = ana.create(f"{SECRET} plan", labels=[SECRET], blocked_by=[held])
    ana.post(f"/beads/{plain}/comments", {"text": f"{SECRET} comment"})
    assert ana.post(f"/beads/{held}/claim").status_code == 200
    closed = ana.create(f"{SECRET} done")
    ana.post(f"/beads/{closed}/close", {"reason": "done"})
    eve = make_agent(project="rival", origin=ORIGIN, alias="eve")
    assert eve.sync(record("rv-1")).status_code == 200
    return ana, eve, [plain, held, closed]


def snapshot(ana, a_ids):
    """Everything ana can see of project A."""
    return {"beads": [ana.get(f"/beads/{bead}").json for bead in a_ids], "deps": [
        ana.get(f"/beads/{bead}/deps").json for bead in a_ids], "all": ana.get("/beads?all=1").json,
        "claims": ana.get("/claims").json, "ready": ana.get("/ready").json, "mine": ana.get("/mine").json}


def ref_forms(bead):
    return [bead, f"shop:{bead}", f"github.com/acme/shop:{bead}"]


#: Every authenticated route that takes a bead reference: (method, path, body); `{ref}` is A's bead.
REF_ROUTES = [
    ("GET", "/beads/{ref}", None),
    ("PATCH", "/beads/{ref}", {"title": "taken over"}),
    ("PATCH", "/beads/{ref}", {"add_labels": ["x"], "priority": 0}),
    ("PATCH", "/beads/{ref}", {"status": "in_progress"}),
    ("PATCH", "/beads/{ref}", {"status": "in_progress", "jump_in": "mine now"}),
    ("PATCH", "/beads/{ref}", {"status": "open"}),
    ("PATCH", "/beads/{ref}", {"status": "closed"}),
    ("PATCH", "/beads/{ref}", {"status": "deferred"}),
    ("POST", "/beads/{ref}/comments", {"text": "hello from B"}),
    ("POST", "/beads/{ref}/deps", {"target": "rv-1", "type": "blocks"}),
    ("POST", "/beads/rv-1/deps", {"target": "{ref}", "type": "blocks"}),
    ("POST", "/beads/rv-1/deps", {"target": "{ref}", "type": "parent-child"}),
    ("GET", "/beads/{ref}/deps", None),
    ("POST", "/beads/{ref}/claim", {}),
    ("POST", "/beads/{ref}/claim", {"jump_in": "mine now"}),
    ("DELETE", "/beads/{ref}/claim", None),
    ("POST", "/beads/{ref}/close", {"reason": "B says so"}),
    ("POST", "/beads/{ref}/reopen", {}),
    ("GET", "/ready/{ref}", None),
    ("POST", "/beads", {"title": "child of A", "parent": "{ref}"}),
    ("POST", "/beads", {"title": "blocked by A", "blocked_by": ["rv-1", "{ref}"]}),
]


def fill(value, ref):
    return json.loads(json.dumps(value).replace("{ref}", ref)) if value is not None else None


def call(agent, method, path, body):
    if method == "GET":
        return agent.get(path)
    if method == "DELETE":
        return agent.delete(path)
    if method == "PATCH":
        return agent.patch(path, body)
    return agent.post(path, body)


@pytest.mark.parametrize("method, path, body", REF_ROUTES, ids=[f"{m} {p} {b}" for m, p, b in REF_ROUTES])
def test_project_b_gets_not_found_for_every_bead_of_project_a(tenants, method, path, body):
    ana, eve, a_ids = tenants
    before = snapshot(ana, a_ids)
    b_before = eve.get("/beads?all=1").json
    for bead in a_ids:
        for ref in ref_forms(bead):
            r = call(eve, method, path.replace("{ref}", ref), fill(body, ref))
            assert r.status_code == 404, (ref, r.status_code, r.json)
            assert r.json["error"]["code"] == "not_found"
            assert "ana" not in r.json["error"]["message"]
    assert snapshot(ana, a_ids) == before
    assert eve.get("/beads?all=1").json == b_before


def test_listing_and_searching_in_project_b_shows_nothing_of_project_a(tenants):
    _, eve, a_ids = tenants

    def visible(beads):
        return [b for b in beads if b["id"] in a_ids or SECRET in json.dumps(b)]

    for query in ("/beads", "/beads?all=1", "/beads?status=closed", "/beads?status=in_progress",
                  f"/beads?label={SECRET}", "/beads?assignee=ana", "/beads?repo=shop",
                  "/beads?repo=github.com/acme/shop", "/ready", "/mine"):
        r = eve.get(query)
        assert r.status_code == 200, query
        assert visible(r.json) == [], query
    for bead in a_ids:
        assert visible(eve.get(f"/search?q={bead}").json) == []
    assert eve.get(f"/search?q={SECRET}").json == []
    assert eve.get("/claims").json == []
    assert ids_of(eve.get("/beads?all=1").json) == ["rv-1"]


def ids_of(beads):
    return [b["id"] for b in beads]


def test_project_b_sees_only_its_own_team(tenants):
    ana, eve, _ = tenants
    ana.get("/whoami")  # ana is online in A
    ana_id = ana.info["workspace"]["id"]
    status = eve.get("/status").json
    assert status["project"]["slug"] == "rival"
    assert [w["alias"] for w in status["team"]] == ["eve"]
    assert all(w["id"] != ana_id for w in eve.get("/workspaces").json)
    assert eve.get("/whoami").json["project"]["slug"] == "rival"
    assert [w["alias"] for w in ana.get("/workspaces").json] == ["ana"]


def test_a_sync_in_project_b_never_touches_project_a(tenants):
    ana, eve, a_ids = tenants
    before = snapshot(ana, a_ids)
    plain, _, closed = a_ids
    # same repo, same ids: still B's own records; a sync deletes only B's beads its file lost
    text = "\n".join([record(plain, title="B's version"), record("rv-2", dependencies=[
        {"issue_id": "rv-2", "depends_on_id": closed, "type": "blocks"}])])
    r = eve.sync(text, base=record("rv-1"), allow_delete=True)
    assert r.status_code == 200
    assert (r.json["created"], r.json["tombstoned"]) == (2, 1)  # rv-1 is gone from B's file
    assert snapshot(ana, a_ids) == before
    assert eve.get(f"/beads/{plain}").json["title"] == "B's version"
    # B's blocker is B's own unknown bead, not A's closed one of the same id
    assert eve.get("/ready/rv-2").json["ready"] is False
    assert "rv-2" not in ids_of(eve.get("/ready").json)


def test_closing_in_project_b_never_unblocks_project_a(tenants):
    ana, eve, _ = tenants
    # A waits on an id that only B has
    waits = record("bd-waits", dependencies=[
        {"issue_id": "bd-waits", "depends_on_id": "rv-1", "type": "blocks"}])
    assert ana.sync(waits, mode="incremental").status_code == 200
    assert ana.get("/ready/bd-waits").json["ready"] is False
    r = eve.post("/beads/rv-1/close")
    assert r.status_code == 200
    assert r.json["unblocked"] == []
    assert ana.get("/ready/bd-waits").json["ready"] is False


def test_a_workspace_token_of_project_b_cannot_join_project_a(tenants, client):
    _, eve, _ = tenants
    r = client.post("/v1/init", json={"project": "shop", "repo_origin": ORIGIN},
                    headers={"Authorization": f"Bearer {eve.token}"})
    assert r.status_code == 403
    assert eve.get("/whoami").json["project"]["slug"] == "rival"
