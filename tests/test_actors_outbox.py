"""The outbox: facts commit with their side effects, which actors deliver exactly once."""

from __future__ import annotations

import pytest

from store import outbox
from store.models import Outbox

pytestmark = pytest.mark.atomic  # also on a real Redis server: publishing to the event streams


def _events(app, project_id: int) -> list[dict]:
    st = app.extensions["beadwire"]
    return [fields for _, fields in st.redis.client.xrange(st.redis.keys.events_key(project_id))]


def test_a_claim_is_in_the_project_event_stream_when_the_answer_arrives(app, make_agent):
    agent = make_agent(project="events")
    bead = agent.create("Thing")
    agent.post(f"/beads/{bead}/claim")
    kinds = [e["kind"] for e in _events(app, agent.info["project"]["id"])]
    assert kinds[-1] == "claim.created"


def test_the_redelivery_sweep_records_delivery_without_publishing_twice(app, make_agent, worker):
    from actors.outbox import redeliver_pending

    agent = make_agent(project="marks")
    agent.post(f"/beads/{agent.create('Thing')}/claim")
    Outbox.update(created_ts=Outbox.created_ts - 60).execute()
    before = _events(app, agent.info["project"]["id"])
    redeliver_pending.send()
    worker.run()
    assert Outbox.select().where(Outbox.delivered_ts.is_null()).count() == 0
    assert _events(app, agent.info["project"]["id"]) == before


def test_a_row_redis_refused_is_published_by_the_sweep(app, make_agent, worker, monkeypatch):
    from actors.outbox import redeliver_pending
    from store.errors import Unavailable

    agent = make_agent(project="refused")
    st = app.extensions["beadwire"]
    real_publish = st.redis.publish

    def down(*args, **kwargs):
        raise Unavailable("redis unreachable: test")

    monkeypatch.setattr(st.redis, "publish", down)
    agent.create("Thing")  # committed; the fast path fails and the actor cannot publish either
    monkeypatch.setattr(st.redis, "publish", real_publish)
    st.broker.flush_all()  # drop the actor message the web enqueued: this tests the sweep alone

    def created() -> list[dict]:
        return [e for e in _events(app, agent.info["project"]["id"]) if e["kind"] == "bead.created"]

    assert created() == []
    Outbox.update(created_ts=Outbox.created_ts - 60).execute()
    redeliver_pending.send()
    worker.run()
    assert len(created()) == 1


def test_delivering_a_row_twice_publishes_it_once(app, make_agent):
    agent = make_agent(project="twice")
    agent.create("Thing")
    st = app.extensions["beadwire"]
    row = Outbox.select().order_by(Outbox.id.desc()).first()
    # the request published it already; the actor and the sweep may still come by (a crash
    # between publishing and recording it): both are no-ops
    assert outbox.deliver(st, row.id) is False
    assert outbox.redeliver(st, [row.id]) == 0
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

