"""Policies: versioned bundles of invariants and role playbooks; agents read (with ETags), humans
(the project key) set, activate and reset; every project has its own.
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from store import policies
from store.errors import InvalidPolicy

BUNDLE = """# Invariants

Always run the tests.

# Role: developer

## Loop

```bash
# not a section: a comment inside fenced code
wire ready
```

Ship small.

# Role: QA-Lead

Break things.
"""


def _as_key(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def team(make_agent, client):
    alice = make_agent(project="shop", alias="alice")
    carol = make_agent(project="shop", alias="carol", role="coordinator")
    key = make_agent.keys["shop"]

    def put(body: dict, key: str = key):
        return client.put("/v1/policy", json=body, headers=_as_key(key))

    return SimpleNamespace(alice=alice, carol=carol, key=key, put=put)


# -- reading ---------------------------------------------------------------------------------------

def test_a_new_project_serves_the_shipped_defaults_for_the_agents_role(team):
    r = team.alice.get("/policy")
    assert r.status_code == 200
    view = r.json
    assert view["version"] == 1 and view["source"] == "default" and view["active"] is True
    assert view["role"] == "developer" and view["playbook_role"] == "developer"
    assert view["invariants"] == policies.default_bundle().invariants
    assert view["playbook"] == policies.default_bundle().roles["developer"]
    assert view["roles"] == list(policies.DEFAULT_ROLES)
    assert r.headers["ETag"] == f'"{view["etag"]}"'
    assert team.carol.get("/policy").json["playbook"] == policies.default_bundle().roles["coordinator"]


def test_the_default_texts_teach_the_wire_workflow():
    bundle = policies.default_bundle()
    for needle in ("wire ready", "wire claim", "--jump-in", "stale", "wire close", "--reason", "wire release",
                   "wire mail send", "wire chat ask", "Mail first", "wire lock",
                   "reserved for you automatically", "wire escalate", "--option", "--severity",
                   "Hand a bead over", "wire watch", "wire policy"):
        assert needle in bundle.invariants, needle
    coordinator = bundle.roles["coordinator"]
    for needle in ("wire status", "Assign", "stale", "Nudge", "wire escalations", "wire respond"):
        assert needle in coordinator, needle
    assert set(policies.DEFAULT_ROLES) <= set(bundle.roles)
    for role in ("frontend", "backend"):
        assert bundle.roles[role].startswith(bundle.roles["developer"])
        assert f"## {role.capitalize()} specifics" in bundle.roles[role]


def test_any_role_can_be_read_and_a_role_without_a_playbook_gets_the_developers(team):
    reviewer = policies.default_bundle().roles["reviewer"]
    assert team.alice.get("/policy?role=reviewer").json["playbook"] == reviewer
    qa = team.alice.get("/policy?role=qa").json
    assert qa["role"] == "qa" and qa["playbook_role"] == "developer"


def test_humans_read_it_with_the_project_key(team, client):
    view = client.get("/v1/policy", headers=_as_key(team.key)).json
    assert view["role"] is None and view["playbook"] is None and view["invariants"]
    assert client.get("/v1/policy?role=backend", headers=_as_key(team.key)).json["playbook_role"] == "backend"


def test_reads_answer_304_while_the_etag_is_current(team, client):
    first = team.alice.get("/policy")
    etag = first.headers["ETag"]
    again = client.get("/v1/policy", headers={**_as_key(team.alice.token), "If-None-Match": etag})
    assert again.status_code == 304 and again.data == b""
    other_role = client.get("/v1/policy?role=reviewer",
                            headers={**_as_key(team.alice.token), "If-None-Match": etag})
    assert other_role.status_code == 200
    assert team.put({"markdown": BUNDLE}).status_code == 201
    changed = client.get("/v1/policy", headers={**_as_key(team.alice.token), "If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag
    bundle = team.alice.get("/policy/bundle")
    unchanged = client.get("/v1/policy/bundle",
                           headers={**_as_key(team.alice.token), "If-None-Match": bundle.headers["ETag"]})
    assert unchanged.status_code == 304


# -- changing --------------------------------------------------------------------------------------

def test_humans_set_a_markdown_bundle_as_a_new_active_version(team, worker):
    r = team.put({"markdown": BUNDLE})
    assert r.status_code == 201 and r.json["version"] == 2 and r.json["created"] is True
    worker.run()
    first = team.alice.get("/policy")  # alice's first call after the change carries the notice, once
    banner = json.loads(first.headers["X-Wire-Banner"])
    assert [i["text"] for i in banner["new"]] == [
        "policy v2 is now active (was v1): read yours with `wire policy`"]
    view = first.json
    assert view["version"] == 2 and view["invariants"] == "Always run the tests."
    assert view["playbook"].startswith("## Loop") and "# not a section" in view["playbook"]
    assert team.alice.get("/policy?role=qa-lead").json["playbook"] == "Break things."
    assert team.carol.get("/policy").json["playbook_role"] == "developer"  # no coordinator playbook in v2
    assert [(v["version"], v["active"], v["source"]) for v in team.alice.get("/policy/history").json] == [
        (2, True, "set"), (1, False, "default")]
    same = team.put({"markdown": BUNDLE})
    assert same.status_code == 200 and same.json["created"] is False and same.json["version"] == 2
    worker.run()
    again = team.alice.get("/whoami").headers.get("X-Wire-Banner")
    assert again is None or json.loads(again)["new"] == []  # an unchanged bundle announces nothing


def test_humans_set_a_json_bundle(team):
    r = team.put({"invariants": "Be kind.", "playbooks": {"developer": "Write tests."}})
    assert r.status_code == 201 and r.json["roles"] == ["developer"]
    assert team.alice.get("/policy").json["playbook"] == "Write tests."
    assert team.put({"invariants": "x", "markdown": "# Invariants\nx"}).status_code == 422
    assert team.put({}).status_code == 422
    assert team.put({"playbooks": {"Bad Role!": "x"}}).status_code == 422


def test_the_bundle_of_any_version_comes_back_as_markdown_that_parses_to_it(team):
    team.put({"markdown": BUNDLE})
    old = team.alice.get("/policy/bundle?version=1").json
    assert old["active"] is False and old["playbooks"] == policies.default_bundle().roles
    assert policies.parse_markdown(old["markdown"]) == policies.default_bundle()
    assert team.alice.get("/policy/bundle?version=9").status_code == 404


def test_humans_activate_an_earlier_version_and_reset_to_the_defaults(team):
    team.put({"markdown": BUNDLE})
    assert team.carol.client.post("/v1/policy/activate", json={"version": 1},
                                  headers=_as_key(team.key)).json["version"] == 1
    assert team.alice.get("/policy").json["version"] == 1
    missing = team.carol.client.post("/v1/policy/activate", json={"version": 7}, headers=_as_key(team.key))
    assert missing.status_code == 404
    team.carol.client.post("/v1/policy/activate", json={"version": 2}, headers=_as_key(team.key))
    reset = team.carol.client.post("/v1/policy/reset", headers=_as_key(team.key))
    assert reset.status_code == 201 and reset.json["version"] == 3 and reset.json["source"] == "reset"
    history = team.alice.get("/policy/history").json
    assert history[0]["etag"] == history[-1]["etag"]  # the defaults again
    assert team.carol.client.post("/v1/policy/reset", headers=_as_key(team.key)).json["created"] is False


def test_agents_cannot_change_the_policy(team):
    for agent in (team.alice, team.carol):  # a coordinator is still an agent
        assert agent.client.put("/v1/policy", json={"markdown": BUNDLE},
                                headers=_as_key(agent.token)).status_code == 403
        assert agent.post("/policy/activate", {"version": 1}).status_code == 403
        assert agent.post("/policy/reset").status_code == 403
    assert [v["version"] for v in team.alice.get("/policy/history").json] == [1]


def test_each_project_has_its_own_policy(team, make_agent, client):
    eve = make_agent(project="rival", alias="eve")
    rival_key = make_agent.keys["rival"]
    assert team.put({"markdown": "# Invariants\n\nRival rules."}, key=rival_key).status_code == 201
    assert eve.get("/policy").json["invariants"] == "Rival rules."
    assert team.alice.get("/policy").json["version"] == 1
    assert team.alice.get("/policy").json["invariants"] == policies.default_bundle().invariants
    activated = client.post("/v1/policy/activate", json={"version": 2}, headers=_as_key(team.key))
    assert activated.status_code == 404
    assert [v["version"] for v in client.get("/v1/policy/history", headers=_as_key(rival_key)).json] == [2, 1]


# -- the markdown format ---------------------------------------------------------------------------

def test_sections_split_on_level_one_headings_outside_fenced_code():
    bundle = policies.parse_markdown(BUNDLE)
    assert list(bundle.roles) == ["developer", "qa-lead"]
    assert "```bash\n# not a section" in bundle.roles["developer"]
    assert policies.parse_markdown(policies.to_markdown(bundle)) == bundle


@pytest.mark.parametrize("text, message", [
    ("# Policy\n\nhello", "line 1: unknown section"),
    ("intro\n# Invariants\nx", "line 1: text before the first section"),
    ("# Invariants\nx\n# Invariants\ny", "line 3: section '# Invariants' appears twice"),
    ("# Role: dev\n\n", "the playbook of role dev is empty"),
    ("# Invariants\n\n", "the invariants section is empty"),
    ("", "the bundle is empty"),
    ("# Role: a b\nx", "unknown section"),
])
def test_malformed_markdown_bundles_are_refused_naming_the_problem(text, message):
    with pytest.raises(InvalidPolicy, match=message):
        policies.parse_markdown(text)


def test_a_malformed_bundle_is_a_422_naming_the_line(team):
    r = team.put({"markdown": "# Invariants\nok\n# Rules\nx"})
    assert r.status_code == 422
    assert r.json["error"]["code"] == "invalid_policy" and r.json["error"]["line"] == 3
