"""Project settings (schema 8): what `ready` shows an agent and when a claim's holder counts as idle.

Any member reads them; a coordinator or the project key changes them; bad values are a 422 that
changes nothing; another project neither sees nor changes them. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import pytest

DEFAULTS = {"ready_scope": "all", "idle_claim_minutes": 30}


def _key(make_agent, project: str = "shop") -> dict[str, str]:
    return {"Authorization": f"Bearer {make_agent.keys[project]}"}


def test_a_new_project_has_the_default_settings_for_every_member(make_pg_agent):
    ana = make_pg_agent(alias="ana")
    r = ana.get("/project/settings")
    assert r.status_code == 200, r.json
    assert r.json == DEFAULTS
    by_key = ana.client.get("/v1/project/settings", headers=_key(make_pg_agent))
    assert by_key.status_code == 200 and by_key.json == DEFAULTS


def test_a_coordinator_changes_settings_and_every_member_sees_them(make_pg_agent):
    ana = make_pg_agent(alias="ana")
    cora = make_pg_agent(alias="cora", role="coordinator")
    r = cora.patch("/project/settings", {"ready_scope": "role"})
    assert r.status_code == 200, r.json
    assert r.json == {"ready_scope": "role", "idle_claim_minutes": 30}
    r = cora.patch("/project/settings", {"idle_claim_minutes": 5})
    assert r.json == {"ready_scope": "role", "idle_claim_minutes": 5}
    assert ana.get("/project/settings").json == {"ready_scope": "role", "idle_claim_minutes": 5}


def test_the_project_key_changes_both_at_once(make_pg_agent):
    ana = make_pg_agent(alias="ana")
    r = ana.client.patch("/v1/project/settings", json={"ready_scope": "role", "idle_claim_minutes": 1440},
                         headers=_key(make_pg_agent))
    assert r.status_code == 200, r.json
    assert ana.get("/project/settings").json == {"ready_scope": "role", "idle_claim_minutes": 1440}


@pytest.mark.parametrize("body, field", [
    ({"ready_scope": "mine"}, "ready_scope"), ({"ready_scope": ""}, "ready_scope"),
    ({"idle_claim_minutes": 0}, "idle_claim_minutes"), ({"idle_claim_minutes": 1441}, "idle_claim_minutes"),
    ({"idle_claim_minutes": "10"}, "idle_claim_minutes"), ({"idle_claim_minutes": 2.5}, "idle_claim_minutes"),
    ({"idle_claim_minutes": True}, "idle_claim_minutes"), ({"colour": "red"}, "colour"), ({}, "_schema")])
def test_bad_values_are_a_422_naming_the_field_and_change_nothing(make_agent, body, field):
    cora = make_agent(alias="cora", role="coordinator")
    r = cora.patch("/project/settings", body)
    assert r.status_code == 422, r.json
    assert field in r.json["error"]["fields"]
    assert cora.get("/project/settings").json == DEFAULTS


def test_an_agent_that_is_not_a_coordinator_gets_403_and_changes_nothing(make_agent):
    make_agent(alias="cora", role="coordinator")
    bob = make_agent(alias="bob")
    r = bob.patch("/project/settings", {"ready_scope": "role"})
    assert r.status_code == 403, r.json
    assert "coordinator" in r.json["error"]["message"]
    assert bob.get("/project/settings").json == DEFAULTS


def test_another_project_neither_sees_nor_changes_them(make_agent):
    cora = make_agent(project="shop", alias="cora", role="coordinator")
    cora.patch("/project/settings", {"ready_scope": "role", "idle_claim_minutes": 7})
    eve = make_agent(project="rival", alias="eve", role="coordinator")
    assert eve.get("/project/settings").json == DEFAULTS
    assert eve.patch("/project/settings", {"idle_claim_minutes": 99}).status_code == 200
    key_b = cora.client.patch("/v1/project/settings", json={"ready_scope": "all"},
                              headers=_key(make_agent, "rival"))
    assert key_b.status_code == 200
    assert cora.get("/project/settings").json == {"ready_scope": "role", "idle_claim_minutes": 7}


def test_a_change_is_in_the_audit_log_with_who_made_it(make_agent):
    from store.models import Event

    cora = make_agent(alias="cora", role="coordinator")
    cora.patch("/project/settings", {"ready_scope": "role"})
    cora.patch("/project/settings", {"ready_scope": "role"})  # no change: no second event
    rows = list(Event.select().where(Event.kind == "project.settings"))
    assert len(rows) == 1 and '"by": "cora"' in rows[0].data and '"ready_scope": "role"' in rows[0].data


def test_a_version_3_database_gets_the_default_settings_on_upgrade(settings, database_url, real_redis):
    from tests.conftest import _make_app
    from tests.test_deploy import ANA_TOKEN, OLD_KEY, _build_version_3

    _build_version_3(database_url)
    app = _make_app(settings.with_(database_url=database_url), real_redis)  # migrates, as `release` does
    client = app.test_client()
    r = client.get("/v1/project/settings", headers={"Authorization": f"Bearer {ANA_TOKEN}"})
    assert r.status_code == 200, r.json
    assert r.json == DEFAULTS
    changed = client.patch("/v1/project/settings", json={"idle_claim_minutes": 12},
                           headers={"Authorization": f"Bearer {OLD_KEY}"})
    assert changed.status_code == 200 and changed.json["idle_claim_minutes"] == 12


# -- `wire settings` ------------------------------------------------------------------------------

def flask_transport(test_client):
    """A CLI transport that calls the app in-process (as `http_transport` calls a server)."""
    from urllib.parse import urlsplit

    def send(method: str, url: str, body: bytes | None, headers: dict[str, str], timeout: float):
        parts = urlsplit(url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        r = test_client.open(path, method=method, data=body, headers=headers)
        return r.status_code, r.data, dict(r.headers)

    return send


def run_wire(agent, *args: str, key: str | None = None):
    from click.testing import CliRunner

    from cli import cli
    from cli.client import Client

    client = Client("http://wire.test", token=agent.token, transport=flask_transport(agent.client))
    env = {"WIRE_PROJECT_KEY": key} if key else {}
    return CliRunner().invoke(cli, list(args), obj=client, env=env, catch_exceptions=False)


def test_wire_settings_shows_them_and_a_coordinator_changes_them(make_agent, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cora = make_agent(alias="cora", role="coordinator")
    bob = make_agent(alias="bob")
    shown = run_wire(bob, "settings")
    assert shown.exit_code == 0, shown.output
    assert "ready-scope: all" in shown.output and "idle-claim-minutes: 30" in shown.output
    changed = run_wire(cora, "settings", "--ready-scope", "role", "--idle-claim-minutes", "45")
    assert changed.exit_code == 0, changed.output
    assert "ready-scope: role" in changed.output and "idle-claim-minutes: 45" in changed.output
    assert bob.get("/project/settings").json == {"ready_scope": "role", "idle_claim_minutes": 45}


def test_wire_settings_refuses_others_and_bad_values_before_calling(make_agent, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    bob = make_agent(alias="bob")
    refused = run_wire(bob, "settings", "--ready-scope", "role")
    assert refused.exit_code == 1 and "coordinator" in refused.output
    assert run_wire(bob, "settings", "--idle-claim-minutes", "0").exit_code == 2
    assert run_wire(bob, "settings", "--ready-scope", "mine").exit_code == 2
    with_key = run_wire(bob, "settings", "--ready-scope", "role", key=make_agent.keys["shop"])
    assert with_key.exit_code == 0, with_key.output
    assert bob.get("/project/settings").json["ready_scope"] == "role"
