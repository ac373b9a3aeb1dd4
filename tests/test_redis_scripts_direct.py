"""Scripts run by EVALSHA straight on a pooled connection (store/redis/scripts.py `Script.run`): on a real
server they survive Redis forgetting its scripts and connections it dropped, as redis-py's own path does."""

from __future__ import annotations

import pytest

from store.errors import Unavailable
from store.keys import Keys
from store.redis import RedisStore


def store(real_redis) -> RedisStore:
    return RedisStore(real_redis, Keys("bw"))


def test_the_direct_path_is_taken_on_a_plain_client(real_redis):
    assert store(real_redis).scripts.publish.pool is real_redis.connection_pool


def test_a_script_redis_forgot_is_loaded_and_run_again(real_redis):
    st = store(real_redis)
    assert st.publish(1, 10, "mail", "{}", 2, delivery_id=5)
    real_redis.script_flush()
    assert st.publish(1, 11, "mail", "{}", 2, delivery_id=6)
    assert not st.publish(1, 11, "mail", "{}", 2, delivery_id=6)  # still once per outbox id
    assert real_redis.xlen(st.keys.mailbox_key(1, 2)) == 2


def test_a_dropped_connection_is_opened_again_and_the_call_succeeds(real_redis):
    st = store(real_redis)
    assert st.publish(1, 20, "mail", "{}", 2, delivery_id=7)
    real_redis.client_kill_filter(_type="normal", skipme=False)  # every pooled connection is now dead
    assert st.publish(1, 21, "mail", "{}", 2, delivery_id=8)
    assert real_redis.xlen(st.keys.mailbox_key(1, 2)) == 2


def test_arguments_hiredis_cannot_write_are_refused_by_redis_py_as_before(real_redis):
    script = store(real_redis).scripts.revoke
    with pytest.raises(Unavailable):
        script.run(["a", "b", "c"], [None])
