"""Every Lua script, on fakeredis and on a real redis-server."""

from __future__ import annotations

import json

from store.keys import Keys
from store.redis import RedisStore


def test_heartbeat_records_presence_and_asks_for_one_sql_touch_per_window(redis):
    rs = RedisStore(redis, Keys("t"))
    assert rs.heartbeat(1, 7, 1000.0, {"branch": "main"}) is True
    assert rs.heartbeat(1, 7, 1001.0, {"branch": "feature"}) is False
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
    rs.publish(3, 9, "claim.jumped", "{}", 5)
    assert [e[1]["id"] for e in redis.xrange(rs.keys.mailbox_key(3, 5))] == ["9"]
    assert [e[1]["id"] for e in redis.xrange(rs.keys.events_key(3))] == ["9"]


def test_every_key_of_a_project_shares_one_cluster_slot():
    keys = Keys("bw")
    built = [keys.presence_key(4), keys.online_key(4), keys.touch_key(4, 1), keys.events_key(4),
             keys.mailbox_key(4, 1), keys.delivered_key(4, 1)]
    assert {k.split("{", 1)[1].split("}", 1)[0] for k in built} == {"p:4"}


def test_key_formats_are_pinned():
    keys = Keys("bw")
    assert keys.presence_key(4) == "bw:{p:4}:presence"
    assert keys.online_key(4) == "bw:{p:4}:online"
    assert keys.touch_key(4, 2) == "bw:{p:4}:touch:2"
    assert keys.events_key(4) == "bw:{p:4}:events"
    assert keys.mailbox_key(4, 2) == "bw:{p:4}:mbox:2"
    assert keys.delivered_key(4, 2) == "bw:{p:4}:seen:2"
