"""Mail, notices, subscriptions and the banner, through the API (fakeredis and a real Redis)."""

from __future__ import annotations

import json
import threading

import pytest

from tests.conftest import until_waiting

pytestmark = pytest.mark.atomic  # also on a real Redis server: mail streams and the banner


def banner(response) -> dict | None:
    raw = response.headers.get("X-Wire-Banner")
    return json.loads(raw) if raw else None


@pytest.fixture
def trio(make_agent):
    ana = make_agent(alias="ana", role="coordinator", human="Ana")
    bob = make_agent(alias="bob", role="backend")
    cy = make_agent(alias="cy", role="backend")
    return ana, bob, cy


def test_mail_reaches_the_recipients_mailbox_and_shows_once_in_its_banner(trio, worker):
    ana, bob, _ = trio
    sent = ana.post("/mail", {"to": "bob", "subject": "schema", "body": "please review"})
    assert sent.status_code == 201 and sent.json["recipients"] == ["bob"]
    worker.run()
    first = banner(bob.get("/whoami"))
    assert [(i["kind"], i["from"], i["subject"]) for i in first["new"]] == [("mail", "ana", "schema")]
    assert first["unread"] == 1
    second = banner(bob.get("/whoami"))
    assert second["new"] == [] and second["unread"] == 1


def test_opening_mail_acknowledges_it_everywhere(trio, worker):
    ana, bob, _ = trio
    ana.post("/mail", {"to": "bob", "body": "one"})
    ana.post("/mail", {"to": "bob", "body": "two"})
    worker.run()
    assert [m["body"] for m in bob.get("/mail?unread=1").json] == ["two", "one"]
    opened = bob.post("/mail/open", {"from": "ana"}).json
    assert [m["body"] for m in opened] == ["one", "two"]
    assert bob.get("/mail?unread=1").json == []
    assert banner(bob.get("/whoami")) is None
    assert [m["acked"] for m in bob.get("/mail").json] == [True, True]


def test_ack_by_id_and_unknown_ids(trio, worker):
    ana, bob, cy = trio
    mid = ana.post("/mail", {"to": "bob", "body": "hello"}).json["message"]["id"]
    worker.run()
    assert cy.post(f"/mail/{mid}/ack").status_code == 404  # not cy's mail
    assert bob.post(f"/mail/{mid}/ack").json == {"id": mid, "acked": True}
    assert bob.get("/mail?unread=1").json == []
    assert bob.post("/mail/999999/ack").status_code == 404


def test_groups_reach_every_member_but_the_sender(trio, worker):
    ana, bob, _cy = trio
    r = ana.post("/mail", {"to": "@backend", "body": "standup"})
    assert sorted(r.json["recipients"]) == ["bob", "cy"]
    r = bob.post("/mail", {"to": "@all", "body": "deploying"})
    assert sorted(r.json["recipients"]) == ["ana", "cy"]
    r = ana.post("/mail", {"to": "bob, cy", "body": "pair up"})
    assert sorted(r.json["recipients"]) == ["bob", "cy"]


def test_an_unknown_alias_is_404_with_close_matches(trio):
    ana, _, _ = trio
    r = ana.post("/mail", {"to": "bobb", "body": "x"})
    assert r.status_code == 404 and r.json["error"]["suggestions"] == ["bob"]
    assert "did you mean bob" in r.json["error"]["message"]


def test_bodies_over_64_kib_are_refused_with_a_clear_message(trio):
    ana, _, _ = trio
    r = ana.post("/mail", {"to": "bob", "body": "é" * (33 * 1024)})  # 66 KiB of UTF-8 in 33 K characters
    assert r.status_code == 422 and "64 KiB" in r.json["error"]["message"]
    assert ana.post("/mail", {"to": "bob", "body": "x" * 70_000}).status_code == 422


def test_threads_default_to_the_bead_a_message_is_about(trio):
    ana, _, _ = trio
    r = ana.post("/mail", {"to": "bob", "subject": "[bd-12] migration", "body": "x"})
    assert r.json["message"]["thread"] == "bd-12"
    r = ana.post("/mail", {"to": "bob", "subject": "hi", "body": "x", "thread": "design"})
    assert r.json["message"]["thread"] == "design"


def test_sent_and_search_are_limited_to_what_the_caller_sent_or_received(trio):
    ana, bob, cy = trio
    ana.post("/mail", {"to": "bob", "subject": "Migration plan", "body": "alpha"})
    cy.post("/mail", {"to": "bob", "subject": "Migration other", "body": "beta"})
    assert [m["subject"] for m in ana.get("/mail/sent").json] == ["Migration plan"]
    assert [m["subject"] for m in ana.get("/mail/search?q=Migration").json] == ["Migration plan"]
    assert sorted(m["subject"] for m in bob.get("/mail/search?q=Migration").json) == \
        ["Migration other", "Migration plan"]


def test_mail_never_crosses_projects(make_agent):
    ana = make_agent(project="p1", alias="ana")
    make_agent(project="p2", alias="bob")
    assert ana.post("/mail", {"to": "bob", "body": "x"}).status_code == 404


def test_a_jump_in_leaves_a_notice_in_the_old_holders_banner(trio, worker):
    ana, bob, _ = trio
    bead = ana.create("Fix login")
    ana.post(f"/beads/{bead}/claim")
    bob.post(f"/beads/{bead}/claim", {"jump_in": "prod is down"})
    worker.run()
    items = banner(ana.get("/whoami"))["new"]
    assert [(i["kind"], i["bead"]) for i in items] == [("notice", bead)]
    assert "prod is down" in items[0]["text"] and "bob" in items[0]["text"]


def test_subscribers_hear_when_a_bead_changes_status(trio, worker):
    ana, bob, cy = trio
    bead = ana.create("Dotted", parent=ana.create("Epic"))
    assert cy.post(f"/beads/{bead}/subscribe").json == {"bead": bead, "subscribed": True}
    bob.post(f"/beads/{bead}/claim")
    bob.post(f"/beads/{bead}/close")
    worker.run()
    texts = [m["body"] for m in reversed(cy.get("/mail?unread=1").json)]
    assert len(texts) == 2 and "in_progress" in texts[0] and "closed" in texts[1]
    assert bob.get("/mail?unread=1").json == []  # the one who changed it is not told
    cy.delete(f"/beads/{bead}/subscribe")
    bob.post(f"/beads/{bead}/reopen")
    worker.run()
    assert len(cy.get("/mail?unread=1").json) == 2


def test_watch_returns_at_once_when_something_is_new(trio, worker):
    ana, bob, _ = trio
    ana.post("/mail", {"to": "bob", "body": "wake up"})
    worker.run()
    r = bob.get("/watch?timeout=5")
    assert [i["text"] for i in r.json["items"]] == ["wake up"]


def test_watch_times_out_empty(trio):
    _, bob, _ = trio
    assert bob.get("/watch?timeout=0.2").json == {"items": [], "waiting": []}


def test_watch_wakes_up_when_mail_arrives_while_it_blocks(real_app, make_real_agent, real_worker, real_redis):
    ana, bob = make_real_agent(alias="ana"), make_real_agent(alias="bob")
    worker = real_worker
    bob.get("/whoami")  # creates nothing yet: the mailbox appears with the first delivery
    got = {}

    def watcher():
        got["r"] = bob.client.application.test_client().get(
            "/v1/watch?timeout=10", headers={"Authorization": f"Bearer {bob.token}"})

    thread = threading.Thread(target=watcher)
    thread.start()
    until_waiting(real_redis)
    ana.post("/mail", {"to": "bob", "body": "arrived"})
    worker.run()
    thread.join(15)
    assert [i["text"] for i in got["r"].json["items"]] == ["arrived"]
