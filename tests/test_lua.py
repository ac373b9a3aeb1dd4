"""Every Lua script, on fakeredis and on a real redis-server."""

from __future__ import annotations

import json

import pytest

from store.keys import Keys
from store.redis import RedisStore

pytestmark = pytest.mark.atomic  # also on a real Redis server: every Lua script


def test_heartbeat_records_presence_and_asks_for_one_sql_touch_per_window(redis):
    rs = RedisStore(redis, Keys("t"))
    assert rs.heartbeat(1, 7, 1000.0, {"branch": "main"}).touch is True
    assert rs.heartbeat(1, 7, 1001.0, {"branch": "feature"}).touch is False
    assert rs.presence(1, 999.0) == {7: (1001.0, {"branch": "feature"})}
    assert redis.ttl(rs.keys.touch_key(1, 7)) > 0


def test_presence_only_lists_workspaces_seen_since_the_cutoff(redis):
    rs = RedisStore(redis, Keys("t"))
    rs.heartbeat(1, 1, 100.0, {})
    rs.heartbeat(1, 2, 200.0, {})
    assert set(rs.presence(1, 150.0)) == {2}
    assert rs.prune_presence(1, 150.0) == 1
    assert set(rs.last_beats(1)) == {2}


def test_presence_of_one_project_is_invisible_to_another(redis):
    rs = RedisStore(redis, Keys("t"))
    rs.heartbeat(1, 1, 100.0, {})
    assert rs.presence(2, 0.0) == {}


def test_publish_delivers_once_per_outbox_id(redis):
    rs = RedisStore(redis, Keys("t"))
    payload = json.dumps({"bead": "bd-1"})
    assert rs.publish(1, 42, "claim.created", payload, None) is True
    assert rs.publish(1, 42, "claim.created", payload, None) is False
    entries = redis.xrange(rs.keys.events_key(1))
    assert [(e[1]["id"], e[1]["kind"], e[1]["data"]) for e in entries] == [("42", "claim.created", payload)]


def test_publish_with_a_recipient_also_fills_its_mailbox(redis):
    rs = RedisStore(redis, Keys("t"))
    rs.publish(3, 9, "mail", "{}", 5, delivery_id=70)
    assert [e[1]["id"] for e in redis.xrange(rs.keys.mailbox_key(3, 5))] == ["70"]
    assert [e[1]["id"] for e in redis.xrange(rs.keys.events_key(3))] == ["9"]


def test_publish_can_skip_the_event_stream(redis):
    rs = RedisStore(redis, Keys("t"))
    rs.publish(3, 10, "mail", "{}", 5, delivery_id=71, to_events=False)
    assert redis.xlen(rs.keys.events_key(3)) == 0
    assert redis.xlen(rs.keys.mailbox_key(3, 5)) == 1


def test_a_mailbox_rebuild_is_asked_for_once_until_done_and_again_after_a_flush(redis):
    rs = RedisStore(redis, Keys("t"))
    assert rs.heartbeat(1, 1, 10.0, {}).rebuild is True
    assert rs.heartbeat(1, 2, 11.0, {}).rebuild is False  # requested already: no stampede
    redis.delete(rs.keys.rebuilding_key(1))  # the request lapsed (the rebuild died): ask again
    assert rs.heartbeat(1, 2, 12.0, {}).rebuild is True
    rs.mark_rebuilt(1, 12.0)
    redis.delete(rs.keys.rebuilding_key(1))
    assert rs.heartbeat(1, 2, 13.0, {}).rebuild is False  # whole: nothing to do
    redis.flushall()
    assert rs.heartbeat(1, 2, 14.0, {}).rebuild is True


def test_heartbeat_returns_each_new_mailbox_entry_once_and_counts_the_unread(redis):
    rs = RedisStore(redis, Keys("t"))
    rs.publish(1, 1, "mail", '{"body": "hi"}', 7, delivery_id=11)
    rs.publish(1, 2, "notice", '{"body": "taken"}', 7, delivery_id=12)
    first = rs.heartbeat(1, 7, 100.0, {})
    assert [f["id"] for _, f in first.new] == ["11", "12"] and first.pending == 2
    second = rs.heartbeat(1, 7, 101.0, {})
    assert second.new == [] and second.pending == 2
    rs.publish(1, 3, "mail", '{"body": "more"}', 7, delivery_id=13)
    assert rs.heartbeat(1, 7, 101.5, {}).pending == 3  # unread counts what was never read too
    assert rs.ack(1, 7, [11]) == 1
    assert rs.heartbeat(1, 7, 102.0, {}).pending == 2
    assert rs.ack(1, 7, [11]) == 0  # acking twice is harmless


def test_ack_removes_the_entry_from_the_mailbox(redis):
    rs = RedisStore(redis, Keys("t"))
    rs.publish(1, 1, "mail", "{}", 7, delivery_id=11)
    rs.heartbeat(1, 7, 100.0, {})
    rs.ack(1, 7, [11])
    assert redis.xlen(rs.keys.mailbox_key(1, 7)) == 0
    assert redis.hlen(rs.keys.mailbox_index_key(1, 7)) == 0


def test_an_unread_entry_acked_before_any_read_is_still_acknowledged(redis):
    rs = RedisStore(redis, Keys("t"))
    rs.publish(1, 1, "mail", "{}", 7, delivery_id=11)
    assert rs.ack(1, 7, [11]) == 1
    assert rs.heartbeat(1, 7, 100.0, {}).new == []


def test_a_waiter_shows_in_the_banner_until_cleared_or_past_its_deadline(redis):
    rs = RedisStore(redis, Keys("t"))
    rs.set_waiting(1, 7, 8, 200.0, {"alias": "bob", "since": 90.0})
    assert rs.heartbeat(1, 7, 100.0, {}).waiting == [{"alias": "bob", "since": 90.0}]
    assert rs.heartbeat(1, 7, 201.0, {}).waiting == []
    rs.set_waiting(1, 7, 8, 400.0, {"alias": "bob", "since": 300.0})
    rs.set_waiting(1, 7, 8, 0, {})
    assert rs.heartbeat(1, 7, 301.0, {}).waiting == []
    assert rs.waiting_on(1, 7, 301.0) == []


def test_the_end_of_a_chat_turn_acks_what_was_read_and_moves_the_wait(redis):
    rs = RedisStore(redis, Keys("t"))
    rs.publish(1, 1, "chat", "{}", 7, delivery_id=11)  # 8 asked 7, and waits on 7
    rs.set_waiting(1, 7, 8, 200.0, {"alias": "bob", "since": 90.0})
    rs.end_turn(1, 7, 8, [11], 160.0, {"alias": "ana", "since": 100.0})  # 7 answers, and waits on 8
    assert redis.xlen(rs.keys.mailbox_key(1, 7)) == 0
    assert rs.waiting_on(1, 7, 100.0) == []
    assert rs.waiting_on(1, 8, 100.0) == [{"alias": "ana", "since": 100.0}]
    rs.end_turn(1, 8, 7, [], 0, {})  # 8 answers without waiting: nothing to ack, 7's wait ends
    assert rs.waiting_on(1, 8, 100.0) == [] and rs.waiting_on(1, 7, 100.0) == []


def test_every_key_of_a_project_shares_one_cluster_slot():
    keys = Keys("bw")
    built = [keys.presence_key(4), keys.online_key(4), keys.touch_key(4, 1), keys.events_key(4),
             keys.mailbox_key(4, 1), keys.delivered_key(4, 1), keys.mailbox_index_key(4, 1),
             keys.waiting_key(4, 1), keys.waitinfo_key(4, 1), keys.epoch_key(4), keys.rebuilding_key(4)]
    assert {k.split("{", 1)[1].split("}", 1)[0] for k in built} == {"p:4"}


def test_key_formats_are_pinned():
    keys = Keys("bw")
    assert keys.presence_key(4) == "bw:{p:4}:presence"
    assert keys.online_key(4) == "bw:{p:4}:online"
    assert keys.touch_key(4, 2) == "bw:{p:4}:touch:2"
    assert keys.events_key(4) == "bw:{p:4}:events"
    assert keys.mailbox_key(4, 2) == "bw:{p:4}:mbox:2"
    assert keys.delivered_key(4, 2) == "bw:{p:4}:seen:2"
    assert keys.mailbox_index_key(4, 2) == "bw:{p:4}:mbox:2:ids"
    assert keys.waiting_key(4, 2) == "bw:{p:4}:waiting:2"
    assert keys.waitinfo_key(4, 2) == "bw:{p:4}:waitinfo:2"
    assert keys.epoch_key(4) == "bw:{p:4}:epoch"
    assert keys.rebuilding_key(4) == "bw:{p:4}:rebuilding"
