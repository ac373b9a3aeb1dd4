"""Personal human accounts (issue 17): persons, invites, personal tokens, sessions, roles.

API through the Flask test client on fakeredis and a real Redis (`app`); the schema step on SQLite
and PostgreSQL (`pg_client`)."""

from __future__ import annotations

import json
import re

import pytest

from cli.banner import item_line
from store import humans
from store.models import Human
from store.util import now


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def add(client, key: str, name: str, role: str = "lead", email: str = ""):
    r = client.post("/v1/humans", json={"name": name, "role": role, "email": email}, headers=bearer(key))
    assert r.status_code == 201, r.json
    return r.json


def join(client, key: str, name: str, role: str = "lead") -> str:
    """Add a person and redeem their invite: their personal token."""
    invite = add(client, key, name, role)["invite"]
    r = client.post("/v1/invites/redeem", json={"invite": invite})
    assert r.status_code == 201, r.json
    return r.json["token"]


@pytest.fixture
def shop(client, make_agent):
    agent = make_agent("shop", alias="bob")
    return agent, make_agent.keys["shop"]


def test_the_project_key_adds_a_person_whose_invite_gives_a_personal_token(client, shop):
    _, key = shop
    made = add(client, key, "maria", "lead", "maria@example.com")
    assert made["invite_path"] == f"/invite/{made['invite']}" and made["invite"].startswith("bw_hi_")
    assert made["joined"] is False and made["invite_pending"] is True
    r = client.post("/v1/invites/redeem", json={"invite": "http://host/invite/" + made["invite"]})
    assert r.status_code == 201 and r.json["name"] == "maria" and r.json["role"] == "lead"
    token = r.json["token"]
    me = client.get("/v1/humans/me", headers=bearer(token)).json
    assert me["name"] == "maria" and me["role"] == "lead" and me["credential"] == "personal_token"
    listed = client.get("/v1/humans", headers=bearer(token)).json
    assert [(p["name"], p["email"], p["joined"]) for p in listed] == [("maria", "maria@example.com", True)]


def test_an_invite_works_once(client, shop):
    _, key = shop
    invite = add(client, key, "maria")["invite"]
    assert client.post("/v1/invites/redeem", json={"invite": invite}).status_code == 201
    again = client.post("/v1/invites/redeem", json={"invite": invite})
    assert again.status_code == 401 and "used or expired" in again.json["error"]["message"]


def test_an_expired_invite_is_refused_and_a_new_one_works(client, shop):
    _, key = shop
    invite = add(client, key, "maria")["invite"]
    Human.update(invite_expires_ts=now() - 1).where(Human.name == "maria").execute()
    assert client.post("/v1/invites/redeem", json={"invite": invite}).status_code == 401
    fresh = client.post("/v1/humans/maria/invite", headers=bearer(key)).json["invite"]
    assert client.post("/v1/invites/redeem", json={"invite": fresh}).status_code == 201


def test_names_are_unique_whatever_their_case_and_checked(client, shop):
    _, key = shop
    add(client, key, "maria")
    r = client.post("/v1/humans", json={"name": "Maria"}, headers=bearer(key))
    assert r.status_code == 409 and r.json["error"]["code"] == "human_taken"
    for body in ({"name": "no spaces"}, {"name": "x", "role": "owner"}, {"name": "y", "email": "nope"},
                 {"name": "project key"}, {}):
        bad = client.post("/v1/humans", json=body, headers=bearer(key))
        assert bad.status_code == 422, (body, bad.json)
    assert [p["name"] for p in client.get("/v1/humans", headers=bearer(key)).json] == ["maria"]


def test_removal_ends_the_token_at_once_and_frees_the_name(client, shop):
    _, key = shop
    token = join(client, key, "maria")
    assert client.get("/v1/beads", headers=bearer(token)).status_code == 200
    r = client.delete("/v1/humans/maria", headers=bearer(key))
    assert r.status_code == 200 and r.json == {"name": "maria", "removed": True}
    gone = client.get("/v1/beads", headers=bearer(token))
    assert gone.status_code == 401 and "removed" in gone.json["error"]["message"]
    assert client.delete("/v1/humans/maria", headers=bearer(key)).status_code == 404
    add(client, key, "MARIA")  # the name is free again; the removed row keeps the old one's deeds


def test_removal_ends_the_persons_dashboard_sessions_at_once(client, shop):
    _, key = shop
    invite = add(client, key, "maria")["invite"]
    page = client.get(f"/invite/{invite}")
    assert page.status_code == 200 and "maria" in page.text and "Accept the invite" in page.text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    welcome = client.post(f"/invite/{invite}", data={"csrf_token": csrf})
    assert welcome.status_code == 200 and "bw_ht_" in welcome.text and "maria (lead)" in welcome.text
    assert client.get("/team").status_code == 200
    client.delete("/v1/humans/maria", headers=bearer(key))
    assert client.get("/team").status_code == 302  # back to the login page


def test_key_rotation_ends_project_key_sessions_but_not_persons(client, shop, app):
    _, key = shop
    token = join(client, key, "maria")
    link = client.post("/v1/dashboard/link", headers=bearer(token)).json
    maria_browser = app.test_client()
    page = maria_browser.get(link["path"])
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    assert maria_browser.post(link["path"], data={"csrf_token": csrf}).status_code == 303
    key_link = client.post("/v1/dashboard/link", headers=bearer(key)).json
    key_browser = app.test_client()
    page = key_browser.get(key_link["path"])
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    key_browser.post(key_link["path"], data={"csrf_token": csrf})
    assert key_browser.get("/team").status_code == 200
    new_key = client.post("/v1/project/key/rotate", headers=bearer(key)).json["project_key"]
    assert key_browser.get("/team").status_code == 302
    assert "maria (lead)" in maria_browser.get("/team").text
    assert client.get("/v1/humans/me", headers=bearer(token)).json["name"] == "maria"
    assert client.get("/v1/humans", headers=bearer(key)).status_code == 401
    assert client.get("/v1/humans", headers=bearer(new_key)).status_code == 200


def test_a_persons_mail_reaches_the_agent_marked_as_from_a_human(client, shop, worker):
    bob, key = shop
    token = join(client, key, "maria")
    r = client.post("/v1/mail", json={"to": "bob", "subject": "stop", "body": "please pause bd-1"},
                    headers=bearer(token))
    assert r.status_code == 201 and r.json["message"]["from"] == "maria"  # an alias bob can answer
    worker.run()
    banner = json.loads(bob.get("/whoami").headers["X-Wire-Banner"])
    assert [(i["kind"], i["from"], i["subject"], i.get("human")) for i in banner["new"]] == [
        ("mail", "maria", "stop", True)]
    assert item_line(banner["new"][0]).startswith("mail from maria (human)")
    inbox = bob.get("/mail").json
    assert [(m["from"], m["subject"]) for m in inbox] == [("maria", "stop")]


def test_a_lead_frees_an_agents_claim_and_the_holder_is_told_who_and_why(client, shop, make_agent, worker):
    bob, key = shop
    ref = bob.post("/beads", {"title": "Stuck work"}).json["id"]
    assert bob.post(f"/beads/{ref}/claim", {}).status_code == 200
    viewer, lead = join(client, key, "vera", "viewer"), join(client, key, "maria")
    assert client.delete(f"/v1/beads/{ref}/claim", json={"reason": "bob is gone"},
                         headers=bearer(viewer)).status_code == 403
    no_reason = client.delete(f"/v1/beads/{ref}/claim", headers=bearer(lead))
    assert no_reason.status_code == 422 and "why" in no_reason.json["error"]["message"]
    r = client.delete(f"/v1/beads/{ref}/claim", json={"reason": "bob is gone"}, headers=bearer(lead))
    assert r.status_code == 200 and r.json["holder"] == "bob" and r.json["bead"]["status"] == "open"
    worker.run()
    texts = [i.get("text", "") for i in json.loads(bob.get("/whoami").headers["X-Wire-Banner"])["new"]]
    assert any("maria (human) released your claim on" in t and "bob is gone" in t for t in texts), texts


def test_an_answer_with_a_personal_token_is_in_the_persons_name(client, shop):
    bob, key = shop
    token = join(client, key, "maria")
    question = {"subject": "which db?", "situation": "pick one", "options": ["A", "B"]}
    esc = bob.post("/escalations", question).json
    r = client.post(f"/v1/escalations/{esc['id']}/respond", json={"response": "B", "by": "someone else"},
                    headers=bearer(token))
    assert r.status_code == 200, r.json
    notice = bob.get("/mail").json[0]
    assert notice["body"].startswith(f"escalation #{esc['id']} answered by maria: B")


def test_one_login_shows_every_project_the_person_joined_from_it(client, make_agent, app):
    make_agent("shop", alias="bob")
    make_agent("shop", alias="ann")
    make_agent("ops", alias="olga")
    shop_key, ops_key = make_agent.keys["shop"], make_agent.keys["ops"]
    browser = app.test_client()
    for key in (shop_key, ops_key):  # the second invite is opened where maria is logged in already
        invite = add(client, key, "maria")["invite"]
        page = browser.get(f"/invite/{invite}")
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        assert browser.post(f"/invite/{invite}", data={"csrf_token": csrf}).status_code == 200
    overview = browser.get("/overview").text
    assert 'data-project="shop"' in overview and 'data-project="ops"' in overview
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', overview).group(1)
    assert browser.post("/switch", data={"csrf_token": csrf, "project": "shop"}).status_code == 303
    assert "<span class=\"project\">shop</span>" in browser.get("/team").text
    assert browser.post("/switch", data={"csrf_token": csrf, "project": "nope"}).status_code == 404


def test_the_same_email_in_two_projects_is_not_one_login(client, make_agent, app):
    make_agent("shop", alias="bob")
    make_agent("ops", alias="olga")
    for project in ("shop", "ops"):
        add(client, make_agent.keys[project], "maria", email="maria@example.com")
    browser = app.test_client()
    invite = humans.reinvite(_project("shop"), "maria")[1]
    page = browser.get(f"/invite/{invite}")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    browser.post(f"/invite/{invite}", data={"csrf_token": csrf})
    overview = browser.get("/overview").text
    assert 'data-project="shop"' in overview and 'data-project="ops"' not in overview


def _project(slug: str):
    from store.models import Project

    return Project.get(Project.slug == slug)


def test_the_schema_step_keeps_names_unique_per_project_on_both_databases(pg_client, make_pg_agent):
    make_pg_agent("shop", alias="bob")
    key = make_pg_agent.keys["shop"]
    add(pg_client, key, "maria")
    assert pg_client.post("/v1/humans", json={"name": "MARIA"}, headers=bearer(key)).status_code == 409
    pg_client.delete("/v1/humans/maria", headers=bearer(key))
    add(pg_client, key, "Maria")


# -- the CLI: `wire human ...` and `wire --as NAME` (same checks as the browser) ----------------------------

def _wire(client, tmp_path, monkeypatch):
    from cli.client import Client
    from tests.test_security_keys import FlaskTransport

    monkeypatch.setenv("WIRE_CONFIG_DIR", str(tmp_path / "cfg"))
    monkeypatch.delenv("WIRE_PROJECT_KEY", raising=False)
    monkeypatch.delenv("WIRE_HUMAN_TOKEN", raising=False)
    monkeypatch.chdir(tmp_path)
    return lambda: Client("http://wire.test", transport=FlaskTransport(client), start=tmp_path,
                          auto_reserve=False)


def run(wire, *args: str, env: dict | None = None):
    from click.testing import CliRunner

    from cli import cli

    return CliRunner().invoke(cli, list(args), obj=wire(), env=env)


def test_wire_human_add_login_and_as_name_act_with_the_persons_role(
    client, shop, tmp_path, monkeypatch, worker
):
    bob, key = shop
    wire = _wire(client, tmp_path, monkeypatch)
    out = run(wire, "human", "add", "maria", "--role", "lead", "--key", key)
    assert out.exit_code == 0, out.output
    link = out.stdout.strip()
    assert link.startswith("http://wire.test/invite/bw_hi_")
    out = run(wire, "human", "login", link)
    assert out.exit_code == 0 and "logged in as maria (lead) of shop" in out.output, out.output
    saved = json.loads((tmp_path / "cfg" / "keys.json").read_text())
    assert list(saved) == ["http://wire.test|shop|human:maria"]
    assert saved[next(iter(saved))].startswith("bw_ht_")
    out = run(wire, "--as", "maria", "mail", "send", "bob", "stop and rebase")
    assert out.exit_code == 0, out.output
    worker.run()
    assert [m["from"] for m in bob.get("/mail").json] == ["maria"]
    out = run(wire, "--as", "maria", "create", "Made by maria from the CLI")
    assert out.exit_code == 0 and out.stdout.startswith("created "), out.output
    made = out.stdout.split()[1].rstrip(":")
    assert bob.post(f"/beads/{made}/claim", {}).status_code == 200
    out = run(wire, "--as", "maria", "release", made, "--reason", "bob is needed elsewhere")
    assert out.exit_code == 0, out.output
    assert bob.get(f"/beads/{made}").json["status"] == "open"
    out = run(wire, "--as", "maria", "assign", made, "bob", "--reason", "you know it")
    assert out.exit_code == 0, out.output
    assert bob.get(f"/beads/{made}").json["assignment"]["by"] == "maria"
    out = run(wire, "--as", "maria", "audit", "--who", "maria")
    assert out.exit_code == 0 and "bead.assigned" in out.output, out.output
    esc = bob.post("/escalations", {"subject": "which db?", "situation": "pick", "options": ["A", "B"]}).json
    out = run(wire, "--as", "maria", "respond", str(esc["id"]), "B")
    assert out.exit_code == 0, out.output
    assert client.get(f"/v1/escalations/{esc['id']}", headers=bearer(key)).json["responder"] == "maria"
    # a lead manages no people: the same 403 as in the browser
    out = run(wire, "--as", "maria", "human", "add", "eve")
    assert out.exit_code == 1 and "maria is a lead; this needs an admin" in out.output, out.output
    out = run(wire, "human", "list", env={"WIRE_HUMAN_TOKEN": saved["http://wire.test|shop|human:maria"]})
    assert out.exit_code == 0 and "maria" in out.stdout and "lead" in out.stdout, out.output
    assert run(wire, "human", "remove", "maria", "--key", key).exit_code == 0
    out = run(wire, "--as", "maria", "human", "list")
    assert out.exit_code == 1 and "removed" in out.output


def test_wire_as_an_unknown_name_is_a_usage_error(client, shop, tmp_path, monkeypatch):
    wire = _wire(client, tmp_path, monkeypatch)
    out = run(wire, "--as", "nobody", "human", "list")
    assert out.exit_code == 2 and "no token of nobody saved" in out.output


def test_an_invite_redeemed_with_a_persons_token_joins_that_login(client, make_agent):
    make_agent("shop", alias="bob")
    make_agent("ops", alias="olga")
    token = join(client, make_agent.keys["shop"], "maria")
    invite = add(client, make_agent.keys["ops"], "maria")["invite"]
    r = client.post("/v1/invites/redeem", json={"invite": invite}, headers=bearer(token))
    assert r.status_code == 201 and r.json["project"] == "ops"
    me = client.get("/v1/humans/me", headers=bearer(token)).json
    assert me["project"] == "shop" and me["projects"] == [{"project": "ops", "role": "lead"},
                                                          {"project": "shop", "role": "lead"}]
    alone = client.get("/v1/humans/me", headers=bearer(join(client, make_agent.keys["ops"], "sam"))).json
    assert alone["projects"] == [{"project": "ops", "role": "lead"}]


def test_an_admin_manages_people_in_the_dashboard_and_a_lead_cannot(client, shop, app):
    _, key = shop
    browsers = {}
    for name, role in (("ada", "admin"), ("leo", "lead")):
        invite = add(client, key, name, role)["invite"]
        browser = app.test_client()
        page = browser.get(f"/invite/{invite}")
        browser.post(f"/invite/{invite}", data={"csrf_token": re.search(r'name="csrf_token" value="([^"]+)"',
                                                                         page.text).group(1)})
        browsers[name] = browser
    page = browsers["ada"].get("/people").text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    made = browsers["ada"].post("/people", data={"csrf_token": csrf, "name": "maria", "role": "viewer"})
    assert made.status_code == 201
    link = re.search(r'<pre id="invite-link">([^<]+)</pre>', made.text).group(1)
    assert "/invite/bw_hi_" in link
    token = client.post("/v1/invites/redeem", json={"invite": link}).json["token"]
    bad = browsers["ada"].post("/people", data={"csrf_token": csrf, "name": "Maria"})
    assert bad.status_code == 409 and "already a person" in bad.text
    leo_csrf = re.search(r'name="csrf_token" value="([^"]+)"', browsers["leo"].get("/people").text).group(1)
    assert "Add a person" not in browsers["leo"].get("/people").text
    assert browsers["leo"].post("/people/maria/remove", data={"csrf_token": leo_csrf}).status_code == 403
    assert client.get("/v1/humans/me", headers=bearer(token)).status_code == 200
    assert browsers["ada"].post("/people/maria/remove", data={"csrf_token": csrf}).status_code == 303
    assert client.get("/v1/humans/me", headers=bearer(token)).status_code == 401


def test_a_lead_works_on_beads_and_chats_with_their_own_token_as_themselves(client, shop, worker):
    """CLI parity: what a person does from the dashboard they do with their token, in their name."""
    bob, key = shop
    lead, viewer = join(client, key, "maria"), join(client, key, "vera", "viewer")
    made = client.post("/v1/beads", json={"title": "Rotate the logs"}, headers=bearer(lead))
    assert made.status_code == 201, made.json
    ref = made.json["id"]
    assert client.post("/v1/beads", json={"title": "x"}, headers=bearer(viewer)).status_code == 403
    assert client.post(f"/v1/beads/{ref}/comments", json={"text": "keep 7 days"},
                       headers=bearer(lead)).status_code == 201
    assert client.patch(f"/v1/beads/{ref}", json={"priority": 1}, headers=bearer(lead)).status_code == 200
    refused = client.patch(f"/v1/beads/{ref}", json={"status": "in_progress"}, headers=bearer(lead))
    assert refused.status_code == 422 and "agent's claim" in refused.json["error"]["message"]
    assert client.post(f"/v1/beads/{ref}/claim", json={}, headers=bearer(lead)).status_code == 403
    shown = bob.get(f"/beads/{ref}").json
    assert shown["priority"] == 1 and [(c["author"], c["text"]) for c in shown["comments"]] == [
        ("maria", "keep 7 days")]
    closed = client.post(f"/v1/beads/{ref}/close", json={"reason": "done"}, headers=bearer(lead))
    assert closed.status_code == 200
    assert client.post(f"/v1/beads/{ref}/reopen", json={}, headers=bearer(lead)).status_code == 200
    said = client.post("/v1/chat", json={"to": "bob", "body": "are you there?"}, headers=bearer(lead))
    assert said.status_code == 201, said.json
    worker.run()
    banner = json.loads(bob.get("/whoami").headers["X-Wire-Banner"])
    assert [(i["kind"], i["from"], i.get("human")) for i in banner["new"]] == [("chat", "maria", True)]


def test_a_leads_assignment_and_pause_carry_their_name_into_notices_and_the_audit_log(client, shop, worker):
    bob, key = shop
    lead, viewer = join(client, key, "maria"), join(client, key, "vera", "viewer")
    ref = bob.post("/beads", {"title": "Migrate the orders table"}).json["id"]
    refused = client.post(f"/v1/beads/{ref}/assign", json={"alias": "bob"}, headers=bearer(viewer))
    assert refused.status_code == 403
    r = client.post(f"/v1/beads/{ref}/assign", json={"alias": "bob", "reason": "you know the schema"},
                    headers=bearer(lead))
    assert r.status_code == 200 and r.json["assignment"]["by"] == "maria", r.json
    assert client.post("/v1/workspaces/bob/pause", json={"reason": "review first"},
                       headers=bearer(lead)).status_code == 200
    assert bob.get("/prime").json["paused"] == {"by": "maria", "reason": "review first"}
    rows = client.get("/v1/audit?who=maria", headers=bearer(viewer)).json
    assert {(row["who"], row["credential"]) for row in rows} == {("maria", "personal token")}
    assert {row["action"] for row in rows} >= {"bead.assigned", "agent.paused"}, rows
