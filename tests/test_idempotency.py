"""Request ids (`Idempotency-Key`): a keyed write is applied at most once and repeats get its first
answer; on SQLite and PostgreSQL, through the Flask test client."""

from __future__ import annotations

import threading

import pytest

KEY = "Idempotency-Key"


@pytest.fixture
def pair(make_pg_agent):
    return make_pg_agent(alias="ana", human="Ana"), make_pg_agent(alias="bob")


def mail_count(agent) -> int:
    r = agent.get("/mail")
    assert r.status_code == 200, r.json
    return len([m for m in r.json if m.get("kind", "mail") == "mail"])


def send(agent, body: str, key: str | None, to: str = "bob"):
    headers = {**agent._h(), **({KEY: key} if key is not None else {})}
    return agent.client.post("/v1/mail", json={"to": to, "body": body}, headers=headers)


def test_the_same_key_twice_sends_one_mail_and_answers_the_same(pair):
    ana, bob = pair
    first = send(ana, "deploy at noon", "k-1")
    again = send(ana, "deploy at noon", "k-1")
    assert first.status_code == again.status_code == 201
    assert again.get_json() == first.get_json()
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert mail_count(bob) == 1


def test_the_same_key_from_another_workspace_is_another_request(pair, make_pg_agent):
    ana, bob = pair
    cy = make_pg_agent(alias="cy")
    assert send(ana, "from ana", "shared-key").status_code == 201
    assert send(cy, "from cy", "shared-key").status_code == 201
    assert mail_count(bob) == 2


def test_without_the_header_every_request_is_applied(pair):
    ana, bob = pair
    assert send(ana, "one", None).status_code == 201
    assert send(ana, "one", None).status_code == 201
    assert mail_count(bob) == 2


@pytest.mark.parametrize("bad", ["", "   ", "x" * 101, "spaces inside", "ünïcode"])
def test_a_bad_key_is_refused_with_400_and_nothing_is_sent(pair, bad):
    ana, bob = pair
    r = send(ana, "never", bad.encode("utf-8").decode("latin-1"))
    assert r.status_code == 400, r.get_json()
    assert r.get_json()["error"]["code"] == "bad_idempotency_key"
    assert mail_count(bob) == 0


def test_a_key_reused_for_another_request_is_refused(pair):
    ana, _ = pair
    bead = ana.create("Fix login")
    assert send(ana, "first", "k-reuse").status_code == 201
    r = ana.client.post(f"/v1/beads/{bead}/claim", json={}, headers={**ana._h(), KEY: "k-reuse"})
    assert r.status_code == 422 and r.get_json()["error"]["code"] == "idempotency_mismatch"
    assert ana.get(f"/beads/{bead}").get_json()["status"] == "open"


def test_the_same_key_with_another_body_is_refused_not_answered_with_the_first_mail(pair):
    ana, bob = pair
    assert send(ana, "deploy at noon", "k-body").status_code == 201
    r = send(ana, "deploy at five", "k-body")
    assert r.status_code == 422 and r.get_json()["error"]["code"] == "idempotency_mismatch"
    assert "Idempotent-Replayed" not in r.headers and "different request" in r.get_json()["error"]["message"]
    assert [m["body"] for m in bob.get("/mail").get_json()] == ["deploy at noon"]
    assert send(ana, "deploy at noon", "k-body").headers.get("Idempotent-Replayed") == "true"


def test_a_key_stored_before_bodies_counted_still_replays(pair):
    from store.models import RequestLog
    from store.requests import legacy_fingerprint

    ana, bob = pair
    first = send(ana, "deploy at noon", "k-old")
    RequestLog.update(fingerprint=legacy_fingerprint("POST", "/v1/mail")).execute()  # as schema 5 wrote it
    again = send(ana, "deploy at noon", "k-old")
    assert again.headers.get("Idempotent-Replayed") == "true" and again.get_json() == first.get_json()
    assert mail_count(bob) == 1


def test_a_refused_request_is_not_remembered_so_it_can_succeed_later(pair):
    ana, bob = pair
    bead = ana.create("Fix login")
    assert ana.post(f"/beads/{bead}/claim").status_code == 200
    headers = {**bob._h(), KEY: "claim-later"}
    refused = bob.client.post(f"/v1/beads/{bead}/claim", json={}, headers=headers)
    assert refused.status_code == 409 and refused.get_json()["error"]["code"] == "claim_conflict"
    assert ana.delete(f"/beads/{bead}/claim").status_code == 200
    taken = bob.client.post(f"/v1/beads/{bead}/claim", json={}, headers=headers)
    assert taken.status_code == 200 and taken.get_json()["bead"]["claim"]["alias"] == "bob"
    # and from now on the key answers with that success, whatever happened since
    assert bob.delete(f"/beads/{bead}/claim").status_code == 200
    replay = bob.client.post(f"/v1/beads/{bead}/claim", json={}, headers=headers)
    assert replay.get_json() == taken.get_json() and replay.headers.get("Idempotent-Replayed") == "true"
    assert ana.get(f"/beads/{bead}").get_json()["status"] == "open"


def test_a_keyed_close_and_comment_apply_once(pair):
    ana, _ = pair
    bead = ana.create("Fix login")
    headers = {**ana._h(), KEY: "c-1"}
    for _ in range(2):
        r = ana.client.post(f"/v1/beads/{bead}/comments", json={"text": "looked at it"}, headers=headers)
        assert r.status_code in (200, 201), r.get_json()
    close = {**ana._h(), KEY: "close-1"}
    first = ana.client.post(f"/v1/beads/{bead}/close", json={"reason": "done"}, headers=close)
    again = ana.client.post(f"/v1/beads/{bead}/close", json={"reason": "done"}, headers=close)
    assert first.status_code == 200 and again.get_json() == first.get_json()
    shown = ana.get(f"/beads/{bead}").get_json()
    assert [c["text"] for c in shown["comments"]] == ["looked at it"]


def test_a_read_ignores_the_header(pair):
    ana, _ = pair
    r = ana.client.get("/v1/whoami", headers={**ana._h(), KEY: ""})
    assert r.status_code == 200


def test_concurrent_duplicates_apply_once(pair):
    ana, bob = pair
    answers: list = []

    def go() -> None:
        answers.append(send(ana, "only once", "race-key"))

    threads = [threading.Thread(target=go) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    statuses = sorted(r.status_code for r in answers)
    assert statuses.count(201) >= 1 and set(statuses) <= {201, 409}, statuses
    for r in answers:
        if r.status_code == 409:
            assert r.get_json()["error"]["code"] == "request_in_progress"
    assert mail_count(bob) == 1


def test_an_answer_lost_in_a_crash_is_reported_not_applied_again(pair, monkeypatch):
    from store import requests
    from store.models import RequestLog

    ana, bob = pair

    def crash(*_args, **_kwargs):
        raise RuntimeError("the server stopped before recording the answer")

    monkeypatch.setattr(requests, "record", crash)
    assert send(ana, "once", "lost-answer").status_code == 201
    monkeypatch.undo()
    soon = send(ana, "once", "lost-answer")
    assert soon.status_code == 409 and soon.get_json()["error"]["code"] == "request_in_progress"
    RequestLog.update(created_ts=RequestLog.created_ts - 3600).execute()
    later = send(ana, "once", "lost-answer")
    assert later.status_code == 409 and later.get_json()["error"]["code"] == "already_applied"
    assert mail_count(bob) == 1


def test_retention_forgets_old_keys(pair):
    from store import requests
    from store.models import RequestLog

    ana, _ = pair
    send(ana, "old", "old-key")
    send(ana, "new", "new-key")
    old = RequestLog.key == "old-key"
    RequestLog.update(created_ts=RequestLog.created_ts - 8 * 86400).where(old).execute()
    assert requests.purge(100) == 1
    assert [r.key for r in RequestLog.select()] == ["new-key"]


def test_an_answer_holding_a_secret_is_not_kept(pair, make_pg_agent):
    from store.models import RequestLog

    ana, _ = pair
    old_key = make_pg_agent.keys["shop"]
    rotated = ana.client.post("/v1/project/key/rotate", json={},
                              headers={"Authorization": f"Bearer {old_key}", KEY: "rotate-1"})
    assert rotated.status_code == 200, rotated.get_json()
    new_key = rotated.get_json()["project_key"]
    again = ana.client.post("/v1/project/key/rotate", json={},
                            headers={"Authorization": f"Bearer {new_key}", KEY: "rotate-1"})
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "already_applied"
    assert all(new_key not in row.body for row in RequestLog.select())
    # and the key was not rotated a second time
    listed = ana.client.get("/v1/escalations", headers={"Authorization": f"Bearer {new_key}"})
    assert listed.status_code == 200
