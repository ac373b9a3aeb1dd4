"""Roles: an agent cannot promote itself to coordinator (who reads every escalation, with the other
agents' recent mail attached) or demote one; a human with the project key sets roles, through the
API and `wire workspace role`, and `wire init --role coordinator` works only with the key given
explicitly (issue 15, section 2).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import cli
from cli.client import Client
from store.models import Event
from tests.test_security_keys import FlaskTransport, as_key

ORIGIN = "https://github.com/acme/shop.git"


@pytest.fixture
def shop(make_agent):
    """adam (developer), carol (developer) with an escalation carrying her mail, the project key."""
    adam = make_agent(project="alpha", origin=ORIGIN, alias="adam")
    carol = make_agent(project="alpha", origin=ORIGIN, alias="carol")
    assert carol.post("/mail", {"to": "adam", "body": "the staging password is hunter2"}).status_code == 201
    esc = carol.post("/escalations", {"subject": "Rotate staging?", "situation": "see mail"}).json
    return adam, carol, esc["id"], make_agent.keys["alpha"]


def reinit(agent, role: str):
    body = {"project": "alpha", "repo_origin": ORIGIN, "alias": agent.alias, "role": role}
    return agent.client.post("/v1/init", json=body, headers=agent._h())


def test_an_agent_cannot_promote_itself_to_coordinator_by_running_init_again(shop):
    adam, _, esc, _ = shop
    r = reinit(adam, "coordinator")
    assert r.status_code == 403 and r.json["error"]["code"] == "role_needs_key"
    assert "wire workspace role adam coordinator" in r.json["error"]["message"]
    assert adam.get("/whoami").json["role"] == "developer"
    assert adam.get(f"/escalations/{esc}").status_code == 404  # carol's escalation (and her mail) stays hers
    assert reinit(adam, "reviewer").status_code == 200  # other roles are the agent's own business
    assert adam.get("/whoami").json["role"] == "reviewer"


def test_a_coordinator_cannot_be_moved_out_of_the_role_by_its_token_either(make_agent):
    cora = make_agent(project="alpha", origin=ORIGIN, alias="cora", role="coordinator")
    assert reinit(cora, "developer").status_code == 403
    assert reinit(cora, "coordinator").status_code == 200  # unchanged: a plain re-init
    assert cora.get("/whoami").json["role"] == "coordinator"


def test_a_human_with_the_project_key_sets_the_role_and_the_team_hears_it(shop, client):
    adam, _, esc, key = shop
    assert adam.get(f"/escalations/{esc}").status_code == 404  # cached in this process's auth cache now
    r = as_key(client, key, "PUT", "/v1/workspaces/adam/role", {"role": "coordinator"})
    assert r.status_code == 200
    assert r.json == {"alias": "adam", "role": "coordinator", "previous": "developer"}
    assert adam.get(f"/escalations/{esc}").status_code == 200
    (event,) = Event.select().where(Event.kind == "workspace.role_changed")
    assert '"role": "coordinator"' in event.data and '"previous": "developer"' in event.data
    r = as_key(client, key, "PUT", "/v1/workspaces/adam/role", {"role": "developer"})
    assert r.status_code == 200 and adam.get(f"/escalations/{esc}").status_code == 404
    assert as_key(client, key, "PUT", "/v1/workspaces/nobody/role", {"role": "developer"}).status_code == 404
    assert as_key(client, key, "PUT", "/v1/workspaces/adam/role", {"role": "boss\n"}).status_code == 422
    r = adam.client.put("/v1/workspaces/adam/role", json={"role": "coordinator"}, headers=adam._h())
    assert r.status_code == 403 and adam.get("/whoami").json["role"] == "developer"


@pytest.fixture
def worktree(tmp_path: Path, monkeypatch) -> Path:
    tree = tmp_path / "shop"
    tree.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=tree, check=True)
    subprocess.run(["git", "remote", "add", "origin", ORIGIN], cwd=tree, check=True)
    monkeypatch.setenv("WIRE_CONFIG_DIR", str(tmp_path / "cfg"))
    monkeypatch.delenv("WIRE_PROJECT_KEY", raising=False)
    monkeypatch.chdir(tree)
    return tree


def wire(client, tree: Path, *args: str, env: dict[str, str] | None = None):
    obj = Client("http://wire.test", transport=FlaskTransport(client), start=tree, auto_reserve=False)
    return CliRunner().invoke(cli, list(args), obj=obj, env=env)


def test_wire_init_into_coordinator_needs_the_key_given_explicitly_not_the_saved_one(client, worktree):
    out = wire(client, worktree, "init", "--project", "alpha", "--alias", "first")
    assert out.exit_code == 0, out.output  # created the project: its key is saved in keys.json
    key = next(line.split()[-1] for line in out.output.splitlines() if line.startswith("project key:"))
    out = wire(client, worktree, "init", "--role", "coordinator")
    assert out.exit_code == 1 and "--key" in out.output and "WIRE_PROJECT_KEY" in out.output, out.output
    assert wire(client, worktree, "whoami", "--json").output.count('"role": "developer"') == 1
    out = wire(client, worktree, "init", "--role", "coordinator", env={"WIRE_PROJECT_KEY": key})
    assert out.exit_code == 0 and "first (coordinator)" in out.output, out.output
    out = wire(client, worktree, "workspace", "role", "first", "reviewer", "--key", key)
    assert out.exit_code == 0 and "first is now reviewer (was coordinator)" in out.output, out.output
    # a plain re-init keeps what the human set (its file still says coordinator)
    out = wire(client, worktree, "init")
    assert out.exit_code == 0 and "first (reviewer)" in out.output, out.output
