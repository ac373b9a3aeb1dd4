"""Escalations: agents ask with their context attached, humans (the project key) answer, the answer
reaches the agent's banner; webhooks are retried with backoff; unanswered ones are re-announced once
and expire (the sweep is driven by moving timestamps in the database, never by sleeping).
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import pytest

from store import escalations, outbox, webhooks
from store.models import Escalation, WebhookDelivery
from store.util import now


@pytest.fixture
def settings(settings):
    """These tests post to a receiver on 127.0.0.1: the deployment must allow private addresses
    (tests/test_security_webhook.py shows they are refused by default)."""
    return settings.with_(webhook_allow_private=True)


def _events(app, project_id: int, kind: str | None = None) -> list[dict]:
    st = app.extensions["beadwire"]
    rows = [fields for _, fields in st.redis.client.xrange(st.redis.keys.events_key(project_id))]
    return [r for r in rows if kind is None or r["kind"] == kind]


def _as_key(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _banner(response) -> dict:
    return json.loads(response.headers.get("X-Wire-Banner") or "{}")


@pytest.fixture
def team(make_agent):
    """Project shop: alice (developer, asks), bob (developer), and the humans' project key."""
    alice = make_agent(project="shop", alias="alice", human="Alice")
    bob = make_agent(project="shop", alias="bob")
    return SimpleNamespace(alice=alice, bob=bob, key=make_agent.keys["shop"],
                           project=alice.info["project"]["id"])


def escalate(agent, **fields) -> dict:
    body = {"subject": "Drop the legacy orders table?",
            "situation": "Migration 42 needs it gone; tried renaming.",
            "options": ["A: drop it", "B: keep it"], "severity": "high", **fields}
    r = agent.post("/escalations", body)
    assert r.status_code == 201, r.json
    return r.json


@pytest.fixture
def receiver():
    """A webhook receiver on 127.0.0.1 (a free port): answers the queued statuses, then 200."""
    posts: list[dict] = []
    statuses: list[int] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            posts.append({"json": json.loads(body), "type": self.headers["Content-Type"]})
            self.send_response(statuses.pop(0) if statuses else 200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield SimpleNamespace(url=f"http://127.0.0.1:{server.server_port}/hook", posts=posts, statuses=statuses)
    server.shutdown()
    server.server_close()
    thread.join()


def set_webhook(client, key: str, url: str | None):
    return client.put("/v1/project/webhook", json={"url": url}, headers=_as_key(key))


# -- raising -------------------------------------------------------------------------------------

def test_an_escalation_carries_the_agents_claims_branch_git_status_and_recent_mail(team):
    alice, bob = team.alice, team.bob
    bead = alice.create("Orders cleanup")
    assert alice.post(f"/beads/{bead}/claim").status_code == 200
    mailed = bob.post("/mail", {"to": "alice", "subject": "[x] schema", "body": "long " * 200})
    assert mailed.status_code == 201
    asked = alice.post("/chat", {"to": "bob", "body": "are you on the orders table?", "wait": 0})
    assert asked.status_code == 201
    assert alice.post("/locks", {"paths": ["db/schema.sql"], "reason": "migration 42"}).status_code == 200
    assert bob.post("/locks", {"paths": ["web/**"]}).status_code == 200
    esc = escalate(alice, context={"branch": "bd-1-orders", "git_status": [" M db/schema.sql", "?? notes.txt",
                                                                             "D  old.py"]})
    assert esc["status"] == "pending" and esc["severity"] == "high" and esc["from"] == "alice"
    assert esc["options"] == ["A: drop it", "B: keep it"]
    context = esc["context"]
    assert context["branch"] == "bd-1-orders"
    assert context["git_status"]["summary"] == {"modified": 1, "deleted": 1, "untracked": 1}
    assert context["git_status"]["files"][0] == " M db/schema.sql"
    assert [c["bead"] for c in context["claims"]] == [bead]
    assert [(r["pattern"], r["reason"]) for r in context["reservations"]] == [
        ("db/schema.sql", "migration 42")]
    kinds = [(m["kind"], m["from"]) for m in context["recent_messages"]]
    assert kinds == [("chat", "alice"), ("mail", "bob")]
    mail = context["recent_messages"][1]
    assert mail["to"] == ["alice"]
    assert len(mail["body"]) == escalations.CONTEXT_BODY and mail["body"].endswith("…")
    assert context["workspace"]["alias"] == "alice" and context["workspace"]["human"] == "Alice"


def test_at_most_the_last_ten_messages_are_attached(team):
    for i in range(15):
        team.bob.post("/mail", {"to": "alice", "body": f"note {i}"})
    context = escalate(team.alice)["context"]
    assert [m["body"] for m in context["recent_messages"]] == [f"note {i}" for i in range(14, 4, -1)]


def test_the_branch_defaults_to_the_one_presence_reported(team, client):
    r = client.post("/v1/escalations", json={"subject": "s", "situation": "x"},
                    headers={**_as_key(team.alice.token), "X-Wire-Branch": "feature/login"})
    assert r.status_code == 201 and r.json["context"]["branch"] == "feature/login"
    assert r.json["severity"] == "normal"


def test_humans_hear_at_once_on_the_project_event_stream(app, team, worker):
    esc = escalate(team.alice)
    worker.run()
    (event,) = _events(app, team.project, "escalation.created")
    data = json.loads(event["data"])
    assert data["escalation"] == esc["id"] and data["alias"] == "alice" and data["severity"] == "high"


@pytest.mark.parametrize("fields", [{"severity": "urgent"}, {"ttl": escalations.MAX_TTL + 1}, {"ttl": 5},
                                    {"options": ["x"] * (escalations.MAX_OPTIONS + 1)}, {"subject": ""},
                                    {"context": {"git_status": "not a list"}}])
def test_bad_escalations_are_refused_with_422(team, fields):
    body = {"subject": "s", "situation": "x", **fields}
    assert team.alice.post("/escalations", body).status_code == 422


def test_the_lifetime_is_four_hours_unless_asked_and_capped(team):
    default = Escalation.get_by_id(escalate(team.alice)["id"])
    assert default.expires_ts - default.created_ts == pytest.approx(4 * 3600)
    assert default.remind_ts - default.created_ts == pytest.approx(3 * 3600)
    short = Escalation.get_by_id(escalate(team.alice, ttl=600)["id"])
    assert short.expires_ts - short.created_ts == pytest.approx(600)


def test_only_workspaces_raise_escalations(team, client):
    r = client.post("/v1/escalations", json={"subject": "s", "situation": "x"}, headers=_as_key(team.key))
    assert r.status_code == 401


# -- answering -----------------------------------------------------------------------------------

def test_a_human_answers_and_the_answer_lands_in_the_agents_banner(app, team, client, worker):
    esc = escalate(team.alice)
    r = client.post(f"/v1/escalations/{esc['id']}/respond", headers=_as_key(team.key),
                    json={"response": "B: keep it", "note": "finance still reads it", "by": "Dana"})
    assert r.status_code == 200, r.json
    assert r.json["status"] == "answered"
    assert r.json["response"] == "B: keep it" and r.json["responder"] == "Dana"
    assert "X-Wire-Banner" not in r.headers  # humans have no mailbox
    worker.run()
    (item,) = _banner(team.alice.get("/whoami"))["new"]
    assert item["kind"] == "notice"
    assert item["text"].startswith(f"escalation #{esc['id']} answered by Dana: B: keep it")
    notice = team.alice.get("/mail").json[0]
    assert notice["data"]["escalation"] == esc["id"] and notice["data"]["note"] == "finance still reads it"
    assert team.alice.get(f"/escalations/{esc['id']}").json["status"] == "answered"
    answered = _events(app, team.project, "escalation.answered")
    assert [json.loads(e["data"])["escalation"] for e in answered] == [esc["id"]]


def test_agents_cannot_answer_escalations(team, client):
    esc = escalate(team.alice)
    for agent in (team.alice, team.bob):
        r = agent.post(f"/escalations/{esc['id']}/respond", {"response": "A: drop it"})
        assert r.status_code == 403 and r.json["error"]["code"] == "forbidden"
    assert client.post(f"/v1/escalations/{esc['id']}/respond", json={"response": "x"},
                       headers=_as_key("bw_ws_forged")).status_code == 401
    assert client.post(f"/v1/escalations/{esc['id']}/respond", json={"response": "x"}).status_code == 401
    assert Escalation.get_by_id(esc["id"]).status == "pending"


def test_answering_twice_is_a_conflict(team, client):
    esc = escalate(team.alice)
    url = f"/v1/escalations/{esc['id']}/respond"
    assert client.post(url, json={"response": "A"}, headers=_as_key(team.key)).status_code == 200
    r = client.post(url, json={"response": "B"}, headers=_as_key(team.key))
    assert r.status_code == 409 and r.json["error"]["code"] == "already_answered"
    assert r.json["error"]["response"] == "A"


def test_agents_see_their_own_escalations_coordinators_and_humans_see_all(team, make_agent, client):
    mine = escalate(team.alice)
    carol = make_agent(project="shop", alias="carol", role="coordinator")
    assert [e["id"] for e in team.alice.get("/escalations").json] == [mine["id"]]
    assert "context" not in team.alice.get("/escalations").json[0]
    assert team.bob.get("/escalations").json == []
    assert team.bob.get(f"/escalations/{mine['id']}").status_code == 404
    assert [e["id"] for e in carol.get("/escalations").json] == [mine["id"]]
    assert carol.get(f"/escalations/{mine['id']}").json["context"]["claims"] == []
    as_human = client.get("/v1/escalations?status=pending", headers=_as_key(team.key))
    assert [e["id"] for e in as_human.json] == [mine["id"]]
    assert client.get("/v1/escalations?status=answered", headers=_as_key(team.key)).json == []


def test_another_project_can_neither_see_nor_answer_them(team, make_agent, client):
    esc = escalate(team.alice)
    eve = make_agent(project="rival", alias="eve", role="coordinator")
    rival_key = make_agent.keys["rival"]
    assert client.get("/v1/escalations", headers=_as_key(rival_key)).json == []
    assert client.get(f"/v1/escalations/{esc['id']}", headers=_as_key(rival_key)).status_code == 404
    r = client.post(f"/v1/escalations/{esc['id']}/respond", json={"response": "x"},
                    headers=_as_key(rival_key))
    assert r.status_code == 404
    assert eve.get("/escalations").json == [] and eve.get(f"/escalations/{esc['id']}").status_code == 404
    assert Escalation.get_by_id(esc["id"]).status == "pending"


# -- webhooks ------------------------------------------------------------------------------------

def test_only_humans_configure_the_webhook(team, client):
    r = team.alice.client.put("/v1/project/webhook", json={"url": "https://hooks.example/x"},
                              headers=_as_key(team.alice.token))
    assert r.status_code == 403
    assert set_webhook(client, team.key, "ftp://nope").status_code == 422
    assert set_webhook(client, team.key, "https://hooks.example/x").json["url"] == "https://hooks.example/x"
    assert client.get("/v1/project/webhook", headers=_as_key(team.key)).json["url"] == "https://hooks.example/x"
    assert client.delete("/v1/project/webhook", headers=_as_key(team.key)).json["url"] is None


def test_no_webhook_means_no_posts(team):
    escalate(team.alice)
    assert WebhookDelivery.select().count() == 0


def test_a_failed_webhook_post_is_retried_with_backoff_and_delivered(app, team, client, worker, receiver):
    from actors.escalations import sweep_escalations

    assert set_webhook(client, team.key, receiver.url).status_code == 200
    receiver.statuses.append(500)
    esc = escalate(team.alice)
    worker.run()  # first attempt: the receiver answers 500
    post = WebhookDelivery.get()
    assert len(receiver.posts) == 1 and post.status == "pending" and post.attempts == 1
    assert post.last_error == "HTTP 500"
    assert post.next_ts - now() == pytest.approx(webhooks.backoff(1), abs=2)
    sweep_escalations.send()
    worker.run()  # not due yet: the backoff holds
    assert len(receiver.posts) == 1
    WebhookDelivery.update(next_ts=now() - 1).execute()  # the backoff has passed
    st = app.extensions["beadwire"]
    st.redis.client.delete(st.redis.keys.sweep_lock_key("escalations"))  # the last sweep's short lease
    sweep_escalations.send()
    worker.run()
    post = WebhookDelivery.get()
    assert post.status == "delivered" and post.attempts == 2
    assert len(receiver.posts) == 2 and receiver.posts[0] == receiver.posts[1]
    sent = receiver.posts[1]
    assert sent["type"] == "application/json" and list(sent["json"]) == ["text"]
    assert f"escalation #{esc['id']} (high) from alice (Alice)" in sent["json"]["text"]
    assert "Drop the legacy orders table?" in sent["json"]["text"]
    assert f"wire respond {esc['id']}" in sent["json"]["text"]


def test_webhook_backoff_doubles_then_gives_up_with_an_event(app, team, client, worker):
    assert webhooks.backoff(1) == webhooks.DEFAULT_BACKOFF
    assert webhooks.backoff(2) == 2 * webhooks.DEFAULT_BACKOFF
    assert webhooks.backoff(30) == webhooks.DEFAULT_MAX_BACKOFF
    set_webhook(client, team.key, "http://127.0.0.1:9/unreachable")
    escalate(team.alice)
    post_id = WebhookDelivery.get().id

    def refuse(url: str, body: bytes, timeout: float) -> None:
        raise webhooks.WebhookFailed("HTTP 503")

    outcomes = []
    for _ in range(webhooks.DEFAULT_MAX_ATTEMPTS):
        WebhookDelivery.update(next_ts=now() - 1).execute()
        outcomes.append(webhooks.attempt(post_id, post=refuse))
    assert outcomes == ["retry"] * (webhooks.DEFAULT_MAX_ATTEMPTS - 1) + ["failed"]
    assert webhooks.attempt(post_id, post=refuse) == "skipped"
    outbox.publish_pending(app.extensions["beadwire"])
    (event,) = _events(app, team.project, "webhook.failed")
    assert json.loads(event["data"])["attempts"] == webhooks.DEFAULT_MAX_ATTEMPTS


def test_a_post_held_by_one_attempt_is_not_made_twice(team, client):
    set_webhook(client, team.key, "http://127.0.0.1:9/x")
    escalate(team.alice)
    post_id = WebhookDelivery.get().id
    calls = []

    def nested(url: str, body: bytes, timeout: float) -> None:
        calls.append(webhooks.attempt(post_id, post=nested))  # a duplicate arriving mid-post

    assert webhooks.attempt(post_id, post=nested) == "delivered"
    assert calls == ["skipped"]


def test_agent_text_cannot_mention_the_whole_channel(team):
    esc = Escalation.get_by_id(escalate(team.alice, subject="<!channel> help & <@U123>")["id"])
    text = escalations.announcement(esc.project, esc, esc.workspace)
    assert "<!channel>" not in text and "&lt;!channel&gt; help &amp; &lt;@U123&gt;" in text


# -- the sweep: one re-announcement, then expiry ---------------------------------------------------

def sweep(app) -> dict[str, int]:
    """One pass of what `sweep_escalations` does, in this thread: the sweep, its events, its posts."""
    st = app.extensions["beadwire"]
    counts = escalations.sweep()
    outbox.publish_pending(st)
    for post_id in webhooks.due():
        webhooks.attempt(post_id, allow_private=st.settings.webhook_allow_private)
    return counts


def test_an_unanswered_escalation_is_reannounced_once_then_expires(app, team, client, worker, receiver):
    set_webhook(client, team.key, receiver.url)
    esc = escalate(team.alice)
    worker.run()
    assert sweep(app) == {"reannounced": 0, "expired": 0}  # too early for anything
    Escalation.update(remind_ts=now() - 1).execute()  # three quarters of its life have passed
    assert sweep(app) == {"reannounced": 1, "expired": 0}
    assert sweep(app) == {"reannounced": 0, "expired": 0}  # once only
    assert len(_events(app, team.project, "escalation.reannounced")) == 1
    assert [p["json"]["text"].splitlines()[0].split(":")[0] for p in receiver.posts] == [
        f"[shop] escalation #{esc['id']} (high) from alice (Alice)", "[shop] REMINDER"]
    assert "expires in" in receiver.posts[1]["json"]["text"]
    assert team.alice.get(f"/escalations/{esc['id']}").json["reannounced_at"] is not None

    Escalation.update(expires_ts=now() - 1).execute()  # its time is up
    assert sweep(app) == {"reannounced": 0, "expired": 1}
    assert sweep(app) == {"reannounced": 0, "expired": 0}
    (expired_event,) = _events(app, team.project, "escalation.expired")
    assert json.loads(expired_event["data"])["status"] == "expired"
    assert len(_events(app, team.project, "escalation.reannounced")) == 1
    assert len(receiver.posts) == 2  # expiry is not announced to the humans again
    expired = client.get("/v1/escalations?status=expired", headers=_as_key(team.key)).json
    assert [e["id"] for e in expired] == [esc["id"]] and expired[0]["expired_at"]
    (item,) = _banner(team.alice.get("/whoami"))["new"]
    assert item["text"].startswith(f"escalation #{esc['id']} expired unanswered")


def test_an_escalation_overdue_for_both_just_expires(app, team):
    escalate(team.alice)
    Escalation.update(remind_ts=now() - 20, expires_ts=now() - 10).execute()
    assert sweep(app) == {"reannounced": 0, "expired": 1}
    assert Escalation.get().reminded_ts is None


def test_a_late_answer_to_an_expired_escalation_still_reaches_the_agent(app, team, client, worker):
    esc = escalate(team.alice)
    Escalation.update(remind_ts=now() - 20, expires_ts=now() - 10).execute()
    sweep(app)
    r = client.post(f"/v1/escalations/{esc['id']}/respond", json={"response": "keep it"},
                    headers=_as_key(team.key))
    assert r.status_code == 200 and r.json["status"] == "answered"
    worker.run()
    texts = [m["body"] for m in team.alice.get("/mail").json]
    assert texts[0] == f"escalation #{esc['id']} answered: keep it"
    assert json.loads(_events(app, team.project, "escalation.answered")[0]["data"])["late"] is True


def test_the_clock_schedules_the_sweep():
    from actors import clock
    from actors.escalations import sweep_escalations

    assert sweep_escalations in [actor for actor, _ in clock.SCHEDULE]


def test_escalations_webhooks_and_policies_work_on_sqlite_and_postgresql(make_pg_agent, pg_client, pg_worker):
    url = "https://hooks.example/a"
    alice = make_pg_agent(project="both", alias="alice")
    key = _as_key(make_pg_agent.keys["both"])
    esc = escalate(alice)
    for target in (url, url + "/b"):  # the second is an upsert
        assert pg_client.put("/v1/project/webhook", json={"url": target}, headers=key).status_code == 200
    r = pg_client.post(f"/v1/escalations/{esc['id']}/respond", json={"response": "go"}, headers=key)
    assert r.status_code == 200 and r.json["status"] == "answered"
    saved = pg_client.put("/v1/policy", json={"markdown": "# Invariants\n\nBe brief."}, headers=key)
    assert saved.status_code == 201
    assert pg_client.post("/v1/policy/activate", json={"version": 1}, headers=key).json["version"] == 1
    assert [v["version"] for v in alice.get("/policy/history").json] == [2, 1]
    pg_worker.run()
    assert [m["body"] for m in alice.get("/mail").json][-1] == f"escalation #{esc['id']} answered: go"
