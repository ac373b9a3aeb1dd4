"""`ready` on each shared beads file matches the rule.

The expected lists in tests/data/ready_expected.json were derived from the written rule by an
independent reasoning pass (see tests/data/READY_EXPECTED.md), not copied from this server.
"""

from __future__ import annotations

import pytest

from tests.conftest import beads_file

SINGLE = ["beadhub-beads.jsonl", "beadhub-beads-repo2.jsonl", "gastown-issues.jsonl",
          "mcp-agent-mail-issues.jsonl", "mcp-agent-mail-beads-variant.jsonl"]


@pytest.mark.parametrize("name", SINGLE)
def test_ready_on_a_shared_file_matches_the_rule(make_agent, ready_expected, name):
    agent = make_agent(project="ready", origin=f"git@github.com:acme/{name.split('.')[0]}.git")
    assert agent.sync(beads_file(name)).status_code == 200
    got = [b["id"] for b in agent.get("/ready?limit=10000").json]
    assert got == ready_expected[name]


def test_a_blocker_in_another_repo_of_the_project_counts(make_agent, ready_expected):
    a = make_agent(project="cross", origin="git@github.com:acme/cross-a.git")
    b = make_agent(project="cross", origin="git@github.com:acme/cross-b.git")
    a.sync(beads_file("beadhub-beads-cross-a.jsonl"))
    b.sync(beads_file("beadhub-beads-cross-b.jsonl"))
    got = [f"{bead['repo'].rsplit('/', 1)[-1]}:{bead['id']}" for bead in a.get("/ready?limit=100").json]
    assert got == ready_expected["cross"]


def test_an_unknown_cross_repo_blocker_blocks_until_its_repo_syncs(make_agent):
    a = make_agent(project="cross2", origin="git@github.com:acme/cross-a.git")
    a.sync(beads_file("beadhub-beads-cross-a.jsonl"))
    explained = a.get("/ready/bd-blocked-closed").json
    assert explained["ready"] is False
    assert any("unknown" in reason for reason in explained["reasons"])
    b = make_agent(project="cross2", origin="git@github.com:acme/cross-b.git")
    b.sync(beads_file("beadhub-beads-cross-b.jsonl"))
    assert a.get("/ready/bd-blocked-closed").json == {
        "id": "bd-blocked-closed", "repo": "github.com/acme/cross-a", "ready": True, "reasons": []}


def test_explain_names_the_open_cross_repo_blocker(make_agent):
    a = make_agent(project="cross3", origin="git@github.com:acme/cross-a.git")
    b = make_agent(project="cross3", origin="git@github.com:acme/cross-b.git")
    a.sync(beads_file("beadhub-beads-cross-a.jsonl"))
    b.sync(beads_file("beadhub-beads-cross-b.jsonl"))
    reasons = a.get("/ready/bd-blocked-open").json["reasons"]
    assert reasons == ["blocked by cross-b:bd-backend (open)"]


def test_a_bead_under_a_blocked_parent_is_not_ready(make_agent):
    agent = make_agent(project="parent")
    blocker = agent.create("Blocker")
    epic = agent.create("Epic", blocked_by=[blocker])
    child = agent.create("Child", parent=epic)
    ready = [b["id"] for b in agent.get("/ready").json]
    assert blocker in ready and epic not in ready and child not in ready
    assert f"parent shop:{epic} is blocked" in agent.get(f"/ready/{child}").json["reasons"]


def test_deferred_and_internal_beads_are_not_ready(make_agent):
    agent = make_agent(project="deferred")
    lines = [
        '{"id":"bd-later","title":"Later","status":"open","defer_until":"2999-01-01T00:00:00Z"}',
        '{"id":"bd-past","title":"Past","status":"open","defer_until":"2000-01-01T00:00:00Z"}',
        '{"id":"bd-msg","title":"A message","status":"open","issue_type":"message"}',
        '{"id":"bd-ghost","title":"Needs a ghost","status":"open","dependencies":'
        '[{"depends_on_id":"bd-nowhere","type":"waits-for"}]}',
        '{"id":"bd-rel","title":"Only related","status":"open","dependencies":'
        '[{"depends_on_id":"bd-nowhere","type":"related"}]}',
    ]
    agent.sync("\n".join(lines))
    assert sorted(b["id"] for b in agent.get("/ready").json) == ["bd-past", "bd-rel"]
