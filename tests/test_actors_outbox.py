"""The outbox: facts commit with their side effects, which actors deliver exactly once."""

from __future__ import annotations

from store import outbox
from store.models import Outbox


def _events(app, project_id: int) -> list[dict]:
    st = app.extensions["beadwire"]
    return [fields for _, fields in st.redis.client.xrange(st.redis.keys.events_key(project_id))]


def test_a_claim_reaches_the_project_event_stream_through_the_worker(app, make_agent, worker):
    agent = make_agent(project="events")
    bead = agent.create("Thing")
    agent.post(f"/beads/{bead}/claim")
    worker.run()
    kinds = [e["kind"] for e in _events(app, agent.info["project"]["id"])]
    assert kinds[-1] == "claim.created"
    assert Outbox.select().where(Outbox.delivered_ts.is_null()).count() == 0


def test_delivering_a_row_twice_publishes_it_once(app, make_agent):
    agent = make_agent(project="twice")
    agent.create("Thing")
    st = app.extensions["beadwire"]
    row = Outbox.select().order_by(Outbox.id.desc()).first()
    Outbox.update(delivered_ts=None).where(Outbox.id == row.id).execute()
    assert outbox.deliver(st, row.id) is True
    Outbox.update(delivered_ts=None).where(Outbox.id == row.id).execute()  # as if the worker died before marking
    assert outbox.deliver(st, row.id) is False
    ids = [e["id"] for e in _events(app, agent.info["project"]["id"])]
    assert ids.count(str(row.id)) == 1


def test_rows_whose_enqueue_was_lost_are_found_by_the_redelivery_sweep(app, make_agent):
    agent = make_agent(project="lost")
    agent.create("Thing")
    Outbox.update(created_ts=Outbox.created_ts - 3600).execute()
    pending = outbox.pending()
    assert pending and set(pending) == {r.id for r in Outbox.select().where(Outbox.delivered_ts.is_null())}


def test_a_failed_request_leaves_no_outbox_row(make_agent):
    agent = make_agent(project="failed")
    before = Outbox.select().count()
    assert agent.post("/beads", {"title": "x", "blocked_by": ["bd-missing"]}).status_code == 404
    assert Outbox.select().count() == before
