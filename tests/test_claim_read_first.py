"""A claim decides on one read taken before the write lock, and its first write checks that the read
still holds (store/claims.py `_claim`). Whatever changes between that read and the write is seen:
each test makes one change right after the claim's read, on SQLite and on PostgreSQL, and expects
what a claim made after the change answers.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import pytest

from store import db, queries
from store.models import Bead, Claim, Outbox, Subscription, Workspace

pytestmark = pytest.mark.parametrize("redis", [pytest.param("fake", marks=pytest.mark.fake)], indirect=True)


@pytest.fixture
def after_read(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[Callable[[], None]], None]]:
    """after_read(change): the next claim runs `change` right after its read, before its write."""
    pending: list[Callable[[], None]] = []
    original = queries.claim_read_by_ref

    def read_then_change(*args: object) -> queries.ClaimRead | None:
        read = original(*args)  # type: ignore[arg-type]
        while pending:
            pending.pop()()
        return read

    monkeypatch.setattr(queries, "claim_read_by_ref", read_then_change)
    yield pending.append
    assert not pending, "the change never ran: the claim did not read through claim_read_by_ref"


def bead_row(ref: str) -> Bead:
    return Bead.get(Bead.ref == ref)


def holders(ref: str) -> list[int]:
    with db.database.connection_context():
        return [c.workspace_id for c in Claim.select().join(Bead).where(Bead.ref == ref)]


def test_a_bead_closed_after_the_read_is_refused(make_pg_agent, after_read):
    ana = make_pg_agent(alias="ana")
    bead = ana.create("Fix login")
    after_read(lambda: Bead.update(status="closed").where(Bead.ref == bead).execute())
    r = ana.post(f"/beads/{bead}/claim")
    assert r.status_code == 409, r.json
    assert r.json["error"]["message"] == f"{bead} is closed"
    assert holders(bead) == []


def test_a_bead_claimed_by_someone_else_after_the_read_is_refused_naming_them(make_pg_agent, after_read):
    ana, bob = make_pg_agent(alias="ana"), make_pg_agent(alias="bob", human="Bob Byte")
    bead = ana.create("Fix login")
    bob_id = bob.info["workspace"]["id"]

    def bob_claims() -> None:
        row = bead_row(bead)
        Claim.insert(project=row.project_id, bead=row.id, workspace=bob_id, claimed_ts=row.updated_ts + 1,
                     reason="", stale=False).execute()
        Bead.update(status="in_progress", assignee="bob", updated_ts=row.updated_ts + 1).where(
            Bead.id == row.id).execute()

    after_read(bob_claims)
    r = ana.post(f"/beads/{bead}/claim")
    assert r.status_code == 409, r.json
    assert r.json["error"]["holder"] == {"alias": "bob", "human": "Bob Byte"}
    assert holders(bead) == [bob_id]


def test_a_claimer_paused_after_the_read_is_refused(make_pg_agent, after_read):
    ana = make_pg_agent(alias="ana")
    bead = ana.create("Fix login")
    ana_id = ana.info["workspace"]["id"]
    after_read(lambda: Workspace.update(paused_by="maria", paused_reason="wait for the release").where(
        Workspace.id == ana_id).execute())
    r = ana.post(f"/beads/{bead}/claim")
    assert r.status_code == 409, r.json
    assert r.json["error"]["paused"] == {"by": "maria", "reason": "wait for the release"}
    assert holders(bead) == []


def test_an_edit_after_the_read_shows_in_the_answer(make_pg_agent, after_read):
    ana = make_pg_agent(alias="ana")
    bead = ana.create("Fix login")
    after_read(lambda: Bead.update(title="Fix login on mobile", priority=0).where(Bead.ref == bead).execute())
    r = ana.post(f"/beads/{bead}/claim")
    assert r.status_code == 200, r.json
    assert (r.json["bead"]["title"], r.json["bead"]["priority"]) == ("Fix login on mobile", 0)
    assert r.json["bead"] == next(b for b in ana.get("/beads?all=true").json if b["id"] == bead)
    assert holders(bead) == [ana.info["workspace"]["id"]]


def test_a_subscriber_added_after_the_read_hears_of_the_claim(make_pg_agent, after_read):
    ana, cy = make_pg_agent(alias="ana"), make_pg_agent(alias="cy")
    bead = ana.create("Fix login")
    cy_id = cy.info["workspace"]["id"]

    def cy_subscribes() -> None:
        row = bead_row(bead)
        Subscription.insert(project=row.project_id, workspace=cy_id, bead=row.id).execute()

    after_read(cy_subscribes)
    assert ana.post(f"/beads/{bead}/claim").status_code == 200
    with db.database.connection_context():
        notices = [json.loads(o.payload)["data"] for o in Outbox.select().where(Outbox.recipient_id == cy_id)]
    assert [(n["bead"], n["status"], n["by"]) for n in notices] == [(bead, "in_progress", "ana")]


def test_nothing_changed_after_the_read_claims_at_once(make_pg_agent, after_read):
    ana = make_pg_agent(alias="ana")
    bead = ana.create("Fix login")
    after_read(lambda: None)
    r = ana.post(f"/beads/{bead}/claim")
    assert r.status_code == 200, r.json
    assert r.json["already_held"] is False and r.json["bead"]["status"] == "in_progress"
    assert holders(bead) == [ana.info["workspace"]["id"]]


def test_a_plain_claim_body_is_read_as_the_schema_reads_it(make_pg_agent, pg_client):
    """No body, `{}` and `{"jump_in": null}` claim plainly (the first two skip the schema: web/beads.py
    `_jump_in`); `{}` sent as text/plain is no JSON body, refused as on every body route."""
    ana = make_pg_agent(alias="ana")
    auth = {"Authorization": f"Bearer {ana.token}"}
    plain = ((None, None), ("{}", "application/json"), ('{"jump_in": null}', "application/json"))
    for data, content_type in plain:
        bead = ana.create("Fix login")
        r = pg_client.post(f"/v1/beads/{bead}/claim", data=data, content_type=content_type, headers=auth)
        assert r.status_code == 200, r.json
        assert r.json["claimed"] is True and r.json["bead"]["claim"]["reason"] == ""
    bead = ana.create("Fix logout")
    r = pg_client.post(f"/v1/beads/{bead}/claim", data="{}", content_type="text/plain", headers=auth)
    assert r.status_code == 400 and r.json["error"]["code"] == "bad_request", r.json
    assert holders(bead) == []
