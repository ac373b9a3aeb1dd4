"""Which routes honour `Idempotency-Key`: every write route, marked `@idempotent` (web/idempotency.py)."""

from __future__ import annotations

import re

import pytest

from store import db, requests
from store.models import RequestLog
from store.util import now

WRITES = {"POST", "PUT", "PATCH", "DELETE"}
#: Every write route of the app, as the wrapper that used to wrap every view keyed them: a route added
#: later must be marked `@idempotent` and listed here.
IDEMPOTENT = {
    "beads.claim", "beads.close", "beads.comment", "beads.create_bead", "beads.link", "beads.release",
    "beads.reopen", "beads.update_bead", "chat.done", "chat.post",
    "dashboard.activate_policy", "dashboard.add_agent_post", "dashboard.add_person", "dashboard.answer",
    "dashboard.assign", "dashboard.close", "dashboard.comment", "dashboard.create_bead",
    "dashboard.edit_bead",
    "dashboard.invite_post", "dashboard.link", "dashboard.login_link_post", "dashboard.login_post",
    "dashboard.logout", "dashboard.pause", "dashboard.preview_policy", "dashboard.release",
    "dashboard.remove_person", "dashboard.reopen", "dashboard.reply", "dashboard.resume", "dashboard.revoke",
    "dashboard.save_policy", "dashboard.send_mail", "dashboard.start_chat", "dashboard.switch",
    "dashboard.unassign", "dashboard_api.mint_link", "escalations.escalate",
    "escalations_admin.delete_webhook",
    "escalations_admin.put_webhook", "escalations_admin.respond", "escalations_admin.test_webhook",
    "handoffs.leave", "humans.add_human", "humans.reinvite", "humans.remove_human", "identity.init",
    "invites.redeem", "joinkeys.create", "keys.revoke", "keys.rotate", "keys.set_role", "locks.check_many",
    "locks.release", "locks.reserve", "mail.ack", "mail.open_mail", "mail.send", "mail.subscribe",
    "mail.unsubscribe", "policy_admin.activate", "policy_admin.reset", "policy_admin.set_bundle",
    "project.change_settings", "steer.assign", "steer.pause", "steer.resume", "steer.unassign", "sync.sync",
    "sync.undo",
}

#: Routes a caller reaches before it has a credential: the key is ignored there.
UNSCOPED = {"identity.init", "invites.redeem"}


def _write_rules(app):
    return [(rule, method) for rule in app.url_map.iter_rules() for method in sorted(rule.methods & WRITES)]


def test_every_write_route_and_only_those_is_idempotent(app):
    marked = {endpoint for endpoint, view in app.view_functions.items() if getattr(view, "keyed", False)}
    assert marked == {rule.endpoint for rule, _ in _write_rules(app)} == IDEMPOTENT


def _path(rule) -> str:
    return re.sub(r"<(?:(\w+):)?(\w+)>", lambda m: "1" if m.group(1) == "int" else "x", rule.rule)


@pytest.fixture
def caller(make_agent):
    agent = make_agent(project="keys", alias="ana")
    return agent, make_agent.keys["keys"]


def test_a_replayed_key_on_each_api_write_route_returns_the_stored_answer(app, caller):
    """A stored answer for (caller, key, request) is replayed on every /v1 write route that knows its
    caller, without running the view; `/v1/init` and `/v1/invites/redeem` have no caller to scope a key
    to (no credential yet) and ignore it."""
    agent, project_key = caller
    db.connect()
    replayed = set()
    for n, (rule, method) in enumerate(_write_rules(app)):
        if not rule.rule.startswith("/v1/") or rule.endpoint in UNSCOPED:
            continue
        path = _path(rule)
        for bearer, ws_id in ((agent.token, agent.info["workspace"]["id"]), (project_key, 0)):
            key = f"k-{n}-{ws_id}"
            with db.transaction():
                RequestLog.insert(project=agent.info["project"]["id"], workspace_id=ws_id, key=key,
                                  fingerprint=requests.fingerprint(method, path, b"", b"{}"),
                                  created_ts=now(),
                                  status=299, body='{"stored": true}').execute()
            r = app.test_client().open(path, method=method, data=b"{}", content_type="application/json",
                                       headers={"Authorization": f"Bearer {bearer}", "Idempotency-Key": key})
            if r.headers.get("Idempotent-Replayed") == "true":
                assert (r.status_code, r.get_json()) == (299, {"stored": True}), (rule.rule, method)
                replayed.add(rule.endpoint)
                break
    api = {e for e in IDEMPOTENT if not e.startswith("dashboard.")} - UNSCOPED
    assert replayed == api
