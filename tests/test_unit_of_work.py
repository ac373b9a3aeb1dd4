"""The unit of work (store/unit.py): outbox rows travel with their transaction, explicitly."""

from __future__ import annotations

import pytest

from store import db, outbox, unit


def _events(app, project_id: int) -> list[dict]:
    st = app.extensions["beadwire"]
    return [fields for _, fields in st.redis.client.xrange(st.redis.keys.events_key(project_id))]


@pytest.fixture
def project_id(app, make_agent) -> int:
    agent = make_agent(project="uow")
    db.connect()
    unit.open_scope()  # what the setup's requests did is theirs
    return agent.info["project"]["id"]


def _kinds(app, project_id: int) -> list[str]:
    return [e["kind"] for e in _events(app, project_id) if e["kind"].startswith("test.")]


def test_rows_of_a_rolled_back_transaction_are_never_published(app, project_id):
    st = app.extensions["beadwire"]
    with pytest.raises(RuntimeError), db.transaction() as uow:
        outbox.record(uow, project_id, "test.lost", {"n": 1})
        assert len(uow.rows) == 1
        raise RuntimeError("the fact failed")
    assert unit.scope().committed == []
    outbox.publish_pending(st)
    assert _kinds(app, project_id) == []


def test_rows_of_a_committed_transaction_are_published_once(app, project_id):
    st = app.extensions["beadwire"]
    with db.transaction() as uow:
        outbox.record(uow, project_id, "test.kept", {"n": 1})
        assert unit.scope().committed == []  # not before the commit
    assert [row["kind"] for row in unit.scope().committed] == ["test.kept"]
    outbox.publish_pending(st)
    outbox.publish_pending(st)  # nothing left to send: the scope handed its rows over once
    assert _kinds(app, project_id) == ["test.kept"]


def test_a_nested_transaction_joins_the_outer_one(app, project_id):
    st = app.extensions["beadwire"]
    with pytest.raises(RuntimeError), db.transaction() as outer:
        with db.transaction() as inner:
            outbox.record(inner, project_id, "test.inner", {})
        assert [row["kind"] for row in outer.rows] == ["test.inner"]  # joined the outer unit of work
        assert unit.scope().committed == []
        raise RuntimeError("the outer transaction rolls back")
    outbox.publish_pending(st)
    assert _kinds(app, project_id) == []
    with db.transaction() as outer:
        with pytest.raises(RuntimeError), db.transaction() as inner:
            outbox.record(inner, project_id, "test.savepoint", {})
            raise RuntimeError("only the savepoint rolls back")
        outbox.record(outer, project_id, "test.outer", {})
    outbox.publish_pending(st)
    assert _kinds(app, project_id) == ["test.outer"]


def test_the_web_publishes_what_a_request_committed_before_answering(app, make_agent):
    agent = make_agent(project="uow-web")
    agent.create("Thing")
    assert "bead.created" in [e["kind"] for e in _events(app, agent.info["project"]["id"])]
    assert unit.scope().committed == []  # the request's scope handed its rows over and closed
