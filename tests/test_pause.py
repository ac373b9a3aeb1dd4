"""Pausing an agent (issue 17): `POST/DELETE /v1/workspaces/<alias>/pause` by a coordinator or a human
credential. A paused agent's banner and prime say "paused by NAME: REASON", and its claims are refused
(409, exit 3 in the CLI) until it is resumed; what it holds stays its own.

Claims are decided in SQL: SQLite and PostgreSQL, with a real Redis server for presence and banners.
"""

from __future__ import annotations

import json

import pytest

from store import db
from store.models import Outbox

pytestmark = pytest.mark.parametrize("redis", [pytest.param("real", marks=pytest.mark.real)], indirect=True)


@pytest.fixture
def crew(make_pg_agent):
    cora = make_pg_agent(alias="cora", role="coordinator")
    bob, ana = make_pg_agent(alias="bob"), make_pg_agent(alias="ana")
    return cora, bob, ana, make_pg_agent.keys["shop"]


def as_key(agent, key, method, path, body=None):
    return agent.client.open(f"/v1{path}", method=method, json=body,
                             headers={"Authorization": f"Bearer {key}"})


def banner(response):
    return json.loads(response.headers.get("X-Wire-Banner") or "{}")


def test_a_paused_agent_cannot_claim_until_resumed(crew):
    cora, bob, ana, _ = crew
    bead = ana.create("Fix login")
    r = cora.post("/workspaces/bob/pause", {"reason": "wrong branch, wait for me"})
    assert r.status_code == 200, r.json
    assert r.json["paused"]["by"] == "cora" and r.json["paused"]["reason"] == "wrong branch, wait for me"
    refused = bob.post(f"/beads/{bead}/claim")
    assert refused.status_code == 409 and refused.json["error"]["code"] == "claim_conflict"
    assert refused.json["error"]["message"] == (
        "you are paused by cora: wrong branch, wait for me; claim nothing new until resumed")
    assert bob.post(f"/beads/{bead}/claim", {"jump_in": "urgent"}).status_code == 409  # no way around it
    assert ana.get(f"/beads/{bead}").json["claim"] is None
    assert cora.delete("/workspaces/bob/pause").json["paused"] is None
    assert bob.post(f"/beads/{bead}/claim").status_code == 200


def test_what_a_paused_agent_holds_stays_its_own(crew):
    cora, bob, _ana, _ = crew
    bead = bob.create("Fix login")
    bob.post(f"/beads/{bead}/claim")
    cora.post("/workspaces/bob/pause", {"reason": "stop"})
    assert bob.post(f"/beads/{bead}/claim").status_code == 200  # idempotent re-claim of its own
    assert bob.post(f"/beads/{bead}/close").status_code == 200


def test_the_banner_and_prime_say_who_paused_and_why(crew):
    cora, bob, _, key = crew
    as_key(cora, key, "POST", "/workspaces/bob/pause", {"reason": "review first"})
    answer = bob.get("/whoami")
    assert banner(answer)["paused"] == {"by": "project key", "reason": "review first"}
    assert bob.get("/prime").json["paused"] == {"by": "project key", "reason": "review first"}
    cora.delete("/workspaces/bob/pause")
    assert "paused" not in banner(bob.get("/whoami"))
    assert bob.get("/prime").json["paused"] is None


def test_the_paused_and_resumed_agent_gets_notices(crew):
    cora, bob, _, _ = crew
    cora.post("/workspaces/bob/pause", {"reason": "stop"})
    cora.delete("/workspaces/bob/pause")
    with db.database.connection_context():
        rows = Outbox.select().where(Outbox.recipient_id == bob.info["workspace"]["id"],
                                     Outbox.kind == "notice")
        bodies = [json.loads(r.payload)["body"] for r in rows.order_by(Outbox.id)]
    assert bodies[0].startswith("you were paused by cora: stop;")
    assert bodies[1] == "you were resumed by cora: you may claim work again"


def test_only_coordinators_and_humans_pause_and_bad_input_is_a_clear_4xx(crew):
    cora, bob, ana, _ = crew
    r = ana.post("/workspaces/bob/pause", {"reason": "I want his bead"})
    assert r.status_code == 403 and "coordinator" in r.json["error"]["message"]
    assert ana.delete("/workspaces/bob/pause").status_code == 403
    assert cora.post("/workspaces/nobody/pause", {}).status_code == 404
    assert cora.post("/workspaces/bob/pause", {"reason": "x" * 2001}).status_code == 422
    assert cora.post("/workspaces/bob/pause", {"reason": 5}).status_code == 422
    bead = ana.create("still claimable")
    assert bob.post(f"/beads/{bead}/claim").status_code == 200  # nothing was paused


# -- the dashboard's Pause and Resume buttons (the browser itself: tests/test_steer_e2e.py) ------------

def _dashboard(agent, bearer):
    """A fresh browser session of the dashboard logged in with `bearer`, and its CSRF token."""
    from tests.test_dashboard import _csrf, _login

    client = agent.client.application.test_client()
    _login(client, bearer)
    return client, _csrf(client, "/team")


def test_the_team_page_pauses_and_resumes_with_the_sessions_csrf_token(crew):
    cora, bob, ana, key = crew
    browser, csrf = _dashboard(cora, key)
    bead = ana.create("Fix login")
    assert browser.post("/team/bob/pause", data={"reason": "hold on"}).status_code == 403  # no token
    assert browser.post("/team/bob/pause", data={"csrf_token": "forged", "reason": "x"}).status_code == 403
    assert bob.post(f"/beads/{bead}/claim").status_code == 200 and bob.delete(f"/beads/{bead}/claim")
    r = browser.post("/team/bob/pause", data={"csrf_token": csrf, "reason": "hold on"})
    assert r.status_code == 303
    refused = bob.post(f"/beads/{bead}/claim").json["error"]
    assert refused["message"].startswith("you are paused by project key: hold on")
    assert 'paused by project key: hold on' in browser.get("/team").get_data(as_text=True)
    assert browser.post("/team/bob/resume", data={"csrf_token": csrf}).status_code == 303
    assert bob.post(f"/beads/{bead}/claim").status_code == 200


def test_a_read_only_session_has_no_buttons_and_may_not_pause(crew):
    cora, bob, _, _ = crew
    browser, csrf = _dashboard(bob, bob.token)  # a workspace token opens a read-only session
    assert "form class=\"pause\"" not in browser.get("/team").get_data(as_text=True).replace("'", '"')
    assert browser.post("/team/cora/pause", data={"csrf_token": csrf, "reason": "mine"}).status_code == 403
    assert browser.get("/audit").status_code == 403
    assert cora.get("/prime").json["paused"] is None


def test_pausing_an_unknown_agent_from_the_dashboard_is_a_404(crew):
    cora, _, _, key = crew
    browser, csrf = _dashboard(cora, key)
    assert browser.post("/team/nobody/pause", data={"csrf_token": csrf}).status_code == 404
    assert browser.post("/team/bob/pause", data={"csrf_token": csrf, "reason": "x" * 2001}).status_code == 422


def test_the_cli_tells_a_paused_agent_to_wait_not_to_pick_other_work(crew):
    """Every claim is refused while paused: the hint must not send the agent to `wire ready`."""
    from cli.errors import PAUSED_HINT, ClaimRejected, error_from_response

    cora, bob, ana, _ = crew
    bead = ana.create("Fix login")
    cora.post("/workspaces/bob/pause", {"reason": "review first"})
    refused = bob.post(f"/beads/{bead}/claim")
    error = error_from_response(refused.status_code, refused.json)
    assert isinstance(error, ClaimRejected) and error.exit_code == 3
    assert error.hint == PAUSED_HINT and "wire ready" not in error.hint
    cora.delete("/workspaces/bob/pause")
    ana.post(f"/beads/{bead}/claim")
    taken = bob.post(f"/beads/{bead}/claim")
    held = error_from_response(taken.status_code, taken.json)
    assert "wire ready" in held.hint  # held by someone: other work is the way on
