"""Identity over HTTP: init, joining with the project key, re-init, whoami, status, presence, tokens."""

from __future__ import annotations

import re

import pytest

from store import db
from store.models import Project, Workspace


def init(client, body, bearer=None):
    headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
    return client.post("/v1/init", json=body, headers=headers)


def auth(agent):
    return {"Authorization": f"Bearer {agent.token}"}


SHOP = {"project": "shop", "repo_origin": "https://github.com/acme/shop"}


def test_the_first_init_creates_the_project_and_hands_out_its_key_once(client):
    first = init(client, SHOP)
    assert first.status_code == 201
    assert first.json["project"]["slug"] == "shop"
    assert first.json["project_key"].startswith("bw_pk_")
    assert first.json["token"].startswith("bw_ws_")
    joined = init(client, SHOP, bearer=first.json["project_key"])
    assert joined.status_code == 201
    assert "project_key" not in joined.json
    assert joined.json["token"] != first.json["token"]


@pytest.mark.parametrize("bearer", [None, "bw_pk_guessed", "not-a-key-at-all"])
def test_nobody_joins_an_existing_project_by_knowing_its_name(client, bearer):
    assert init(client, SHOP).status_code == 201
    second = init(client, SHOP, bearer=bearer)
    assert second.status_code == 403
    assert second.json["error"]["code"] == "forbidden"
    assert "token" not in second.json


def test_a_workspace_token_of_another_project_does_not_let_you_join(client):
    other = init(client, {"project": "other", "repo_origin": "git@github.com:acme/other.git"})
    init(client, SHOP)
    refused = init(client, SHOP, bearer=other.json["token"])
    assert refused.status_code == 403


def test_the_key_of_another_project_does_not_let_you_join(client):
    other = init(client, {"project": "other", "repo_origin": "git@github.com:acme/other.git"})
    init(client, SHOP)
    refused = init(client, SHOP, bearer=other.json["project_key"])
    assert refused.status_code == 403


def test_joining_with_the_key_works_and_clones_of_one_remote_share_a_repo(client):
    first = init(client, {"project": "shop", "repo_origin": "https://github.com/acme/shop"})
    second = init(client, {"project": "shop", "repo_origin": "git@github.com:acme/shop.git"},
                  bearer=first.json["project_key"])
    assert second.status_code == 201
    assert second.json["project"]["id"] == first.json["project"]["id"]
    assert second.json["workspace"]["repo"] == first.json["workspace"]["repo"] == "github.com/acme/shop"
    assert second.json["workspace"]["id"] != first.json["workspace"]["id"]


def test_an_alias_in_use_cannot_be_taken_over_even_with_the_project_key(client):
    first = init(client, {**SHOP, "alias": "ana"})
    taken = init(client, {**SHOP, "alias": "ana"}, bearer=first.json["project_key"])
    assert taken.status_code == 409
    assert taken.json["error"]["code"] == "alias_taken"
    assert "ana" in taken.json["error"]["message"]
    # ana is still ana: her token still works and names her
    me = client.get("/v1/whoami", headers={"Authorization": f"Bearer {first.json['token']}"})
    assert me.json["alias"] == "ana"
    assert me.json["id"] == first.json["workspace"]["id"]


def test_reinit_renaming_onto_an_alias_in_use_is_refused(client):
    ana = init(client, {**SHOP, "alias": "ana"})
    bob = init(client, {**SHOP, "alias": "bob"}, bearer=ana.json["project_key"])
    refused = init(client, {**SHOP, "alias": "ana"}, bearer=bob.json["token"])
    assert refused.status_code == 409
    assert refused.json["error"]["code"] == "alias_taken"


def test_an_alias_cannot_be_taken_again_in_another_case_or_unicode_form(client):
    ana = init(client, {**SHOP, "alias": "alice"})
    key = ana.json["project_key"]
    for twin in ("Alice", "ALICE", "ａｌｉｃｅ", "Ａｌｉｃｅ"):  # fullwidth letters are `alice` after NFKC
        r = init(client, {**SHOP, "alias": twin}, bearer=key)
        assert r.status_code == 409 and r.json["error"]["code"] == "alias_taken", twin
    for bad in ("alice\n", "al ice", "ali\u200bce", "ålice"):
        assert init(client, {**SHOP, "alias": bad}, bearer=key).status_code == 422, bad
    bob = init(client, {**SHOP, "alias": "Ｂｏｂ"}, bearer=key)
    assert bob.status_code == 201 and bob.json["workspace"]["alias"] == "Bob"  # stored normalised
    assert init(client, {**SHOP, "alias": "ALICE"}, bearer=bob.json["token"]).status_code == 409
    renamed = init(client, {**SHOP, "alias": "Alice"}, bearer=ana.json["token"])  # her own, in another case
    assert renamed.status_code == 200 and renamed.json["workspace"]["alias"] == "Alice"


def test_the_database_itself_keeps_aliases_unique_whatever_their_case(client):
    import peewee

    init(client, {**SHOP, "alias": "alice"})
    row = Workspace.get(Workspace.alias == "alice")
    with pytest.raises(peewee.IntegrityError):  # what decides a race between two inits
        Workspace.create(project=row.project_id, repo=row.repo_id, alias="ALICE", role="developer",
                         token_hash="0" * 64, created_ts=0, last_seen_ts=0)


def test_reinit_with_the_workspace_token_keeps_the_same_identity(client):
    first = init(client, {**SHOP, "role": "reviewer"})
    again = init(client, {**SHOP, "role": "reviewer"}, bearer=first.json["token"])
    assert again.status_code == 200
    assert again.json["workspace"]["id"] == first.json["workspace"]["id"]
    assert again.json["workspace"]["alias"] == first.json["workspace"]["alias"]
    assert again.json["token"] == first.json["token"]
    assert "project_key" not in again.json
    team = client.get("/v1/workspaces", headers={"Authorization": f"Bearer {first.json['token']}"}).json
    assert len(team) == 1


def test_the_default_alias_is_a_readable_name_ending_with_the_role(client):
    first = init(client, {**SHOP, "role": "reviewer"})
    second = init(client, {**SHOP, "role": "frontend"}, bearer=first.json["project_key"])
    assert re.fullmatch(r"[a-z]+\d*-reviewer", first.json["workspace"]["alias"])
    assert re.fullmatch(r"[a-z]+\d*-frontend", second.json["workspace"]["alias"])


def test_default_aliases_never_collide(client):
    key = init(client, {**SHOP, "role": "developer"}).json["project_key"]
    aliases = {init(client, SHOP, bearer=key).json["workspace"]["alias"] for _ in range(60)}
    assert len(aliases) == 60


def test_whoami_describes_the_calling_workspace(make_agent):
    ana = make_agent(alias="ana", role="backend", human="Ana")
    me = ana.get("/whoami")
    assert me.status_code == 200
    assert (me.json["alias"], me.json["role"], me.json["human"]) == ("ana", "backend", "Ana")
    assert me.json["repo"] == "github.com/acme/shop"
    assert me.json["project"]["slug"] == "shop"
    assert me.json["online"] is True


def test_status_shows_the_team_with_who_is_online(make_agent, app):
    ana = make_agent(alias="ana")
    bob = make_agent(alias="bob")
    bob.get("/whoami")
    # bob's presence expires (what the sweep does after the presence TTL)
    rs = app.extensions["beadwire"].redis
    project_id, bob_id = bob.info["project"]["id"], bob.info["workspace"]["id"]
    rs.client.zrem(rs.keys.online_key(project_id), bob_id)
    rs.client.hdel(rs.keys.presence_key(project_id), bob_id)
    status = ana.get("/status")
    assert status.status_code == 200
    assert status.json["me"]["alias"] == "ana"
    team = {w["alias"]: w for w in status.json["team"]}
    assert set(team) == {"ana", "bob"}
    assert team["ana"]["online"] is True and team["ana"]["status"] == "online"
    assert team["bob"]["online"] is False and team["bob"]["status"] == "offline"


def test_status_shows_each_claim_with_its_top_epic(make_agent):
    ana = make_agent(alias="ana", human="Ana")
    epic = ana.create("Checkout rewrite", issue_type="epic")
    feature = ana.create("Payment step", parent=epic)
    task = ana.create("Card form", parent=feature)
    assert ana.post(f"/beads/{task}/claim").status_code == 200
    team = {w["alias"]: w for w in ana.get("/status").json["team"]}
    [claim] = team["ana"]["claims"]
    assert claim["bead"] == task
    assert claim["epic"] == {"id": epic, "title": "Checkout rewrite"}
    assert claim["stale"] is False
    # a team spans repos: a claim says which repo its bead lives in (the Claim object of docs/API.md)
    assert claim["repo"] == "github.com/acme/shop"
    assert (claim["alias"], claim["human"]) == ("ana", "Ana")


def test_status_shows_the_same_claim_objects_as_the_claims_list(make_agent):
    ana, bob = make_agent(alias="ana", human="Ana"), make_agent(alias="bob")
    epic = ana.create("Checkout rewrite", issue_type="epic")
    beads = [ana.create(title, parent=epic) for title in ("Card form", "Receipt", "Refunds")]
    for bead in beads:
        assert ana.post(f"/beads/{bead}/claim").status_code == 200
    assert bob.post(f"/beads/{beads[1]}/claim", {"jump_in": "ana is on leave"}).status_code == 200
    listed = bob.get("/claims").json
    assert {(c["alias"], c["reason"]) for c in listed} == {("ana", ""), ("bob", "ana is on leave")}
    team = bob.get("/status").json["team"]
    shown = [claim for w in team for claim in w["claims"]]
    assert len(listed) == 3
    assert sorted(shown, key=lambda c: c["bead"]) == sorted(listed, key=lambda c: c["bead"])


def test_a_claim_on_a_top_level_bead_has_no_epic(make_agent):
    ana = make_agent(alias="ana")
    bead = ana.create("Lonely task")
    ana.post(f"/beads/{bead}/claim")
    [claim] = ana.get("/status").json["me"]["claims"]
    assert claim["bead"] == bead
    assert claim["epic"] is None


def test_presence_headers_show_up_as_branch_and_host(make_agent):
    ana = make_agent(alias="ana")
    bob = make_agent(alias="bob")
    ana.client.get("/v1/whoami",
                   headers={**auth(ana), "X-Wire-Branch": "feat/checkout", "X-Wire-Host": "ana-laptop"})
    team = {w["alias"]: w for w in bob.get("/status").json["team"]}
    assert team["ana"]["branch"] == "feat/checkout"
    assert team["ana"]["hostname"] == "ana-laptop"
    ana.client.get("/v1/whoami", headers={**auth(ana), "X-Wire-Branch": "main"})
    team = {w["alias"]: w for w in bob.get("/workspaces").json}
    assert team["ana"]["branch"] == "main"


def test_tokens_and_keys_are_stored_only_as_hashes(client, app):
    first = init(client, SHOP)
    second = init(client, {**SHOP, "repo_origin": "git@github.com:acme/shop.git"},
                  bearer=first.json["project_key"])
    secrets = [first.json["project_key"], first.json["token"], second.json["token"]]
    with db.database.connection_context():
        rows = list(Project.select().dicts()) + list(Workspace.select().dicts())
    assert len(rows) == 3
    stored = [str(value) for row in rows for value in row.values()]
    for secret in secrets:
        assert not any(secret in value for value in stored)


def test_a_request_without_a_token_is_unauthorized(client):
    r = client.get("/v1/whoami")
    assert r.status_code == 401
    assert r.is_json
    assert r.json["error"]["code"] == "unauthorized"
    assert r.json["error"]["message"]


@pytest.mark.parametrize("header", [
    "Bearer bw_ws_not-a-real-token",
    "Bearer ",
    "Basic dXNlcjpwYXNz",
    "bw_ws_missing-the-scheme",
])
def test_a_request_with_a_bad_token_is_unauthorized(make_agent, header):
    ana = make_agent()
    assert ana.get("/whoami").status_code == 200
    r = ana.client.get("/v1/beads", headers={"Authorization": header})
    assert r.status_code == 401
    assert r.json["error"]["code"] == "unauthorized"


def test_the_project_key_is_not_a_workspace_token(make_agent):
    make_agent()
    key = make_agent.keys["shop"]
    ana = make_agent(alias="ana")
    r = ana.client.get("/v1/whoami", headers={"Authorization": f"Bearer {key}"})
    # a person (issue 17) is known but acts as no workspace: 403, not a misleading "unknown token"
    assert r.status_code == 403
    assert r.json["error"]["code"] == "forbidden" and "acts as a workspace" in r.json["error"]["message"]
