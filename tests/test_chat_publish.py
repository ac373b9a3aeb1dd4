"""A chat reply wakes its waiter as soon as it commits; the replier's answer still waits for the disk."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from store import chat, db, sqlite_writer
from store.models import Delivery

pytestmark = pytest.mark.atomic  # the publication is a Lua script: also on a real Redis server


@pytest.fixture
def pair(make_agent):
    return make_agent(alias="ana"), make_agent(alias="bob")


class Syncs:
    """Each group fsync (store/sqlite_writer.py) records what `probe()` returns at that moment."""

    def __init__(self) -> None:
        self.seen: list[Any] = []
        self.probe: Callable[[], Any] = lambda: None


@pytest.fixture
def syncs(monkeypatch) -> Syncs:
    record = Syncs()
    original = sqlite_writer.GroupSync.sync

    def sync(self: sqlite_writer.GroupSync) -> None:
        record.seen.append(record.probe())
        original(self)

    monkeypatch.setattr(sqlite_writer.GroupSync, "sync", sync)
    return record


def mailbox_bodies(redis: Any) -> list[str]:
    """The chat bodies in every mailbox stream of Redis."""
    bodies = []
    for key in redis.keys("*:mbox:*"):
        if redis.type(key) == "stream":
            bodies += [fields.get("data", "") for _, fields in redis.xrange(key)]
    return bodies


def test_the_reply_is_in_the_waiters_mailbox_before_its_commit_is_made_durable(pair, redis, syncs):
    ana, bob = pair
    ana.post("/chat", {"to": "bob", "body": "which port?", "wait": 60})
    syncs.seen.clear()
    syncs.probe = lambda: any('"8765"' in data for data in mailbox_bodies(redis))
    answered = bob.post("/chat", {"to": "ana", "body": "8765"})
    assert answered.status_code == 201
    # the reply's durable commit found the reply published already (the waiter is woken first); the
    # request may make other writes durable after it (web/common.py's audit catch-all)
    assert syncs.seen[0] is True


def test_a_reply_marks_what_it_answers_read_in_its_own_transaction(pair, app, syncs, monkeypatch):
    ana, bob = pair
    ana.post("/chat", {"to": "bob", "body": "one"})
    ana.post("/chat", {"to": "bob", "body": "two", "wait": 60})
    inside: list[bool] = [False]
    post = chat.post

    def posting(*args: Any, **kwargs: Any) -> Any:
        inside[0] = True
        try:
            return post(*args, **kwargs)
        finally:
            inside[0] = False

    monkeypatch.setattr(chat, "post", posting)
    syncs.seen.clear()
    syncs.probe = lambda: inside[0]
    assert bob.post("/chat", {"to": "ana", "body": "both read"}).status_code == 201
    assert syncs.seen.count(True) == 1  # one write transaction: the reply and the reads it answers
    with app.app_context():
        db.connect()
        unread = Delivery.select().where(Delivery.recipient == bob.info["workspace"]["id"],
                                         Delivery.acked_ts.is_null()).count()
    assert unread == 0
    assert bob.get("/chat/pending").json["conversations"] == []


def test_on_commit_runs_after_the_commit_and_before_the_disk_and_never_inside_another(app, monkeypatch):
    order: list[str] = []
    writer = sqlite_writer.current()
    assert writer is not None
    monkeypatch.setattr(writer, "make_durable", lambda: order.append("durable"))
    with app.app_context():
        db.connect()
        with db.transaction(on_commit=lambda: order.append("committed")):
            order.append("inside")
            with db.transaction(on_commit=lambda: order.append("nested")):
                pass
        assert order == ["inside", "committed", "durable"]

        order.clear()

        def fails() -> None:
            raise RuntimeError("publication failed")

        with pytest.raises(RuntimeError), db.transaction(on_commit=fails):
            order.append("inside")
        assert order == ["inside", "durable"]  # made durable all the same
