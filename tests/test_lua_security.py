"""ratelimit.lua, revoke.lua and the revocation and rate checks of the heartbeat (heartbeat.lua),
on fakeredis and a real Redis (and, through tests/test_lua_cluster.py, on a Redis Cluster).
"""

from __future__ import annotations

import pytest

from store.errors import RateLimited, Unauthorized
from store.keys import Keys
from store.redis import Rate, RedisStore
from store.redis.scripts import Script

pytestmark = pytest.mark.atomic  # also on a real Redis server: ratelimit.lua, revoke.lua, heartbeat.lua


def test_security_key_formats_are_pinned():
    keys = Keys("bw")
    assert keys.revoked_key(4) == "bw:{p:4}:revoked"
    assert keys.token_bucket_key(4, 2) == "bw:{p:4}:rl:ws:2"
    assert keys.project_bucket_key(4) == "bw:{p:4}:rl:project"
    assert keys.key_bucket_key(4) == "bw:{p:4}:rl:key"
    assert keys.ip_bucket_key("10.0.0.1") == "bw:rl:ip:10.0.0.1"


def test_the_rate_limit_lua_takes_from_every_bucket_or_none(redis):
    rs = RedisStore(redis, Keys("bw"))
    small, big = ("bw:{p:1}:rl:a", Rate(1, 1)), ("bw:{p:1}:rl:b", Rate(1, 2))
    rs.take([small, big], 100.0, "x")
    with pytest.raises(RateLimited) as refused:
        rs.take([small, big], 100.0, "x")
    assert refused.value.retry_after == 1
    rs.take([big], 100.0, "x")  # the refused call charged nothing: big still has one left
    with pytest.raises(RateLimited):
        rs.take([big], 100.0, "x")
    rs.take([small, big], 102.0, "x")
    assert 0 < redis.pttl("bw:{p:1}:rl:a") <= 2000
    rs.take([("bw:{p:1}:rl:c", Rate(0, 1))] * 3, 100.0, "x")  # 0: unlimited


def test_the_heartbeat_refuses_revoked_workspaces_and_empty_buckets_before_writing(redis):
    rs = RedisStore(redis, Keys("bw"))
    one = Rate(1, 1)
    rs.heartbeat(1, 7, 100.0, {}, one, Rate(0, 1))
    with pytest.raises(RateLimited):
        rs.heartbeat(1, 7, 100.5, {}, one, Rate(0, 1))
    assert redis.zscore("bw:{p:1}:online", "7") == 100.0  # the refused beat wrote nothing
    rs.heartbeat(1, 8, 100.5, {}, one, Rate(0, 1))  # another token: its own bucket
    assert rs.revoke(1, 8) is True and rs.revoke(1, 8) is False
    assert redis.zscore("bw:{p:1}:online", "8") is None
    with pytest.raises(Unauthorized):
        rs.heartbeat(1, 8, 200.0, {})


def test_a_revoked_workspace_is_neither_shown_online_nor_announced_and_the_beat_is_one_round_trip(
        redis, monkeypatch):
    # heartbeat.lua admits and writes in one script: no revocation can land between the two
    rs = RedisStore(redis, Keys("bw"))
    rs.heartbeat(1, 7, 100.0, {})
    rs.revoke(1, 7)  # a human revokes the token while an auth cache still says yes
    sent = []
    execute = redis.execute_command
    monkeypatch.setattr(redis, "execute_command", lambda *a, **kw: sent.append(a[0]) or execute(*a, **kw))
    # on a real server scripts go straight to a pooled connection (store/redis/scripts.py): count those too
    direct = Script._evalsha
    monkeypatch.setattr(Script, "_evalsha",
                        lambda script, packed: sent.append("EVALSHA") or direct(script, packed))
    with pytest.raises(Unauthorized):
        rs.heartbeat(1, 7, 200.0, {"branch": "main"}, online_event={"alias": "ana"}, offline_after=150.0)
    assert sent == ["EVALSHA"]
    assert redis.zscore("bw:{p:1}:online", "7") is None and redis.hget("bw:{p:1}:presence", "7") is None
    assert redis.xlen("bw:{p:1}:events") == 0  # nor was it announced as back online
