"""The hand-written hot paths answer what the libraries they stand in for would answer.

A claim builds its answer from what it wrote instead of reading it back (one path, lone bead or
not, new claim or held already), the team view parses presence in one go, answers are encoded by
orjson, timestamps formatted without strftime, and a chat reads its cursor in the same Redis round
trip that publishes it. Each test checks the one path against what a user reads afterwards, or
against the library's own answer.
"""

from __future__ import annotations

import json
import math
import random
from datetime import UTC, datetime

import pytest

ORIGIN = "git@github.com:acme/shop.git"


def listed(agent, ref: str) -> dict:
    """A bead as `GET /v1/beads` serialises it (every part read back from SQL)."""
    beads = agent.get("/beads?all=true&limit=1000").json
    return next(b for b in beads if b["id"] == ref)


def records(*rows: dict) -> str:
    base = {"status": "open", "priority": 2, "issue_type": "task", "created_at": "2026-01-02T03:04:05Z"}
    return "\n".join(json.dumps({**base, **row}) for row in rows)


@pytest.mark.parametrize("redis", [pytest.param("fake", marks=pytest.mark.fake)], indirect=True)
def test_a_claims_answer_is_the_bead_as_it_reads_afterwards(make_pg_agent):
    ana = make_pg_agent(alias="ana", human="Ana Lovelace")
    bob = make_pg_agent(alias="bob", human="Bob Byte", origin="git@github.com:acme/api.git")
    synced = ana.sync(records(
        {"id": "bd-1", "title": "Plain", "labels": ["a", "b"], "design": "kept as written",
         "x-extra": {"n": 1}},
        {"id": "bd-2", "title": "Related", "dependencies": [
            {"issue_id": "bd-2", "depends_on_id": "bd-1", "type": "related"}]},
        {"id": "bd-3", "title": "Crossed over"},
    ))
    assert synced.status_code == 200, synced.json
    for agent, ref, shown in ((ana, "bd-1", "bd-1"), (ana, "bd-2", "bd-2"), (bob, "shop:bd-3", "bd-3")):
        answer = agent.post(f"/beads/{ref}/claim")
        assert answer.status_code == 200, answer.json
        assert answer.json["bead"] == listed(ana, shown)
        assert answer.json["bead"]["claim"]["alias"] == agent.alias
    taken = bob.post("/beads/shop:bd-1/claim", {"jump_in": "urgent fix"})
    assert taken.status_code == 200, taken.json
    assert taken.json["previous"]["alias"] == "ana"
    assert taken.json["bead"] == listed(ana, "bd-1")
    for agent, ref, shown in ((bob, "shop:bd-1", "bd-1"), (ana, "bd-2", "bd-2")):  # held already: the same
        again = agent.post(f"/beads/{ref}/claim")
        assert again.status_code == 200, again.json
        assert again.json["already_held"] is True and again.json["previous"] is None
        assert again.json["bead"] == listed(ana, shown)


@pytest.mark.parametrize("protocol", [2, 3])
def test_presence_reads_the_same_over_either_redis_protocol(redis_server, protocol):
    import redis as redis_py

    from store.keys import Keys
    from store.redis import RedisStore

    client = redis_py.Redis.from_url(redis_server.url, decode_responses=True, protocol=protocol)
    client.flushall()
    try:
        store = RedisStore(client, Keys("bw"))
        client.zadd(store.keys.online_key(7), {"1": 100.25, "2": 1763700000.123456, "3": 50.0})
        client.hset(store.keys.presence_key(7),
                    mapping={"1": json.dumps({"branch": "main", "host": "h\u00e9"}),
                             "3": json.dumps({"branch": "old"})})
        assert store.presence(7, 60.0) == {1: (100.25, {"branch": "main", "host": "h\u00e9"}),
                                           2: (1763700000.123456, {})}
        assert store.presence(7, 2e9) == {}
    finally:
        client.flushall()
        client.close()


def test_a_chat_reaches_its_reader_after_redis_forgot_its_scripts(app, make_agent, redis):
    ana, bob = make_agent(alias="ana"), make_agent(alias="bob")
    asked = bob.post("/chat", {"to": "ana", "body": "ready?"})
    assert asked.status_code == 201, asked.json
    rs = app.extensions["beadwire"].redis
    # ana's cursor will be the newest entry of her own mailbox when she answers: bob's question
    ana_box = rs.keys.mailbox_key(ana.info["project"]["id"], ana.info["workspace"]["id"])
    (newest,) = rs.client.xrevrange(ana_box, count=1)
    redis.script_flush()  # a restarted Redis: the publish script must be loaded again
    answered = ana.post("/chat", {"to": "bob", "body": "yes"})
    assert answered.status_code == 201, answered.json
    assert answered.json["cursor"] == newest[0]
    bob_box = rs.keys.mailbox_key(bob.info["project"]["id"], bob.info["workspace"]["id"])
    assert [json.loads(f["data"])["body"] for _, f in rs.client.xrange(bob_box)] == ["yes"]  # published
    after, cursor = asked.json["message"]["id"], asked.json["cursor"]
    got = bob.get(f"/chat/wait?with=ana&after={after}&cursor={cursor}&timeout=0")
    assert [m["body"] for m in got.json["messages"]] == ["yes"]


def test_timestamps_read_as_strftime_wrote_them():
    from store.util import iso

    rng = random.Random(7)
    values = [rng.uniform(-3e10, 4.1e9) for _ in range(20_000)]
    values += [0.0, -0.5, 1.0, 1763700000.0, 1763700000.5, 1763700000.0000005, 253402300799.0]
    for ts in values:
        assert iso(ts) == datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"), ts
    assert iso(None) is None


def test_answers_are_encoded_as_flask_encoded_them():
    from flask import Flask
    from flask.json.provider import DefaultJSONProvider

    from web.json_provider import FastJSONProvider

    app = Flask(__name__)
    fast, plain = FastJSONProvider(app), DefaultJSONProvider(app)
    fast.sort_keys = plain.sort_keys = False
    documents = [
        {"b": 1, "a": [1, 2.5, None, True, "x"], "ts": 1763700000.123456},
        {"text": "caf\u00e9 \u2028 \U0001f600", "esc": "\x1b[31m\x9b"},  # non-ASCII: escaped as before
        {"big": 2**70, "neg": -(2**63)},  # beyond 64 bits: the standard encoder
        {1: "int key"},
        [{"nested": {"deep": [[], {}]}}],
        "plain",
        None,
    ]
    with app.app_context():
        for doc in documents:
            assert fast.dumps(doc, separators=(",", ":")) == plain.dumps(doc, separators=(",", ":"))
            assert fast.dumps(doc) == plain.dumps(doc)  # not jsonify's shape: untouched
        # floats keep their value (only the spelling of an exponent may differ)
        doc = [1e16, 1e-5, 0.1, -0.0, 123456.789]
        assert json.loads(fast.dumps(doc, separators=(",", ":"))) == doc
        assert all(not math.isnan(x) for x in json.loads(fast.dumps(doc, separators=(",", ":"))))


@pytest.mark.parametrize("redis", [pytest.param("fake", marks=pytest.mark.fake)], indirect=True)
def test_the_ready_list_skips_done_beads_nothing_names_and_answers_as_the_whole_graph_does(make_pg_agent):
    from store.graph import load_graph
    from store.models import Bead
    from store.util import now

    ana = make_pg_agent(alias="ana")
    assert ana.sync(records(
        {"id": "bd-old", "title": "Long done", "status": "closed", "closed_at": "2026-01-03T00:00:00Z"},
        {"id": "bd-gate", "title": "Done blocker", "status": "closed", "closed_at": "2026-01-03T00:00:00Z"},
        {"id": "bd-wall", "title": "Open blocker"},
        {"id": "bd-free", "title": "Unblocked by a done bead", "dependencies": [
            {"issue_id": "bd-free", "depends_on_id": "bd-gate", "type": "blocks"}]},
        {"id": "bd-stuck", "title": "Blocked", "dependencies": [
            {"issue_id": "bd-stuck", "depends_on_id": "bd-wall", "type": "blocks"}]},
        {"id": "bd-lost", "title": "Blocked by an unknown bead", "dependencies": [
            {"issue_id": "bd-lost", "depends_on_id": "bd-nowhere", "type": "blocks"}]},
    )).status_code == 200
    project_id = Bead.get(Bead.ref == "bd-old").project_id
    live, whole = load_graph(project_id, live_only=True), load_graph(project_id)
    assert sorted(n.ref for n in live.nodes.values()) == [
        "bd-free", "bd-gate", "bd-lost", "bd-stuck", "bd-wall"]
    assert live.ready(now()) == whole.ready(now())
    assert [b["id"] for b in ana.get("/ready").json] == ["bd-free", "bd-wall"]
