"""Handoffs and the prime view, through the API."""

from __future__ import annotations

import pytest


@pytest.fixture
def pair(make_agent):
    return make_agent(alias="ana", role="developer", human="Ana"), make_agent(alias="bob", role="reviewer")


def test_a_handoff_waits_for_the_next_run_of_the_same_workspace(pair):
    ana, bob = pair
    assert ana.get("/handoffs/latest").json == {"handoff": None}
    left = ana.post("/handoffs", {"body": "bd-1 half done: tests in tests/x.py fail on purpose"})
    assert left.status_code == 201 and left.json["from"] == "ana" and left.json["to"] is None
    latest = ana.get("/handoffs/latest").json["handoff"]
    assert latest["body"].startswith("bd-1 half done") and latest["from"] == "ana"
    assert bob.get("/handoffs/latest").json == {"handoff": None}  # not for bob


def test_a_handoff_to_another_agent_reaches_them_with_a_notice(pair, worker):
    ana, bob = pair
    ana.post("/handoffs", {"body": "mine for today"})
    left = ana.post("/handoffs", {"body": "take over bd-7, branch bd-7-login", "to": "bob"})
    assert left.status_code == 201 and left.json["to"] == "bob"
    assert bob.get("/handoffs/latest").json["handoff"]["body"] == "take over bd-7, branch bd-7-login"
    # ana's own note stays hers
    assert ana.get("/handoffs/latest").json["handoff"]["body"] == "mine for today"
    worker.run()
    notices = bob.get("/mail?unread=1").json
    assert [n["kind"] for n in notices] == ["notice"] and "handoff from ana" in notices[0]["body"]


def test_bad_handoffs_are_refused_with_a_message(pair):
    ana, _ = pair
    empty = ana.post("/handoffs", {"body": "   "})
    assert empty.status_code == 422 and "empty" in empty.json["error"]["message"]
    unknown = ana.post("/handoffs", {"body": "x", "to": "bobb"})
    assert unknown.status_code == 404 and "bob" in unknown.json["error"]["message"]
    big = ana.post("/handoffs", {"body": "é" * 9000})
    assert big.status_code == 422 and "KiB" in big.json["error"]["message"]
    assert ana.get("/handoffs/latest").json == {"handoff": None}  # nothing partial was written


def test_prime_puts_the_handoff_first_then_claims_ready_mail_and_team(pair, worker):
    ana, bob = pair
    held, free = ana.create("held work"), ana.create("free work")
    assert ana.post(f"/beads/{held}/claim").status_code == 200
    bob.post("/mail", {"to": "ana", "subject": "review?", "body": "see branch"})
    ana.post("/handoffs", {"body": "resume bd-1 first"})
    worker.run()
    bob.get("/whoami")  # bob is online
    prime = ana.get("/prime").json
    assert next(iter(prime)) == "handoff" and prime["handoff"]["body"] == "resume bd-1 first"
    assert prime["me"]["alias"] == "ana" and prime["me"]["project"]["slug"] == "shop"
    assert prime["playbook"]["role"] == "developer" and "wire ready" in prime["playbook"]["summary"]
    assert [b["id"] for b in prime["claims"]] == [held]
    assert free in [b["id"] for b in prime["ready"]] and held not in [b["id"] for b in prime["ready"]]
    assert prime["mail"]["unread"] == 1 and prime["mail"]["latest"][0]["subject"] == "review?"
    assert [m["alias"] for m in prime["online"]] == ["bob"]
