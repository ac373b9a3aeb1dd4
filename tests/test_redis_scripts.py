"""The Redis package's two pieces of plumbing: `unavailable()` (every Redis error becomes one 503) and
the typed script registry (each Lua file has one wrapper whose declared KEYS and ARGV match the file's
header, and a call with the wrong counts fails here, not as a Lua error on the server)."""

from __future__ import annotations

import re

import pytest
import redis as redis_py

from store.errors import Unavailable
from store.keys import Keys
from store.redis import RedisStore, make_client, unavailable
from store.redis.scripts import LUA_DIR, WRAPPERS, Ack, Publish, RateLimit, Reserve, Script


def test_a_redis_connection_error_becomes_unavailable_with_its_cause():
    refused = redis_py.ConnectionError("Error 111 connecting to localhost:1. Connection refused.")
    with pytest.raises(Unavailable) as caught, unavailable():
        raise refused
    assert caught.value.message == f"redis unreachable: {refused}"
    assert str(refused) == "Error 111 connecting to localhost:1. Connection refused."
    assert caught.value.status_code == 503 and caught.value.__cause__ is refused


def test_errors_that_are_not_redis_errors_pass_unchanged():
    with pytest.raises(KeyError), unavailable():
        raise KeyError("not ours to translate")


def test_a_store_whose_redis_is_down_answers_unavailable_for_commands_and_scripts():
    client = make_client("redis://127.0.0.1:1/0")  # nothing listens on port 1: refused at once
    try:
        rs = RedisStore(client, Keys("t"))
        with pytest.raises(Unavailable, match=r"^redis unreachable: "):
            rs.presence_of(1, 1)
        with pytest.raises(Unavailable, match=r"^redis unreachable: "):
            rs.heartbeat(1, 1, 100.0, {})
        with pytest.raises(Unavailable, match=r"^redis unreachable: "):
            rs.publish_many([(1, 1, "mail", "{}", 2, 3, True)])
        assert rs.ping().startswith("error: ")
    finally:
        client.close()


def _header_count(source: str, name: str) -> int:
    """The highest KEYS[n] or ARGV[n] the header comments of a script name."""
    header = "\n".join(line for line in source.splitlines() if line.startswith("--"))
    return max((int(n) for n in re.findall(rf"{name}\[(\d+)\]", header)), default=0)


@pytest.mark.parametrize("wrapper", WRAPPERS, ids=lambda w: w.FILE)
def test_each_wrapper_declares_the_keys_and_arguments_its_script_header_documents(wrapper: type[Script]):
    source = (LUA_DIR / wrapper.FILE).read_text()
    if not wrapper.KEYS[-1].endswith("..."):
        assert len(wrapper.KEYS) == _header_count(source, "KEYS")
    if not wrapper.ARGS[-1].endswith("..."):
        assert len(wrapper.ARGS) == _header_count(source, "ARGV")


def test_every_script_file_has_exactly_one_wrapper():
    files = sorted(p.name for p in LUA_DIR.glob("*.lua") if not p.name.endswith(".inc.lua"))
    assert sorted(w.FILE for w in WRAPPERS) == files


def test_a_call_with_the_wrong_number_of_keys_or_arguments_is_refused_before_redis_sees_it():
    four_keys = ["d", "e", "m", "i"]
    wanted = r"publish\.lua takes 4 keys \(delivered, events, mailbox, index\), got 3"
    with pytest.raises(TypeError, match=wanted):
        Publish.check(four_keys[:3], [1, "k", "{}", 10, 60, "1", "", "w"])
    with pytest.raises(TypeError, match=r"publish\.lua takes 8 arguments .*, got 7"):
        Publish.check(four_keys, [1, "k", "{}", 10, 60, "1", ""])
    Publish.check(four_keys, [1, "k", "{}", 10, 60, "1", "", "w"])


def test_repeating_arguments_come_in_whole_groups():
    Ack.check(["m", "i"], ["inbox"])  # no delivery id: allowed (the script acks nothing)
    Ack.check(["m", "i"], ["inbox", 1, 2, 3])
    with pytest.raises(TypeError, match="at least 1 arguments"):
        Ack.check(["m", "i"], [])
    Reserve.check(["r", "e"], [1.0, 120, "7\0", "7\0a", "{}", 2.0])
    with pytest.raises(TypeError, match="3 arguments and then groups of 3"):
        Reserve.check(["r", "e"], [1.0, 120, "7\0", "7\0a", "{}"])
    with pytest.raises(TypeError, match="groups of 2"):
        RateLimit.check(["b1"], [1.0, "0.5"])


def test_the_typed_wrapper_builds_the_call_its_script_expects(redis):
    rs = RedisStore(redis, Keys("t"))
    call = rs.scripts.reserve("r", "e", now=1.5, grace=120, prefix="7\0", triples=[("7\0a", "{}", 2.5)])
    assert (call.keys, call.args) == (["r", "e"], ["1.5", 120, "7\0", "7\0a", "{}", "2.5"])
    assert call.script is rs.scripts.reserve and call.script.sha == rs.scripts.reserve.lua.sha


def test_the_heartbeat_runs_again_after_redis_forgot_its_scripts(redis):
    rs = RedisStore(redis, Keys("t"))
    rs.publish(1, 1, "mail", '{"body": "hi"}', 7, delivery_id=11)
    redis.script_flush()  # a restarted Redis: heartbeat.lua must be loaded again
    beat = rs.heartbeat(1, 7, 100.0, {"branch": "main"})
    assert beat.touch is True and beat.rebuild is True and [f["id"] for _, f in beat.new] == ["11"]
    assert rs.presence(1, 0.0) == {7: (100.0, {"branch": "main"})}
