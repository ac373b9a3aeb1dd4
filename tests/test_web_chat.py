"""Chat: the sender blocks until a reply; the recipient sees WAITING until it answers."""

from __future__ import annotations

import json
import threading
import time

import pytest

from tests.conftest import until_waiting

pytestmark = pytest.mark.atomic  # also on a real Redis server: a sender blocked on a stream until the reply


def banner(response) -> dict | None:
    raw = response.headers.get("X-Wire-Banner")
    return json.loads(raw) if raw else None


@pytest.fixture
def pair(make_agent):
    return make_agent(alias="ana", human="Ana"), make_agent(alias="bob")


def test_asking_shows_waiting_to_the_recipient_until_it_answers(pair):
    ana, bob = pair
    asked = ana.post("/chat", {"to": "bob", "body": "which port?", "wait": 300})
    assert asked.status_code == 201
    shown = banner(bob.get("/whoami"))
    assert [w["alias"] for w in shown["waiting"]] == ["ana"]
    assert [w["alias"] for w in banner(bob.get("/whoami"))["waiting"]] == ["ana"]  # on every call
    bob.post("/chat", {"to": "ana", "body": "8765"})
    after = banner(bob.get("/whoami"))
    assert after is None or after["waiting"] == []


def test_a_reply_already_sent_is_returned_at_once(pair):
    ana, bob = pair
    asked = ana.post("/chat", {"to": "bob", "body": "ping", "wait": 60}).json
    bob.post("/chat", {"to": "ana", "body": "pong"})
    r = ana.get(f"/chat/wait?with=bob&after={asked['message']['id']}&cursor={asked['cursor']}&timeout=5")
    assert [m["body"] for m in r.json["messages"]] == ["pong"]


def test_a_wait_times_out_empty_and_done_clears_the_flag(pair):
    ana, bob = pair
    asked = ana.post("/chat", {"to": "bob", "body": "anyone?", "wait": 60}).json
    r = ana.get(f"/chat/wait?with=bob&after={asked['message']['id']}&cursor={asked['cursor']}&timeout=0.2")
    assert r.json["messages"] == []
    ana.post("/chat/done", {"with": "bob"})
    assert bob.get("/chat/pending").json["waiting_on_you"] == []


def test_pending_lists_unread_conversations_and_who_waits(pair):
    ana, bob = pair
    ana.post("/chat", {"to": "bob", "body": "one"})
    ana.post("/chat", {"to": "bob", "body": "two", "wait": 100})
    p = bob.get("/chat/pending").json
    assert [(c["with"], c["unread"], c["last"]["body"]) for c in p["conversations"]] == [("ana", 2, "two")]
    assert [w["alias"] for w in p["waiting_on_you"]] == ["ana"]
    history = bob.get("/chat/history?with=ana").json
    assert [(m["from"], m["body"]) for m in history] == [("ana", "one"), ("ana", "two")]
    assert bob.get("/chat/pending").json["conversations"] == []


def test_chat_is_with_one_known_workspace(pair):
    ana, _ = pair
    assert ana.post("/chat", {"to": "@all", "body": "x"}).status_code == 422
    assert ana.post("/chat", {"to": "ana", "body": "x"}).status_code == 422
    assert ana.post("/chat", {"to": "nobody", "body": "x"}).status_code == 404


def test_a_blocked_waiter_wakes_up_when_the_reply_is_posted(real_app, make_real_agent, real_redis):
    app = real_app
    ana, bob = make_real_agent(alias="ana"), make_real_agent(alias="bob")
    asked = ana.post("/chat", {"to": "bob", "body": "ready?", "wait": 60}).json
    got = {}

    def waiter():
        got["r"] = app.test_client().get(
            f"/v1/chat/wait?with=bob&after={asked['message']['id']}&cursor={asked['cursor']}&timeout=20",
            headers={"Authorization": f"Bearer {ana.token}"})

    thread = threading.Thread(target=waiter)
    thread.start()
    until_waiting(real_redis)
    started = time.monotonic()
    bob.post("/chat", {"to": "ana", "body": "yes"})
    thread.join(20)
    assert [m["body"] for m in got["r"].json["messages"]] == ["yes"]
    assert time.monotonic() - started < 10  # woken by the reply, not by the 20 s timeout


def test_a_reply_returned_by_a_wait_counts_as_read(pair):
    ana, bob = pair
    asked = ana.post("/chat", {"to": "bob", "body": "ping", "wait": 60}).json
    bob.post("/chat", {"to": "ana", "body": "pong"})
    got = ana.get(f"/chat/wait?with=bob&after={asked['message']['id']}&cursor={asked['cursor']}&timeout=5")
    assert [m["body"] for m in got.json["messages"]] == ["pong"]
    got.close()  # the server acknowledges once the answer is sent
    assert ana.get("/chat/pending").json["conversations"] == []
