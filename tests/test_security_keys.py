"""Key management and rate limits: `wire key rotate`, `wire workspace revoke`, 429 with Retry-After,
and no key or token ever in a log record.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import cli
from cli.client import Client
from store.models import Claim, Event, Message
from tests.clock import FakeClock


@pytest.fixture
def team(make_agent):
    """Project shop: ana (developer, holds a claim and a reservation), cora (coordinator), the key."""
    ana = make_agent(alias="ana")
    cora = make_agent(alias="cora", role="coordinator")
    bead = ana.create("Orders cleanup")
    assert ana.post(f"/beads/{bead}/claim").status_code == 200
    assert ana.post("/locks", {"paths": ["db/**"]}).status_code == 200
    return ana, cora, bead, make_agent.keys["shop"]


def as_key(client, key, method, path, body=None):
    return client.open(path, method=method, json=body if body is not None else {},
                       headers={"Authorization": f"Bearer {key}"})


# -- rotate ----------------------------------------------------------------------------------

def test_rotating_the_key_kills_the_old_one_at_once_and_keeps_workspaces_working(client, team):
    ana, _, _, key = team
    r = as_key(client, key, "POST", "/v1/project/key/rotate")
    assert r.status_code == 200
    new = r.json["project_key"]
    assert new.startswith("bw_pk_") and new != key
    old = as_key(client, key, "GET", "/v1/project/webhook")
    assert old.status_code == 401 and old.json["error"]["code"] == "unauthorized"
    assert as_key(client, new, "GET", "/v1/project/webhook").status_code == 200
    assert ana.get("/whoami").status_code == 200  # tokens are not the key
    join = {"project": "shop", "repo_origin": "git@github.com:acme/shop.git"}
    assert as_key(client, key, "POST", "/v1/init", join).status_code == 403
    assert as_key(client, new, "POST", "/v1/init", join).status_code == 201
    events = [e.data for e in Event.select().where(Event.kind == "project.key_rotated")]
    assert len(events) == 1 and new not in events[0] and key not in events[0]


# -- revoke ----------------------------------------------------------------------------------

def test_a_revoked_workspace_gets_401_at_once_even_with_its_token_cached(client, team):
    ana, _, bead, key = team
    assert ana.get("/whoami").status_code == 200  # the token is now in this process's auth cache
    r = as_key(client, key, "POST", "/v1/workspaces/ana/revoke")
    assert r.status_code == 200
    assert r.json == {"alias": "ana", "revoked": True, "already": False, "stale_claims": [bead],
                      "released_reservations": 1}
    refused = ana.get("/whoami")
    assert refused.status_code == 401
    assert "revoked" in refused.json["error"]["message"]
    assert ana.post("/beads", {"title": "sneaky"}).status_code == 401
    again = client.post("/v1/init", json={"project": "shop", "repo_origin": "git@github.com:acme/shop.git"},
                        headers={"Authorization": f"Bearer {ana.token}"})
    assert again.status_code == 403
    assert as_key(client, key, "POST", "/v1/workspaces/ana/revoke").json["already"] is True


def test_a_revoked_workspaces_claims_go_stale_and_its_team_is_told(client, team):
    _, cora, bead, key = team
    as_key(client, key, "POST", "/v1/workspaces/ana/revoke")
    assert Claim.get().stale is True
    claims = cora.get("/claims").json
    assert [(c["bead"], c["stale"]) for c in claims] == [(bead, True)]
    told = [m.body for m in Message.select().where(Message.kind == "notice")]
    assert any(f"ana's claim on {bead}" in t and "revoked" in t for t in told)
    assert cora.get("/locks").json == []  # its reservations went with it
    assert cora.post(f"/beads/{bead}/claim").status_code == 200  # stale: no --jump-in needed
    assert [w["alias"] for w in cora.get("/workspaces").json] == ["cora"]


def test_key_routes_are_for_humans_only_and_stay_in_their_project(client, team, make_agent):
    ana, _, _, key = team
    for path in ("/v1/project/key/rotate", "/v1/workspaces/cora/revoke"):
        r = client.post(path, json={}, headers={"Authorization": f"Bearer {ana.token}"})
        assert r.status_code == 403, path
        assert client.post(path, json={}).status_code == 401
    make_agent(project="rival", alias="eve")
    rival_key = make_agent.keys["rival"]
    r = as_key(client, rival_key, "POST", "/v1/workspaces/ana/revoke")
    assert r.status_code == 404
    assert ana.get("/whoami").status_code == 200
    assert as_key(client, key, "POST", "/v1/workspaces/nobody/revoke").status_code == 404


# -- the CLI ---------------------------------------------------------------------------------

class FlaskTransport:
    """The CLI's transport, answered by the Flask test client."""

    def __init__(self, client) -> None:
        self.client = client

    def __call__(self, method, url, body, headers, timeout):
        path = url.split("://", 1)[1].split("/", 1)[1]
        r = self.client.open("/" + path, method=method, data=body, headers=headers)
        return r.status_code, r.get_data(), dict(r.headers)


def test_wire_key_rotate_saves_the_new_key_and_wire_workspace_revoke_kills_a_token(client, team, tmp_path,
                                                                                   monkeypatch):
    ana, _, _, key = team
    monkeypatch.setenv("WIRE_CONFIG_DIR", str(tmp_path / "cfg"))
    monkeypatch.chdir(tmp_path)
    wire = Client("http://wire.test", transport=FlaskTransport(client), start=tmp_path, auto_reserve=False)
    out = CliRunner().invoke(cli, ["key", "rotate", "--project", "shop", "--key", key], obj=wire)
    assert out.exit_code == 0, out.output
    saved = json.loads((tmp_path / "cfg" / "keys.json").read_text())
    new = saved["http://wire.test|shop"]
    assert f"project key: {new}" in out.output and "old key no longer works" in out.output
    # human-only: the saved key is never picked up (an agent in this worktree could use it), only --key
    for args in (["workspace", "revoke", "ana"], ["key", "rotate", "--project", "shop"]):
        out = CliRunner().invoke(cli, args, obj=wire)
        assert out.exit_code == 1 and "needs the project key" in out.output, out.output
    assert ana.get("/whoami").status_code == 200
    out = CliRunner().invoke(cli, ["workspace", "revoke", "ana", "--key", new], obj=wire)
    assert out.exit_code == 0, out.output
    assert "ana is revoked" in out.output
    assert ana.get("/whoami").status_code == 401
    out = CliRunner().invoke(cli, ["key", "rotate", "--project", "shop", "--key", key], obj=wire)
    assert out.exit_code == 1 and "unknown project key" in out.output


def test_wire_dashboard_ignores_the_saved_key_and_takes_only_an_explicit_one(
    client, team, tmp_path, monkeypatch
):
    from cli import local

    ana, _, _, key = team
    monkeypatch.setenv("WIRE_CONFIG_DIR", str(tmp_path / "cfg"))
    monkeypatch.delenv("WIRE_PROJECT_KEY", raising=False)
    local.save_key("http://wire.test", "shop", key)  # as `wire init` left it on the first human's machine
    local.write_workspace(tmp_path, {"url": "http://wire.test", "token": ana.token, "project": "shop"})
    wire = Client("http://wire.test", transport=FlaskTransport(client), start=tmp_path, auto_reserve=False)
    out = CliRunner().invoke(cli, ["dashboard", "--json"], obj=wire)
    # the agent's read-only use
    assert out.exit_code == 0 and json.loads(out.stdout)["access"] == "viewer", out.output
    out = CliRunner().invoke(cli, ["dashboard", "--json"], obj=wire, env={"WIRE_PROJECT_KEY": key})
    assert out.exit_code == 0 and json.loads(out.stdout)["access"] == "human", out.output


# -- rate limits -----------------------------------------------------------------------------

@pytest.fixture
def clock(monkeypatch):
    """A frozen clock for the rate limiter (GCRA decides by the `now` the server passes to Redis)."""
    c = FakeClock(1_800_000_000.0)
    monkeypatch.setattr("store.workspaces.now", c)
    monkeypatch.setattr("store.limits.now", c)
    return c


@pytest.fixture
def limited(settings, redis):
    from tests.conftest import _make_app

    app = _make_app(settings.with_(rate_token=1, rate_token_burst=3, rate_project=1, rate_project_burst=5,
                                   rate_ip=1, rate_ip_burst=2), redis)
    yield app
    app.extensions["beadwire"].broker.flush_all()


def test_a_token_past_its_rate_gets_429_with_retry_after_and_the_standard_error(limited, clock):
    from tests.conftest import _agent_factory

    make = _agent_factory(limited.test_client())
    ana = make(alias="ana")
    assert [ana.get("/whoami").status_code for _ in range(3)] == [200, 200, 200]
    r = ana.get("/whoami")
    assert r.status_code == 429
    assert r.headers["Retry-After"] == "1"
    assert r.json["error"]["code"] == "rate_limited" and r.json["error"]["retry_after"] == 1
    assert "too many requests" in r.json["error"]["message"]
    clock.t += 1.0
    assert ana.get("/whoami").status_code == 200


def test_the_project_bucket_limits_all_its_tokens_together_and_no_other_project(limited, clock):
    from tests.conftest import _agent_factory

    client = limited.test_client()
    make = _agent_factory(client)
    ana, bob = make(alias="ana"), make(alias="bob")
    codes = [agent.get("/whoami").status_code for agent in (ana, bob, ana, bob, ana, bob)]
    assert codes == [200, 200, 200, 200, 200, 429]  # 5 for the project, 3 per token
    key = make.keys["shop"]
    assert as_key(client, key, "GET", "/v1/project/webhook").status_code == 429
    clock.t += 100  # the IP bucket of init refilled; another project has its own buckets
    eve = make(project="rival", alias="eve")
    assert eve.get("/whoami").status_code == 200


def test_unauthenticated_init_is_limited_per_client_address(limited, clock):
    client = limited.test_client()
    body = {"project": "p{}", "repo_origin": "git@github.com:acme/shop.git"}
    codes = [client.post("/v1/init", json={**body, "project": f"p{i}"}).status_code for i in range(3)]
    assert codes == [201, 201, 429]
    other = client.post("/v1/init", json={**body, "project": "p9"}, environ_base={"REMOTE_ADDR": "10.0.0.9"})
    assert other.status_code == 201


def test_unknown_bearers_are_charged_to_the_client_address(limited, clock):
    client = limited.test_client()
    codes = [client.get("/v1/whoami", headers={"Authorization": f"Bearer bw_ws_guess{i}"}).status_code
             for i in range(3)]
    assert codes == [401, 401, 429]
    guessed = client.get("/v1/project/webhook", headers={"Authorization": "Bearer bw_pk_guess"})
    assert guessed.status_code == 429
    other = {"REMOTE_ADDR": "10.0.0.7"}
    elsewhere = client.get("/v1/whoami", headers={"Authorization": "Bearer bw_ws_x"}, environ_base=other)
    assert elsewhere.status_code == 401


def test_dashboard_logins_are_limited_per_client_address(limited, clock):
    client = limited.test_client()
    codes = [client.post("/login", data={"key": "bw_pk_guess"}).status_code for _ in range(3)]
    assert codes[:2] != [429, 429] and codes[2] == 429
    assert client.get("/login/not-a-link").status_code == 429  # the same address's bucket


def test_the_cli_explains_a_429():
    from cli.client import error_from_response

    exc = error_from_response(429, {"error": {"code": "rate_limited", "message": "too many requests for this "
                                              "token or project: retry in 2 s", "retry_after": 2}})
    assert exc.exit_code == 1 and "retry in 2 s" in exc.message and "wait and retry" in exc.hint


def test_the_default_limits_leave_an_honest_agent_alone(app, make_agent):
    ana = make_agent(alias="ana")
    assert {ana.get("/whoami").status_code for _ in range(300)} == {200}


# -- secrets never logged --------------------------------------------------------------------

def test_no_key_or_token_appears_in_any_log_record(client, team, caplog):
    ana, cora, bead, key = team
    caplog.set_level(logging.DEBUG)
    ana.get("/whoami")
    ana.post(f"/beads/{bead}/close", {"reason": "done"})
    ana.get("/nope")
    client.get("/v1/whoami", headers={"Authorization": f"Bearer {ana.token}x"})
    as_key(client, key, "POST", "/v1/workspaces/cora/revoke")
    cora.get("/whoami")
    new = as_key(client, key, "POST", "/v1/project/key/rotate").json["project_key"]
    as_key(client, key, "GET", "/v1/project/webhook")
    text = "\n".join(f"{r.getMessage()} {r.args} {getattr(r, '__dict__', {})}" for r in caplog.records)
    for secret in (ana.token, cora.token, key, new):
        assert secret not in text


def test_keys_and_tokens_are_stored_only_as_hashes(client, team, settings, redis):
    ana, cora, _, key = team
    new = as_key(client, key, "POST", "/v1/project/key/rotate").json["project_key"]
    as_key(client, new, "POST", "/v1/workspaces/cora/revoke")
    client.post("/v1/beads", json={"title": "keyed"}, headers={"Authorization": f"Bearer {ana.token}",
                                                                "Idempotency-Key": "k-1"})
    data_dir = Path(settings.data_dir)
    stored = b"".join(p.read_bytes() for p in data_dir.glob("beadwire.db*"))
    dumped = json.dumps({k: redis.dump(k).hex() for k in redis.keys("*")}) + json.dumps(
        [redis.hgetall(k) for k in redis.keys("*") if redis.type(k) == "hash"])
    for secret in (ana.token, cora.token, key, new):
        assert secret.encode() not in stored
        assert secret not in dumped and secret.encode().hex() not in dumped

