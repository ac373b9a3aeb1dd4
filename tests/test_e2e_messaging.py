"""Messaging end to end, with faults: a real redis-server, a SQLite file (or PostgreSQL), and gunicorn
web processes and Dramatiq workers started one by one (tests/servers.py), so that a test can kill,
pause, restart or duplicate any of them. Every wait is a bounded poll; no assertion depends on timing.
"""

from __future__ import annotations

import http.client
import json
import signal
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlencode, urlparse

import pytest

from store.keys import MAILBOX_GROUP, Keys

pytestmark = pytest.mark.slow

#: Key builders of the servers' default namespace.
KEYS = Keys()
#: Seconds any bounded poll waits before the test fails.
DEFAULT_POLL_TIMEOUT = 30.0
#: Seconds a chat wait slice may last in these tests (a waiter returning empty means it timed out).
WAIT_SLICE = 20
#: Seconds a keep-alive connection may idle before we open a new one (gunicorn closes them after 2 s).
KEEPALIVE_S = 1.0


# ------------------------------------------------------------------------------------------ helpers


class Answer:
    def __init__(self, status: int, body: Any, banner: dict | None) -> None:
        self.status, self.json, self.banner = status, body, banner

    def __repr__(self) -> str:
        return f"<Answer {self.status} {str(self.json)[:200]}>"


class Api:
    """One agent's keep-alive HTTP connection to one web process (http.client, loopback only)."""

    #: Every connection made, closed by the fixtures' teardown (unclosed sockets warn, warnings fail).
    opened: ClassVar[list[Api]] = []

    def __init__(self, url: str, token: str = "") -> None:
        self.url, self.token = url, token
        #: None: calls do not confirm what they showed (each banner entry comes once). Else the newest
        #: entry shown, sent as `X-Wire-Seen` and moved on by every answer that arrives, as the CLI does.
        self.seen: str | None = None
        parsed = urlparse(url)
        self.conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=WAIT_SLICE + 15)
        self.used = 0.0
        Api.opened.append(self)

    @classmethod
    def close_all(cls) -> None:
        while cls.opened:
            cls.opened.pop().close()

    def close(self) -> None:
        self.conn.close()

    def call(self, method: str, path: str, body: dict | None = None, **query: Any) -> Answer:
        headers = {"Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if self.seen is not None:
            headers["X-Wire-Seen"] = self.seen
        target = f"/v1{path}" + (f"?{urlencode(query)}" if query else "")
        data = json.dumps(body) if body is not None else None
        if time.monotonic() - self.used > KEEPALIVE_S:
            self.conn.close()  # gunicorn drops idle keep-alive connections; never race it with a POST
        try:
            self.conn.request(method, target, body=data, headers=headers)
            response = self.conn.getresponse()
            raw = response.read()
            self.used = time.monotonic()
        except (http.client.HTTPException, OSError):
            self.conn.close()  # the next call reconnects
            raise
        banner = response.getheader("X-Wire-Banner")
        answer = Answer(response.status, json.loads(raw or b"null"), json.loads(banner) if banner else None)
        if self.seen is not None:
            entries = [i["entry"] for i in (answer.banner or {}).get("new", [])]
            self.seen = max([self.seen, *entries], key=lambda e: tuple(map(int, e.split("-"))))
        return answer

    def ok(self, method: str, path: str, body: dict | None = None, **query: Any) -> Any:
        answer = self.call(method, path, body, **query)
        assert answer.status in (200, 201), answer
        return answer.json


class Agent(Api):
    """An Api that knows whose it is: alias, workspace and project ids (for its Redis keys)."""

    def __init__(self, url: str, token: str, alias: str, ws_id: int, project_id: int) -> None:
        super().__init__(url, token)
        self.alias, self.ws_id, self.project_id = alias, ws_id, project_id

    @classmethod
    def from_init(cls, url: str, init: dict) -> Agent:
        ws = init["workspace"]
        return cls(url, init["token"], ws["alias"], int(ws["id"]), int(init["project"]["id"]))

    def on(self, url: str) -> Agent:
        return Agent(url, self.token, self.alias, self.ws_id, self.project_id)

    @property
    def mailbox(self) -> str:
        return KEYS.mailbox_key(self.project_id, self.ws_id)


def register(url: str, *aliases: str) -> list[Agent]:
    """Create project `shop` with the first alias and join the others with its key."""
    conn = Api(url)
    origin = "git@github.com:acme/shop.git"
    first = conn.ok("POST", "/init", {"project": "shop", "repo_origin": origin, "alias": aliases[0]})
    agents = [Agent.from_init(url, first)]
    conn.token = first["project_key"]
    for alias in aliases[1:]:
        joined = conn.ok("POST", "/init", {"project": "shop", "repo_origin": origin, "alias": alias})
        agents.append(Agent.from_init(url, joined))
    conn.close()
    return agents


def poll(condition: Callable[[], Any], what: str, timeout: float = DEFAULT_POLL_TIMEOUT,
         every: float = 0.05) -> Any:
    """Call `condition` until it returns something truthy (returned); fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(every)


def stream_deliveries(redis, key: str) -> list[tuple[int, dict]]:
    """(delivery id, data) of every entry of a mailbox stream, oldest first."""
    return [(int(fields["id"]), json.loads(fields["data"])) for _, fields in redis.xrange(key)]


def blocked_readers(redis, project_id: int = 1) -> int:
    """Web processes subscribed to the project's wake channel right now: a chat waiter subscribes before
    it reads its mailbox, and a killed process's subscription goes with its connection (store/wakeups.py)."""
    return sum(count for _, count in redis.pubsub_numsub(KEYS.wake_channel(project_id)))


def broker_idle(redis) -> bool:
    """True when the Dramatiq queue holds no message, queued or in flight (dramatiq's Redis layout)."""
    return redis.hlen("bw:dramatiq:default.msgs") == 0


class Deployment:
    """One Redis and one database shared by web, worker and clock processes this test starts."""

    def __init__(self, tmp_path: Path, database_url: str, persist: bool = False) -> None:
        from store.redis import make_client
        from tests.servers import run_release, start_redis

        self.tmp = tmp_path
        self.database_url = database_url
        self.processes: list = []
        self.redis_server = start_redis(tmp_path, persist=persist)  # persist: AOF, so a restart keeps data
        self.redis = make_client(self.redis_server.url)
        self.env = {"REDIS_URL": self.redis_server.url, "DATABASE_URL": database_url,
                    "BEADWIRE_DATA_DIR": str(tmp_path)}
        try:
            run_release(self.env)
        except BaseException:
            self.close()
            raise

    def web(self, port: int | None = None):
        from tests.servers import free_port, start_web

        return self._keep(start_web(self.tmp, port or free_port(), self.env))

    def worker(self):
        from tests.servers import start_worker

        return self._keep(start_worker(self.tmp, self.env))

    def clock(self):
        from tests.servers import start_clock

        return self._keep(start_clock(self.tmp, self.env))

    def _keep(self, proc):
        self.processes.append(proc)
        return proc

    def sql(self, query: str, *params: Any) -> list[tuple]:
        """Read the database directly (`?` placeholders), to compare Redis with the truth."""
        if not self.database_url.startswith("sqlite"):
            import psycopg2

            connection = psycopg2.connect(self.database_url, connect_timeout=5)
            with closing(connection) as conn, conn.cursor() as cur:
                cur.execute(query.replace("?", "%s"), params)
                return list(cur.fetchall())
        path = self.database_url.removeprefix("sqlite:///")
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)) as conn:
            return list(conn.execute(query, params))

    def logs(self) -> str:
        return "\n".join(f"--- {p.name} ({p.log}):\n{p.log.read_text(errors='replace')[-3000:]}"
                         for p in self.processes if p.log.exists())

    def close(self) -> None:
        Api.close_all()
        # all at once: each may take seconds (Dramatiq's consumers notice the stop between fetches)
        stoppers = [threading.Thread(target=proc.stop) for proc in self.processes]
        for t in stoppers:
            t.start()
        for t in stoppers:
            t.join()
        self.redis.close()
        self.redis_server.stop()


def _deployment(tmp_path: Path, database_url: str):
    return Deployment(tmp_path, database_url)


@pytest.fixture
def deployment(tmp_path: Path):
    """On SQLite: a file shared by every process of the test."""
    d = _deployment(tmp_path, f"sqlite:///{tmp_path / 'beadwire.db'}")
    yield d
    d.close()


@pytest.fixture
def any_db_deployment(tmp_path: Path, database_url: str):
    """On SQLite and on PostgreSQL (conftest's `database_url`)."""
    d = _deployment(tmp_path, database_url)
    yield d
    d.close()


# -------------------------------------------------------------------------------------------- mail


def send_burst(sender: Agent, urls: list[str], threads: int, per_thread: int) -> list[int]:
    """`threads` × `per_thread` mails from `sender` to bob, thread k through `urls[k % len(urls)]`;
    the ids of every mail acknowledged, sorted (asserts that all were)."""
    sent: list[list[int]] = [[] for _ in range(threads)]

    def send(k: int) -> None:
        api = sender.on(urls[k % len(urls)])
        for i in range(per_thread):
            body = {"to": "bob", "subject": f"t{k}-{i}", "body": f"burst mail {k}-{i}"}
            sent[k].append(api.ok("POST", "/mail", body)["message"]["id"])
        api.close()

    senders = [threading.Thread(target=send, args=(k,)) for k in range(threads)]
    for t in senders:
        t.start()
    for t in senders:
        t.join(60)
    message_ids = sorted(i for part in sent for i in part)
    assert len(message_ids) == threads * per_thread
    return message_ids


def test_mail_shows_once_through_the_consumer_group_and_opening_it_empties_the_mailbox(deployment):
    web = deployment.web()
    deployment.worker()
    ana, bob = register(web.url, "ana", "bob")
    sent = [ana.ok("POST", "/mail", {"to": "bob", "subject": f"m{i}", "body": f"mail {i}"})["message"]["id"]
            for i in range(20)]

    shown: list[int] = []
    last: list[dict | None] = [None]

    def all_shown() -> bool:
        last[0] = bob.call("GET", "/whoami").banner
        shown.extend(item["id"] for item in (last[0] or {}).get("new", []))
        return len(shown) >= len(sent)

    poll(all_shown, "bob's banner to show 20 mails")
    for _ in range(3):  # shown once: later calls carry nothing new, only the unread count
        last[0] = bob.call("GET", "/whoami").banner
        shown.extend(item["id"] for item in last[0]["new"])
    assert sorted(shown) == sorted(sent), Counter(shown)
    assert last[0]["unread"] == 20

    opened = bob.ok("POST", "/mail/open", {})
    assert sorted(m["id"] for m in opened) == sorted(sent)
    assert deployment.redis.xpending(bob.mailbox, MAILBOX_GROUP)["pending"] == 0
    assert deployment.redis.xlen(bob.mailbox) == 0
    assert bob.ok("GET", "/mail", unread=1) == []
    assert bob.call("GET", "/whoami").banner is None


def test_a_worker_killed_mid_delivery_loses_and_duplicates_nothing(deployment):
    # every delivery through the worker (the web's fast path off), so the kill hits deliveries
    deployment.env["BEADWIRE_PUBLISH_INLINE"] = "0"
    web = deployment.web()
    worker = deployment.worker()
    ana, bob = register(web.url, "ana", "bob")
    redis = deployment.redis
    bob.ok("GET", "/whoami")  # the project's first calls: the mailbox rebuild is enqueued now, not later
    ana.ok("GET", "/whoami")
    poll(lambda: broker_idle(redis), "the worker to drain its queue")

    worker.signal(signal.SIGSTOP)  # the queue fills while the worker cannot take anything
    threads, per_thread = 6, 50
    message_ids = send_burst(ana, [web.url], threads, per_thread)
    assert redis.xlen(bob.mailbox) == 0

    worker.signal(signal.SIGCONT)
    poll(lambda: redis.xlen(bob.mailbox) >= 5, "the worker to start delivering", every=0.001)
    worker.kill()  # SIGKILL of the whole group while deliveries are in flight
    in_stream_at_kill = redis.xlen(bob.mailbox)
    assert in_stream_at_kill < len(message_ids), "the kill came after every delivery: nothing was in flight"

    undelivered_sql = ("SELECT COUNT(*) FROM outbox WHERE delivery_id IN "
                       "(SELECT id FROM delivery WHERE recipient_id = ?) AND delivered_ts IS NULL")
    undelivered_at_kill = deployment.sql(undelivered_sql, bob.ws_id)[0][0]
    killed_at = time.monotonic()
    deployment.worker()
    deployment.clock()  # its redelivery sweep re-enqueues what the dead worker held
    deliveries = {d for (d,) in deployment.sql("SELECT id FROM delivery WHERE recipient_id = ?", bob.ws_id)}
    assert len(deliveries) == len(message_ids)

    def recovered() -> bool:
        return (redis.xlen(bob.mailbox) >= len(deliveries)
                and deployment.sql(undelivered_sql, bob.ws_id)[0][0] == 0)

    poll(recovered, f"all {len(deliveries)} deliveries ({in_stream_at_kill} in the stream at the kill)",
         timeout=60, every=0.2)
    print(f"at the kill: {in_stream_at_kill} in the stream, {undelivered_at_kill} outbox rows undelivered; "
          f"all delivered {time.monotonic() - killed_at:.1f} s later")

    entries = stream_deliveries(redis, bob.mailbox)
    ids = [d for d, _ in entries]
    assert Counter(ids).most_common(1)[0][1] == 1, (
        f"duplicates: {[d for d, n in Counter(ids).items() if n > 1]}")
    assert set(ids) == deliveries
    assert all(data["delivery"] == d for d, data in entries)
    assert sorted(data["id"] for _, data in entries) == message_ids
    unread = bob.call("GET", "/mail", unread=1, limit=1000)
    assert sorted(m["id"] for m in unread.json) == message_ids
    shown = [item["id"] for item in unread.banner["new"]]  # every call's heartbeat shows what is new
    poll(lambda: shown.extend(i["id"] for i in bob.call("GET", "/whoami").banner["new"]) or
         len(shown) >= len(message_ids), "bob's banner to show every mail")
    assert sorted(shown) == message_ids  # each once


def test_after_flushall_the_unread_mail_is_rebuilt_from_sql_and_the_acked_never_returns(deployment):
    web = deployment.web()
    deployment.worker()
    ana, bob = register(web.url, "ana", "bob")
    redis = deployment.redis
    bob.ok("GET", "/whoami")  # the project's first call asks for the (empty) mailbox rebuild...
    poll(lambda: any(k.endswith(":epoch") for k in redis.keys("*")), "the first rebuild to finish")  # ...done
    sent = [ana.ok("POST", "/mail", {"to": "bob", "body": f"mail {i}"})["message"]["id"] for i in range(5)]
    poll(lambda: redis.xlen(bob.mailbox) == 5, "the 5 mails in bob's mailbox")
    acked, unread = sent[:2], sent[2:]
    for message_id in acked:
        assert bob.ok("POST", f"/mail/{message_id}/ack") == {"id": message_id, "acked": True}
    assert sorted(data["id"] for _, data in stream_deliveries(redis, bob.mailbox)) == unread

    redis.flushall()
    shown: list[int] = []
    answer = bob.call("GET", "/whoami")  # any call: the epoch is gone, so the mailboxes are rebuilt
    assert answer.status == 200
    shown.extend(item["id"] for item in (answer.banner or {}).get("new", []))
    poll(lambda: redis.xlen(bob.mailbox) >= 3, "bob's mailbox to be rebuilt")

    entries = stream_deliveries(redis, bob.mailbox)
    unread_deliveries = {d for (d,) in deployment.sql(
        "SELECT d.id FROM delivery d WHERE d.recipient_id = ? AND d.acked_ts IS NULL", bob.ws_id)}
    assert {d for d, _ in entries} == unread_deliveries and len(entries) == 3
    assert sorted(data["id"] for _, data in entries) == unread

    watched = bob.call("GET", "/watch", timeout=5)
    assert sorted(item["id"] for item in watched.json["items"]) == unread
    shown.extend(item["id"] for item in watched.banner["new"])
    assert watched.banner["unread"] == 3
    assert sorted(m["id"] for m in bob.ok("GET", "/mail", unread=1)) == unread
    for _ in range(3):
        answer = bob.call("GET", "/whoami")
        shown.extend(item["id"] for item in answer.banner["new"])
    assert sorted(shown) == unread  # shown once each; the acked two never again
    assert sorted(data["id"] for _, data in stream_deliveries(redis, bob.mailbox)) == unread


# -------------------------------------------------------------------------------------------- chat


def _ask(ana: Agent) -> dict:
    asked = ana.ok("POST", "/chat", {"to": "bob", "body": "which port?", "wait": 120})
    return {"with": "bob", "after": asked["message"]["id"], "cursor": asked["cursor"], "timeout": WAIT_SLICE}


def _waiter(ana: Agent, url: Callable[[], str], query: dict, result: dict) -> threading.Thread:
    """ana's CLI loop: wait for bob; when the web process goes away, resume with the same after + cursor."""

    def run() -> None:
        deadline = time.monotonic() + 2 * WAIT_SLICE
        result["attempts"] = 0
        while time.monotonic() < deadline:
            result["attempts"] += 1
            api = ana.on(url())
            try:
                result["answer"] = api.call("GET", "/chat/wait", **query)
                result["returned"] = time.perf_counter()
                return
            except (http.client.HTTPException, OSError) as exc:
                result.setdefault("errors", []).append(repr(exc))
                time.sleep(0.05)
            finally:
                api.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _reply(deployment: Deployment, bob_b: Agent) -> float:
    """bob (seeing that ana waits on him) answers through web B; returns when the POST started."""
    waiting = bob_b.call("GET", "/whoami").banner
    assert [w["alias"] for w in waiting["waiting"]] == ["ana"]
    started = time.perf_counter()
    bob_b.ok("POST", "/chat", {"to": "ana", "body": "8765"})
    return started


def _collect(deployment: Deployment, thread: threading.Thread, result: dict, started: float,
             record_property) -> None:
    thread.join(2 * WAIT_SLICE + 10)
    assert "answer" in result, f"the waiter never returned: {result}\n{deployment.logs()}"
    answer = result["answer"]
    assert answer.status == 200, answer
    # an empty answer would mean the slice timed out: it must come back with the reply
    assert [(m["from"], m["body"]) for m in answer.json["messages"]] == [("bob", "8765")]
    latency_ms = (result["returned"] - started) * 1000
    record_property("reply_to_waiter_ms", round(latency_ms, 1))
    print(f"reply -> waiter across web processes: {latency_ms:.1f} ms")


def test_a_reply_through_another_web_process_wakes_the_waiter(any_db_deployment, record_property):
    deployment = any_db_deployment
    web_a, web_b = deployment.web(), deployment.web()
    deployment.worker()
    ana, bob = register(web_a.url, "ana", "bob")
    result: dict = {}
    thread = _waiter(ana, lambda: web_a.url, _ask(ana), result)
    poll(lambda: blocked_readers(deployment.redis, ana.project_id) >= 1,
         "ana's waiter to subscribe to its wake-ups")
    started = _reply(deployment, bob.on(web_b.url))
    _collect(deployment, thread, result, started, record_property)
    assert result["attempts"] == 1


@pytest.mark.parametrize("reply", ["after_the_restart", "while_the_process_is_down"])
def test_a_waiter_resumes_on_its_restarted_web_process_and_still_gets_the_reply(deployment, record_property,
                                                                                reply):
    web_a, web_b = deployment.web(), deployment.web()
    deployment.worker()
    ana, bob = register(web_a.url, "ana", "bob")
    bob_b = bob.on(web_b.url)
    port = urlparse(web_a.url).port
    current = {"web_a": web_a}
    result: dict = {}
    thread = _waiter(ana, lambda: current["web_a"].url, _ask(ana), result)
    poll(lambda: blocked_readers(deployment.redis, ana.project_id) >= 1,
         "ana's waiter to subscribe to its wake-ups")

    web_a.kill()  # mid-wait: the waiter's connection drops
    poll(lambda: blocked_readers(deployment.redis, ana.project_id) == 0,
         "the dead process's subscription to go away")
    if reply == "while_the_process_is_down":  # nobody listens when it lands: found in SQL on resume
        started = _reply(deployment, bob_b)
        current["web_a"] = deployment.web(port)
    else:
        current["web_a"] = deployment.web(port)  # restarted on the same address
        poll(lambda: blocked_readers(deployment.redis, ana.project_id) >= 1, "the resumed wait to subscribe")
        started = _reply(deployment, bob_b)
    _collect(deployment, thread, result, started, record_property)
    assert result["attempts"] >= 2, result  # it really resumed on the restarted process
