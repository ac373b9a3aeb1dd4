"""The periodic sweeps: each does its job once, however often (and by however many) it runs."""

from __future__ import annotations

import json

import pytest

from store import messages, outbox, retention
from store.claims import mark_stale_claims
from store.models import Delivery, Event, Message, Outbox, Workspace


def _store(app):
    return app.extensions["beadwire"]


def _age(seconds: float) -> None:
    """Make every outbox row `seconds` older (instead of sleeping)."""
    Outbox.update(created_ts=Outbox.created_ts - seconds).execute()


def test_redelivery_of_an_undelivered_row_backs_off_exponentially(app, make_agent):
    agent = make_agent(project="backoff")
    agent.create("Thing")
    Outbox.update(delivered_ts=None).execute()
    _age(25)  # try n happens once the row is 10 * 2**n seconds old: at 10, 20, 40, 80 s ...
    first = outbox.pending(older_than=10)
    assert first
    assert outbox.pending(older_than=10) == first  # 25 >= 20
    assert outbox.pending(older_than=10) == []  # 25 < 40: wait
    _age(20)
    assert outbox.pending(older_than=10) == first  # 45 >= 40
    assert outbox.pending(older_than=10) == []  # 45 < 80


def test_a_row_recorded_as_delivered_is_never_tried_again(app, make_agent):
    agent = make_agent(project="done")
    agent.create("Thing")
    _age(60)
    outbox.redeliver(_store(app), outbox.pending())
    _age(10_000)
    assert outbox.pending() == []


def test_a_stale_claim_is_marked_once_and_the_team_is_told(app, make_agent, worker):
    coord = make_agent(project="stale", alias="coord", role="coordinator")
    dev = make_agent(project="stale", alias="dev")
    other = make_agent(project="stale", alias="other")
    bead = dev.create("Long job")
    dev.post(f"/beads/{bead}/claim")
    st = _store(app)
    Workspace.update(last_seen_ts=0).where(Workspace.alias == "dev").execute()
    st.redis.client.delete(st.redis.keys.online_key(dev.info["project"]["id"]))
    assert mark_stale_claims(st) == 1
    assert mark_stale_claims(st) == 0  # once
    worker.run()
    told = {w.alias for w in Workspace.select().join(Delivery, on=(Delivery.recipient == Workspace.id))
            .join(Message).where(Message.kind == "notice")}
    assert told == {"coord", "dev"}  # the coordinator and the holder, not every teammate
    notice = coord.get("/mail?unread=1").json[0]
    assert bead in notice["body"] and "stale" in notice["body"]
    assert other.get("/mail?unread=1").json == []


def test_mail_left_unread_is_shown_again_once(app, make_agent, worker):
    ana, bob = make_agent(project="remind", alias="ana"), make_agent(project="remind", alias="bob")
    ana.post("/mail", {"to": "bob", "body": "did you see this?"})
    worker.run()
    assert len(json.loads(bob.get("/whoami").headers["X-Wire-Banner"])["new"]) == 1
    st = _store(app)
    st.settings = st.settings.with_(remind_after=0)  # anything read but unacked counts as stuck
    assert messages.remind_stuck(st) == 1
    again = json.loads(bob.get("/whoami").headers["X-Wire-Banner"])
    assert [i["text"] for i in again["new"]] == ["did you see this?"]
    assert messages.remind_stuck(st) == 0  # one reminder, no nagging
    assert json.loads(bob.get("/whoami").headers["X-Wire-Banner"])["new"] == []
    bob.post("/mail/open", {})
    assert bob.get("/whoami").headers.get("X-Wire-Banner") is None


def test_retention_drops_old_history_but_never_unread_mail(app, make_agent, worker):
    ana, bob = make_agent(project="keep", alias="ana"), make_agent(project="keep", alias="bob")
    read_id = ana.post("/mail", {"to": "bob", "body": "old and read"}).json["message"]["id"]
    unread_id = ana.post("/mail", {"to": "bob", "body": "old but unread"}).json["message"]["id"]
    ana.create("An old bead")
    worker.run()
    bob.post(f"/mail/{read_id}/ack")
    year = 365 * 86400
    Message.update(created_ts=Message.created_ts - year).execute()
    Event.update(created_ts=Event.created_ts - year).execute()
    _age(year)
    purged = retention.purge_history(_store(app))
    assert purged["messages"] == 1 and purged["events"] >= 1
    assert [m.id for m in Message.select()] == [unread_id]
    assert [m["body"] for m in bob.get("/mail").json] == ["old but unread"]
    assert retention.purge_history(_store(app)) == {"events": 0, "outbox": 0, "messages": 0, "requests": 0,
                                                    "handoffs": 0, "syncs": 0, "join_keys": 0, "audit": 0}


def test_retention_keeps_the_newest_handoff_of_each_workspace_whatever_its_age(pg_app, make_pg_agent):
    from store.models import Handoff

    app = pg_app
    ana, bob = make_pg_agent(project="notes", alias="ana"), make_pg_agent(project="notes", alias="bob")
    for text in ("first note", "second note"):
        assert ana.post("/handoffs", {"body": text}).status_code == 201
    assert ana.post("/handoffs", {"body": "old one for bob", "to": "bob"}).status_code == 201
    assert ana.post("/handoffs", {"body": "newest note"}).status_code == 201
    assert ana.post("/handoffs", {"body": "for bob", "to": "bob"}).status_code == 201  # ana's newest of all
    Handoff.update(created_ts=Handoff.created_ts - 365 * 86400).execute()
    assert retention.purge_history(_store(app))["handoffs"] == 3
    assert sorted(h.body for h in Handoff.select()) == ["for bob", "newest note"]
    assert ana.get("/handoffs/latest").json["handoff"]["body"] == "newest note"
    assert bob.get("/handoffs/latest").json["handoff"]["body"] == "for bob"


def test_undelivered_outbox_rows_survive_retention(app, make_agent):
    agent = make_agent(project="undelivered")
    agent.create("Thing")
    Outbox.update(delivered_ts=None).execute()
    _age(365 * 86400)
    retention.purge_history(_store(app))
    assert Outbox.select().count() > 0


@pytest.mark.parametrize("name", ["presence", "retention"])
def test_a_sweep_lease_lets_one_runner_in(app, name):
    rs = _store(app).redis
    assert rs.try_lock(name, 30) is True
    assert rs.try_lock(name, 30) is False


# -- sweeps that write while other processes write -------------------------------------------------

def _after_another_write(fn, workspace_id: int):
    """`fn`, whose first call is preceded by a commit on another connection (another process's request).

    On SQLite a sweep that still iterates a SELECT when it opens a write transaction is refused
    ("database is locked", without waiting) once such a commit happened: sweeps read their rows first.
    """
    import threading

    from store import db

    transaction, first = db.transaction, []

    def write() -> None:
        db.connect()
        try:
            with transaction():
                bump = Workspace.update(last_seen_ts=Workspace.last_seen_ts + 1)
                bump.where(Workspace.id == workspace_id).execute()
        finally:
            db.close()

    def wrapper(*args, **kwargs):
        if not first:
            first.append(True)
            writer = threading.Thread(target=write)
            writer.start()
            writer.join()
        return fn(*args, **kwargs)

    return wrapper


def test_the_stale_claim_sweep_survives_writes_from_other_connections(app, make_agent, monkeypatch):
    import store.claims

    dev = make_agent(project="busy", alias="dev")
    other = make_agent(project="busy", alias="other")
    for title in ("One", "Two", "Three"):
        dev.post(f"/beads/{dev.create(title)}/claim")
    st = _store(app)
    Workspace.update(last_seen_ts=0).where(Workspace.alias == "dev").execute()
    st.redis.client.delete(st.redis.keys.online_key(dev.info["project"]["id"]))
    monkeypatch.setattr(store.claims, "_mark_stale", _after_another_write(store.claims._mark_stale,
                                                                           other.info["workspace"]["id"]))
    assert mark_stale_claims(st) == 3


def test_the_escalation_sweep_survives_writes_from_other_connections(app, make_agent, monkeypatch):
    from store import db, escalations
    from store.models import Escalation
    from store.util import now

    ana = make_agent(project="asks", alias="ana")
    for subject in ("First?", "Second?", "Third?"):
        assert ana.post("/escalations", {"subject": subject, "situation": "stuck", "options": ["A", "B"],
                                         "severity": "high"}).status_code == 201
    Escalation.update(remind_ts=now() - 1).execute()
    monkeypatch.setattr(db, "transaction", _after_another_write(db.transaction, ana.info["workspace"]["id"]))
    assert escalations.sweep() == {"reannounced": 3, "expired": 0}


def test_a_mailbox_rebuild_survives_writes_from_other_connections(app, make_agent, monkeypatch):
    alice, bob = make_agent(project="rebuilt", alias="alice"), make_agent(project="rebuilt", alias="bob")
    for i in range(3):
        alice.post("/mail", {"to": "bob", "subject": f"s{i}", "body": f"b{i}"})
    st = _store(app)
    st.redis.client.flushall()  # Redis lost the mailboxes: the rebuild puts the unread mail back from SQL
    monkeypatch.setattr(outbox, "deliver",
                        _after_another_write(outbox.deliver, alice.info["workspace"]["id"]))
    assert messages.rebuild_mailboxes(st, bob.info["project"]["id"]) == 3
    assert sorted(m["subject"] for m in bob.get("/mail").json) == ["s0", "s1", "s2"]
