"""The permission matrix of issue 17 in the API: viewer, lead, admin, an agent token, another project's
human, a removed person and a rotated key, each trying every kind of call. Nobody does more than their
role allows (viewer reads; lead also changes work; admin also people, keys, policies, webhooks), and a
refused call changes nothing."""

from __future__ import annotations

import pytest

from tests.test_humans import add, bearer, join

#: Each action: (name, least role, method, path, body). `{esc}` is a fresh pending escalation of shop.
ACTIONS = [
    ("list beads", "viewer", "GET", "/v1/beads", None),
    ("read claims", "viewer", "GET", "/v1/claims", None),
    ("read escalations", "viewer", "GET", "/v1/escalations", None),
    ("list persons", "viewer", "GET", "/v1/humans", None),
    ("dashboard link", "viewer", "POST", "/v1/dashboard/link", {}),
    ("mail an agent", "lead", "POST", "/v1/mail", {"to": "bob", "body": "rebase please"}),
    ("answer an escalation", "lead", "POST", "/v1/escalations/{esc}/respond", {"response": "B"}),
    ("change project settings", "lead", "PATCH", "/v1/project/settings", {"idle_claim_minutes": 45}),
    ("add a person", "admin", "POST", "/v1/humans", {"name": "newcomer-{who}", "role": "viewer"}),
    ("invite again", "admin", "POST", "/v1/humans/vera/invite", {}),
    ("set the webhook", "admin", "PUT", "/v1/project/webhook", {"url": "https://hooks.example/x"}),
    ("change the policy", "admin", "PUT", "/v1/policy", {"invariants": "rule {who}"}),
    ("set a workspace's role", "admin", "PUT", "/v1/workspaces/bob/role", {"role": "developer"}),
    ("claim a bead (a workspace's act)", "nobody", "POST", "/v1/beads/{bead}/claim", {}),
]
RANK = {"viewer": 0, "lead": 1, "admin": 2, "nobody": 9}
OK = {"GET": 200, "POST": 201, "PATCH": 200, "PUT": 200}
#: Successful statuses that are not the method's default.
OK_STATUS = {"answer an escalation": 200, "set the webhook": 200, "set a workspace's role": 200,
             "change the policy": 201}


@pytest.fixture
def shop(client, make_agent):
    bob = make_agent("shop", alias="bob")
    key = make_agent.keys["shop"]
    bead = bob.create("work to hold")
    tokens = {role: join(client, key, name, role) for name, role in
              (("vera", "viewer"), ("leo", "lead"), ("ada", "admin"))}
    removed = join(client, key, "rem", "admin")
    assert client.delete("/v1/humans/rem", headers=bearer(key)).status_code == 200
    make_agent("ops", alias="olga")
    other = join(client, make_agent.keys["ops"], "otto", "admin")
    old_key = key
    return {"bob": bob, "key": key, "bead": bead, "tokens": tokens, "removed": removed, "other": other,
            "old_key": old_key}


def _escalation(bob) -> int:
    r = bob.post("/escalations", {"subject": "which db?", "situation": "pick", "options": ["A", "B"]})
    assert r.status_code == 201
    return r.json["id"]


def _call(client, shop, who: str, token: str, action):
    _name, _, method, path, body = action
    path = path.replace("{esc}", str(_escalation(shop["bob"]))).replace("{bead}", shop["bead"])
    if isinstance(body, dict):
        body = {k: v.replace("{who}", who) if isinstance(v, str) else v for k, v in body.items()}
    return client.open(path, method=method, json=body, headers=bearer(token))


def test_each_role_does_what_it_may_and_nothing_more(client, shop):
    failures = []
    for who, role in (("vera", "viewer"), ("leo", "lead"), ("ada", "admin")):
        for action in ACTIONS:
            r = _call(client, shop, who, shop["tokens"][role], action)
            allowed = RANK[role] >= RANK[action[1]]
            wanted = OK_STATUS.get(action[0], OK[action[2]]) if allowed else 403
            if r.status_code != wanted:
                failures.append((who, action[0], r.status_code, wanted, (r.get_json() or {}).get("error")))
    assert failures == []
    listed = {p["name"] for p in client.get("/v1/humans", headers=bearer(shop["key"])).json}
    assert listed == {"vera", "leo", "ada", "newcomer-ada"}  # only the admin added someone


def test_the_project_key_is_an_admin_and_agents_get_no_persons_power(client, shop):
    failures = []
    for action in ACTIONS:
        r = _call(client, shop, "key", shop["key"], action)
        wanted = 403 if action[1] == "nobody" else OK_STATUS.get(action[0], OK[action[2]])
        if r.status_code != wanted:
            failures.append(("key", action[0], r.status_code))
        if action[1] in ("lead", "admin") and action[2] != "PATCH" and action[0] != "mail an agent":
            # a coordinator's token is no person either
            r = _call(client, shop, "bob", shop["bob"].token, action)
            if r.status_code != 403:
                failures.append(("bob", action[0], r.status_code))
    assert failures == []


def test_a_removed_person_and_a_rotated_key_can_do_nothing(client, shop):
    new_key = client.post("/v1/project/key/rotate", headers=bearer(shop["key"])).json["project_key"]
    before = client.get("/v1/humans", headers=bearer(new_key)).json
    failures = []
    for who, token in (("rem", shop["removed"]), ("old key", shop["old_key"])):
        for action in ACTIONS:
            r = _call(client, shop, who, token, action)
            if r.status_code != 401:
                failures.append((who, action[0], r.status_code))
    assert failures == []
    assert client.get("/v1/humans", headers=bearer(new_key)).json == before
    assert client.get("/v1/humans/me", headers=bearer(shop["tokens"]["viewer"])).json["name"] == "vera"


def test_another_projects_admin_reaches_nothing_of_this_project(client, shop):
    other = shop["other"]
    esc = _escalation(shop["bob"])
    assert client.post(f"/v1/escalations/{esc}/respond", json={"response": "B"},
                       headers=bearer(other)).status_code == 404
    assert client.delete("/v1/humans/vera", headers=bearer(other)).status_code == 404
    assert client.post("/v1/humans/vera/invite", headers=bearer(other)).status_code == 404
    assert client.post("/v1/mail", json={"to": "bob", "body": "hi"}, headers=bearer(other)).status_code == 404
    assert client.get(f"/v1/beads/{shop['bead']}", headers=bearer(other)).status_code == 404
    assert client.get("/v1/beads", headers=bearer(other)).json == []
    assert {p["name"] for p in client.get("/v1/humans", headers=bearer(other)).json} == {"otto"}
    assert client.get(f"/v1/escalations/{esc}", headers=bearer(shop["key"])).json["status"] == "pending"
    add(client, other, "vera")  # its own project's names are its own
    assert client.get("/v1/humans/me", headers=bearer(shop["tokens"]["viewer"])).json["project"] == "shop"


# -- the same matrix in the dashboard (sessions of each kind) ------------------------------------------------

def _session(app, client, path: str):
    """A browser logged in through a one-time link or an invite at `path`; its page's CSRF token."""
    import re

    browser = app.test_client()
    page = browser.get(path)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    browser.post(path, data={"csrf_token": csrf})
    return browser


def _answer(browser, esc: int):
    import re

    page = browser.get("/escalations")
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    return browser.post(f"/escalations/{esc}/answer", data={"csrf_token": found.group(1) if found else "",
                                                              "response": "B"})


def test_in_the_dashboard_only_a_lead_or_admin_answers_and_removal_or_rotation_ends_sessions(
        app, client, shop):
    key = shop["key"]
    browsers = {}
    for name, role in (("vicky", "viewer"), ("lena", "lead"), ("adam", "admin")):
        invite = add(client, key, name, role)["invite"]
        browsers[name] = _session(app, client, f"/invite/{invite}")
    key_link = client.post("/v1/dashboard/link", headers=bearer(key)).json["path"]
    browsers["key"] = _session(app, client, key_link)
    agent_link = shop["bob"].post("/dashboard/link").json["path"]
    browsers["bob (read-only)"] = _session(app, client, agent_link)
    expected = {"vicky": 403, "lena": 303, "adam": 303, "key": 303, "bob (read-only)": 403}
    got = {}
    for who, browser in browsers.items():
        esc = _escalation(shop["bob"])
        got[who] = _answer(browser, esc).status_code
        status = client.get(f"/v1/escalations/{esc}", headers=bearer(key)).json
        assert (status["status"] == "answered") == (got[who] == 303), (who, status)
        if got[who] == 303:
            assert status["responder"] == ("project key" if who == "key" else who)
    assert got == expected
    client.delete("/v1/humans/lena", headers=bearer(key))
    client.post("/v1/project/key/rotate", headers=bearer(key))
    assert browsers["lena"].get("/team").status_code == 302  # removed: logged out
    assert browsers["key"].get("/team").status_code == 302  # the key was rotated
    assert browsers["adam"].get("/team").status_code == 200  # a person's session outlives a rotation
    assert _answer(browsers["adam"], _escalation(shop["bob"])).status_code == 303
