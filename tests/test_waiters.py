"""Waiters: caps per credential and per project (429 + Retry-After), wake-ups without a Redis
connection per waiter, and who may create a project on a server bound beyond loopback."""

from __future__ import annotations

import threading

import pytest

from store import waiters
from store.keys import Keys
from store.redis import RedisStore

pytestmark = pytest.mark.atomic  # also on a real Redis server: blocking reads and wait.lua


@pytest.fixture
def capped(settings, redis):
    """An app whose caps are 2 waiters per credential and 3 per project."""
    from tests.conftest import _drain_broker, _make_app

    app = _make_app(settings.with_(waiters_token=2, waiters_project=3), redis)
    yield app
    _drain_broker(app)


def _agent(app, alias: str, make=None):
    from tests.conftest import _agent_factory

    return (make or _agent_factory(app.test_client()))(alias=alias)


def test_the_waiter_keys_and_the_wake_channel_are_pinned():
    keys = Keys("bw")
    assert keys.waiters_key(3) == "bw:{p:3}:waiters"
    assert keys.owner_waiters_key(3, "w7") == "bw:{p:3}:waiters:w7"
    assert keys.wake_channel(3) == "bw:{p:3}:wake"


def _announced(pubsub, raw: list[str] | None = None) -> list[str]:
    """The stream names announced on a subscribed wake channel so far (the messages as sent in `raw`)."""
    names = []
    while (message := pubsub.get_message(timeout=0.5)) is not None:
        if message["type"] == "message":
            names.append(message["data"].partition("\n")[0])
            if raw is not None:
                raw.append(message["data"])
    return names


def test_every_script_that_adds_to_a_stream_a_waiter_reads_announces_it_on_the_wake_channel(redis):
    rs = RedisStore(redis, Keys("t"))
    pubsub = redis.pubsub()
    pubsub.subscribe(rs.keys.wake_channel(1))
    k = rs.keys
    rs.publish(1, 1, "mail", "{}", recipient_id=7, delivery_id=70)  # publish.lua: events, then the mailbox
    sent: list[str] = []
    assert _announced(pubsub, sent) == [k.events_key(1), k.mailbox_key(1, 7)]
    # the mailbox's announcement carries its entry, as a read of the stream gives it (store/wakeups.py)
    ((entry, fields),) = rs.mailbox_after(1, 7, "0-0")
    assert sent == [k.events_key(1), f"{k.mailbox_key(1, 7)}\n{entry}\n70\nmail\n{{}}"]
    assert fields == {"id": "70", "kind": "mail", "data": "{}"}
    rs.heartbeat(1, 8, 1000.0, {}, online_event={"alias": "bob"}, offline_after=900.0)  # heartbeat.lua
    assert _announced(pubsub) == [k.events_key(1)]
    # still online: no event
    rs.heartbeat(1, 8, 1001.0, {}, online_event={"alias": "bob"}, offline_after=900.0)
    rs.heartbeat(1, 7, 1000.0, {})  # reads mailbox 7 through the group
    assert _announced(pubsub) == []
    assert rs.reclaim_stuck(1, 7, 0) == 1  # reclaim.lua shows the entry again
    assert _announced(pubsub) == [k.mailbox_key(1, 7)]
    pubsub.close()


def test_enter_takes_slots_up_to_each_cap_and_leaving_frees_one(redis):
    rs = RedisStore(redis, Keys("t"))
    for lease in ("a", "b"):
        assert rs.enter_waiter(1, "w1", lease, 100.0, 190.0, 2, 3) == 1
    assert rs.enter_waiter(1, "w1", "c", 100.0, 190.0, 2, 3) == -1  # the credential's cap
    assert rs.enter_waiter(1, "w2", "c", 100.0, 190.0, 2, 3) == 1
    assert rs.enter_waiter(1, "w3", "d", 100.0, 190.0, 2, 3) == -2  # the project's cap
    assert rs.enter_waiter(2, "w3", "d", 100.0, 190.0, 2, 3) == 1  # another project has its own
    rs.leave_waiter(1, "w1", "a")
    assert rs.enter_waiter(1, "w1", "e", 100.0, 190.0, 2, 3) == 1


def test_a_slot_whose_holder_died_frees_itself_when_its_lease_ends(redis):
    rs = RedisStore(redis, Keys("t"))
    assert rs.enter_waiter(1, "w1", "a", 100.0, 190.0, 1, 0) == 1
    assert rs.enter_waiter(1, "w1", "b", 150.0, 240.0, 1, 0) == -1
    rs.renew_waiter(1, "w1", "a", 300.0)  # an open websocket keeps its slot
    assert rs.enter_waiter(1, "w1", "b", 250.0, 340.0, 1, 0) == -1
    assert rs.enter_waiter(1, "w1", "b", 301.0, 391.0, 1, 0) == 1  # never left, never renewed again


def test_a_watch_beyond_the_credential_cap_gets_429_with_retry_after(capped):
    ana = _agent(capped, "ana")
    st = capped.extensions["beadwire"]
    held = [waiters.enter(st, ana.info["project"]["id"], f"w{ana.info['workspace']['id']}") for _ in range(2)]
    r = ana.get("/watch?timeout=0")
    assert r.status_code == 429
    assert r.json["error"]["code"] == "too_many_waiters"
    assert int(r.headers["Retry-After"]) == waiters.DEFAULT_RETRY_AFTER
    held[0].leave()
    assert ana.get("/watch?timeout=0").status_code == 200


def test_the_project_cap_counts_every_credential_and_chat_waits_too(capped):
    from tests.conftest import _agent_factory

    make = _agent_factory(capped.test_client())
    ana, bob = make(alias="ana"), make(alias="bob")
    st, project = capped.extensions["beadwire"], ana.info["project"]["id"]
    held = [waiters.enter(st, project, "w0") for _ in range(2)] + [waiters.enter(st, project, "key")]
    r = bob.get("/chat/wait?with=ana&timeout=0")
    assert r.status_code == 429 and "project" in r.json["error"]["message"]
    for slot in held:
        slot.leave()
    answer = bob.get("/chat/wait?with=ana&timeout=0")
    assert answer.status_code == 200
    answer.close()  # what the server does once the answer is sent
    assert st.redis.client.zcard(st.redis.keys.waiters_key(project)) == 0  # the waits gave theirs back


def test_a_websocket_beyond_the_cap_is_refused_before_the_upgrade(capped):
    ana = _agent(capped, "ana")
    st = capped.extensions["beadwire"]
    for _ in range(2):
        waiters.enter(st, ana.info["project"]["id"], f"w{ana.info['workspace']['id']}")
    r = ana.client.get("/v1/ws", headers={"Authorization": f"Bearer {ana.token}", "Upgrade": "websocket",
                                          "Connection": "Upgrade",
                                          "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
                                          "Sec-WebSocket-Version": "13"})
    assert r.status_code == 429 and r.headers["Retry-After"]


def test_many_waiters_share_a_bounded_pool_of_redis_connections_and_each_wakes_for_its_own_mailbox(
        real_redis, redis_server):
    from store.redis import DEFAULT_POOL_SIZE, make_client

    client = make_client(redis_server.url)
    rs, n = RedisStore(client, Keys("t")), 150
    before = len(real_redis.client_list())
    got: dict[int, object] = {}
    started = threading.Barrier(n + 1)

    def wait(ws: int) -> None:
        started.wait(10)
        try:
            got[ws] = rs.wait_mailbox(1, ws, "0-0", 30_000)
        except Exception as exc:  # noqa: BLE001 - reported by the assertions below
            got[ws] = exc

    threads = [threading.Thread(target=wait, args=(ws,), daemon=True) for ws in range(n)]
    for t in threads:
        t.start()
    started.wait(10)
    rs.publish(1, 1, "mail", '{"body": "hi"}', recipient_id=7, delivery_id=70)
    threads[7].join(15)
    assert [fields["id"] for _, fields in got[7]] == ["70"]
    assert list(got) == [7]  # nobody else was woken with anything, nor failed
    # 150 waiters at once, yet no more connections than the pool's cap and the wake-up listener's
    assert len(real_redis.client_list()) - before <= DEFAULT_POOL_SIZE + 1
    for ws in range(n):
        if ws != 7:
            rs.publish(1, 100 + ws, "mail", "{}", recipient_id=ws, delivery_id=1000 + ws)
    for t in threads:
        t.join(15)
    assert sorted(got) == list(range(n)) and all(isinstance(v, list) and len(v) == 1 for v in got.values())
    client.close()


def test_a_new_event_wakes_a_feed_that_waits_for_it(real_redis):
    rs = RedisStore(real_redis, Keys("t"))
    cursor = rs.last_event_id(1)
    with rs.event_feed(1) as feed:
        assert feed.read(cursor, 10) == []
        done = threading.Event()
        threading.Thread(
            target=lambda: (rs.add_event(1, "reservation.created", {"a": 1}), done.set())).start()
        events = []
        while not events:
            events = feed.read(cursor, 5000)
        assert [fields["kind"] for _, fields in events] == ["reservation.created"]


INIT = {"project": "newshop", "repo_origin": "git@github.com:acme/shop.git", "alias": "ana"}


def test_anyone_may_create_a_project_on_a_loopback_server(client):
    assert client.post("/v1/init", json=INIT).status_code == 201


@pytest.mark.parametrize("bound", ["0.0.0.0", "10.1.2.3", "::"])
def test_creating_a_project_on_a_server_bound_beyond_loopback_needs_the_admin_token(settings, redis, bound):
    from tests.conftest import _make_app

    app = _make_app(settings.with_(admin_token="bw_admin_s3cret"), redis)
    client, env = app.test_client(), {"SERVER_NAME": bound}
    refused = client.post("/v1/init", json=INIT, environ_overrides=env)
    assert refused.status_code == 403 and "admin token" in refused.json["error"]["message"]
    wrong = client.post("/v1/init", json=INIT, environ_overrides=env,
                        headers={"X-Wire-Admin-Token": "bw_admin_x"})
    assert wrong.status_code == 403
    made = client.post("/v1/init", json=INIT, environ_overrides=env,
                       headers={"X-Wire-Admin-Token": "bw_admin_s3cret"})
    assert made.status_code == 201
    # joining an existing project is unchanged: its key, no admin token
    key = made.json["project_key"]
    joined = client.post("/v1/init", json={**INIT, "alias": "bob"}, environ_overrides=env,
                         headers={"Authorization": f"Bearer {key}"})
    assert joined.status_code == 201


def test_open_sign_up_lets_anyone_create_a_project_on_an_exposed_server(settings, redis):
    from tests.conftest import _make_app

    app = _make_app(settings.with_(open_signup=True), redis)
    exposed = {"SERVER_NAME": "0.0.0.0"}
    assert app.test_client().post("/v1/init", json=INIT, environ_overrides=exposed).status_code == 201


def test_closed_sign_up_wants_the_admin_token_on_loopback_too(settings, redis):
    from tests.conftest import _make_app

    app = _make_app(settings.with_(open_signup=False), redis)
    assert app.test_client().post("/v1/init", json=INIT).status_code == 403


class _Scripted:
    """A CLI transport answering from a list of (status, JSON body, headers), recording what it got."""

    def __init__(self, *answers: tuple[int, object, dict]) -> None:
        self.answers, self.sent = list(answers), []

    def __call__(self, method, url, body, headers, timeout):
        import json

        self.sent.append((method, url, headers))
        status, payload, answer_headers = self.answers.pop(0)
        return status, json.dumps(payload).encode(), answer_headers


def test_wire_watch_backs_off_as_the_server_asks_when_it_holds_too_many_waiters(monkeypatch):
    import time

    from click.testing import CliRunner

    from cli import cli as wire
    from cli.client import Client

    refused = {"error": {"code": "too_many_waiters", "message": "this credential already holds 16 ...",
                         "retry_after": 15}}
    woken = {"items": [{"kind": "mail", "from": "bob", "subject": "hi"}], "waiting": []}
    transport = _Scripted((429, refused, {"Retry-After": "15"}), (429, refused, {"Retry-After": "15"}),
                          (200, woken, {}))
    pauses: list[float] = []
    monkeypatch.setattr(time, "sleep", pauses.append)  # the pauses are recorded, not waited
    client = Client("http://wire.test", token="bw_ws_x", transport=transport, auto_reserve=False)
    result = CliRunner().invoke(wire, ["watch", "--timeout", "600"], obj=client)
    assert result.exit_code == 0, result.output
    assert "bob" in result.output
    assert len(transport.sent) == 3
    # Retry-After, doubled on the second refusal, each with jitter down to half
    assert 7.5 <= pauses[0] <= 15 and 15 <= pauses[1] <= 30, pauses


def test_wire_init_sends_the_admin_token_when_given():
    from cli.client import ADMIN_TOKEN_HEADER, Client

    answer = {"project": {"slug": "p"}, "workspace": {"alias": "a"}, "token": "bw_ws_x"}
    transport = _Scripted((201, answer, {}))
    client = Client("http://wire.test", transport=transport, auto_reserve=False)
    client.init({"project": "p"}, None, "bw_admin_t")
    assert transport.sent[0][2][ADMIN_TOKEN_HEADER] == "bw_admin_t"
