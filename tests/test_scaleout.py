"""Proof of scale-out: two gunicorn web processes and two Dramatiq workers (plus the clock) on one
PostgreSQL and one Redis, once on a single redis-server and once on a three-node Redis Cluster
started on loopback. The same assertions run on both: nothing a process needs lives only in another
process's memory, and on the cluster no multi-key operation crosses a hash slot (a CROSSSLOT
error would surface as a 503 or a failed delivery).

Every delivery goes through the workers here (`BEADWIRE_PUBLISH_INLINE=0`), so the workers, not the
web processes, carry events to mailboxes and to the websocket feed. One deployment per Redis
flavour serves the whole module (each test uses its own project); the worker-kill test runs last.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlparse

import pytest

from store.keys import Keys
from tests.test_e2e_messaging import Agent, Api, poll, send_burst, stream_deliveries

pytestmark = [pytest.mark.slow, pytest.mark.pg]

#: Key builders of the servers' default namespace.
KEYS = Keys()
#: Claim race: rounds, and agents racing in each (half through each web process).
ROUNDS, RACERS = 10, 10
#: Seconds a chat wait slice lasts here (an empty answer would mean it timed out).
WAIT_SLICE = 20


class ScaleOut:
    """One PostgreSQL database and one Redis (or Redis Cluster) shared by two web processes, two
    workers and a clock, each started as the Procfile would (tests/servers.py)."""

    def __init__(self, tmp: Path, database_url: str, redis_url: str, cluster: bool) -> None:
        from store.redis import make_client
        from tests.servers import run_release

        self.tmp, self.cluster = tmp, cluster
        self.redis = make_client(redis_url, cluster)
        self.env = {"REDIS_URL": redis_url, "DATABASE_URL": database_url, "BEADWIRE_DATA_DIR": str(tmp),
                    "BEADWIRE_PUBLISH_INLINE": "0", "BEADWIRE_REDIS_CLUSTER": "1" if cluster else "0"}
        self.webs: list = []
        self.workers: list = []
        self.others: list = []
        run_release(self.env)

    def start(self) -> ScaleOut:
        from tests.servers import free_port, start_clock, start_web, start_worker

        self.webs = [start_web(self.tmp, free_port(), self.env) for _ in range(2)]
        self.workers = [start_worker(self.tmp, self.env) for _ in range(2)]
        self.others = [start_clock(self.tmp, self.env)]
        return self

    def add_worker(self) -> None:
        from tests.servers import start_worker

        self.workers.append(start_worker(self.tmp, self.env))

    @property
    def processes(self) -> list:
        return [*self.webs, *self.workers, *self.others]

    def logs(self) -> str:
        return "\n".join(f"--- {p.name} ({p.log}):\n{p.log.read_text(errors='replace')[-3000:]}"
                         for p in self.processes if p.log.exists())

    def blocked_readers(self, project_id: int = 1) -> int:
        """Waiters (chat waits, watches, websockets) the project holds right now: each holds a slot in
        the project's waiter set from before it reads until it leaves (store/waiters.py)."""
        return int(self.redis.zcard(KEYS.waiters_key(project_id)))

    def close(self) -> None:
        Api.close_all()
        stoppers = [threading.Thread(target=proc.stop) for proc in self.processes]
        for t in stoppers:
            t.start()
        for t in stoppers:
            t.join()
        if self.cluster:
            for node in self.redis.get_nodes():
                node.redis_connection.connection_pool.disconnect()
        self.redis.close()


@pytest.fixture(scope="module", params=["redis", "cluster"])
def scaleout(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    from tests.servers import start_redis

    tmp = tmp_path_factory.mktemp(f"scaleout-{request.param}")
    pg = request.getfixturevalue("pg_server")
    database_url = pg.create_database(f"scaleout_{request.param}")
    if request.param == "cluster":
        redis_server, url = None, request.getfixturevalue("redis_cluster").url
    else:
        redis_server = start_redis(tmp)
        url = redis_server.url
    deployment = ScaleOut(tmp, database_url, url, request.param == "cluster")
    try:
        yield deployment.start()
    finally:
        deployment.close()
        if redis_server is not None:
            redis_server.stop()


def register(url: str, project: str, *aliases: str) -> list[Agent]:
    """Create `project` with the first alias and join the others with its key, through `url`."""
    conn = Api(url)
    origin = f"git@github.com:acme/{project}.git"
    first = conn.ok("POST", "/init", {"project": project, "repo_origin": origin, "alias": aliases[0]})
    agents = [Agent.from_init(url, first)]
    conn.token = first["project_key"]
    for alias in aliases[1:]:
        joined = conn.ok("POST", "/init", {"project": project, "repo_origin": origin, "alias": alias})
        agents.append(Agent.from_init(url, joined))
    conn.close()
    return agents


def test_a_claim_race_across_both_web_processes_has_exactly_one_winner(scaleout):
    web1, web2 = (w.url for w in scaleout.webs)
    agents = register(web1, "race", *(f"agent-{i}" for i in range(RACERS)))
    racers = [a.on(web1 if i % 2 == 0 else web2) for i, a in enumerate(agents)]
    results: list[Any] = [None] * RACERS
    barrier = threading.Barrier(RACERS)

    def race(i: int, path: str) -> None:
        barrier.wait()
        results[i] = racers[i].call("POST", path)

    for round_no in range(ROUNDS):
        bead = agents[0].ok("POST", "/beads", {"title": f"round {round_no}"})["id"]
        path = f"/beads/{quote(bead, safe='')}/claim"
        threads = [threading.Thread(target=race, args=(i, path)) for i in range(RACERS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        statuses = sorted(r.status for r in results)
        assert statuses == [200] + [409] * (RACERS - 1), (round_no, statuses, scaleout.logs())
        winner = next(i for i, r in enumerate(results) if r.status == 200)
        for other in (racers[1], racers[0]):  # both processes see the same holder
            assert other.ok("GET", f"/beads/{quote(bead, safe='')}")["claim"]["alias"] == f"agent-{winner}"


def test_a_dashboard_websocket_on_web_1_sees_a_claim_made_through_web_2(scaleout):
    import simple_websocket

    web1, web2 = (w.url for w in scaleout.webs)
    ana, bob = register(web1, "feed", "ana", "bob")
    bead = ana.ok("POST", "/beads", {"title": "watched from the other process"})["id"]
    port = urlparse(web1).port
    ws = simple_websocket.Client.connect(f"ws://127.0.0.1:{port}/v1/ws",
                                         headers={"Authorization": f"Bearer {ana.token}"})
    try:
        bob.on(web2).ok("POST", f"/beads/{quote(bead, safe='')}/claim")
        seen: list[dict] = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            raw = ws.receive(timeout=1)
            if raw is None:
                continue
            event = json.loads(raw)
            seen.append(event)
            if event["kind"] == "claim.created" and bead in json.dumps(event["data"]):
                break
        else:
            pytest.fail(f"no claim.created for {bead} on web 1's socket; saw {[e['kind'] for e in seen]}")
        assert event["id"] and "bob" in json.dumps(event["data"])
    finally:
        ws.close()


def test_a_chat_waiter_on_web_1_gets_the_reply_posted_to_web_2(scaleout):
    web1, web2 = (w.url for w in scaleout.webs)
    ana, bob = register(web1, "chat", "ana", "bob")
    asked = ana.ok("POST", "/chat", {"to": "bob", "body": "which port?", "wait": 120})
    query = {"with": "bob", "after": asked["message"]["id"], "cursor": asked["cursor"], "timeout": WAIT_SLICE}
    result: dict = {}

    def wait() -> None:
        api = ana.on(web1)
        result["answer"] = api.call("GET", "/chat/wait", **query)

    # a closed websocket gives its waiter slot back as its handler ends: start from none held
    poll(lambda: scaleout.blocked_readers(ana.project_id) == 0, "no waiter held (the websocket closed)")
    waiter = threading.Thread(target=wait, daemon=True)
    waiter.start()
    poll(lambda: scaleout.blocked_readers(ana.project_id) >= 1, "ana's waiter to wait on web 1")
    bob_on_2 = bob.on(web2)
    assert [w["alias"] for w in bob_on_2.call("GET", "/whoami").banner["waiting"]] == ["ana"]
    bob_on_2.ok("POST", "/chat", {"to": "ana", "body": "8765"})
    waiter.join(WAIT_SLICE + 15)
    answer = result.get("answer")
    assert answer is not None and answer.status == 200, (answer, scaleout.logs())
    assert [(m["from"], m["body"]) for m in answer.json["messages"]] == [("bob", "8765")]


def test_metrics_on_either_web_process_count_the_requests_of_both(scaleout):
    import urllib.request

    web1, web2 = (w.url for w in scaleout.webs)
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    sample = 'beadwire_http_requests_total{method="GET",route="/v1/whoami",status="200"} '

    def whoami_count(url: str) -> float:
        text = direct.open(f"{url}/metrics", timeout=10).read().decode()
        counts = (float(line.split(" ")[-1]) for line in text.splitlines() if line.startswith(sample))
        return next(counts, 0.0)

    (ana,) = register(web1, "metrics", "ana")
    before = whoami_count(web1)
    on_2 = ana.on(web2)
    for _ in range(7):
        on_2.ok("GET", "/whoami")
    # web 2 adds its counts to Redis within a flush period (on its next request, or its own scrape)
    poll(lambda: on_2.ok("GET", "/whoami") and whoami_count(web1) >= before + 7,
         "web 1's /metrics to count web 2's requests", every=0.5)
    online = ["beadwire_online_workspaces" in direct.open(f"{u}/metrics", timeout=10).read().decode()
              for u in (web1, web2)]
    assert online == [True, True]


def test_killing_one_worker_mid_burst_loses_and_duplicates_no_delivery(scaleout):
    web1, web2 = (w.url for w in scaleout.webs)
    ana, bob = register(web1, "burst", "ana", "bob")
    redis = scaleout.redis
    bob.ok("GET", "/whoami")  # the project's first calls ask for its mailbox rebuild: let it finish first
    ana.ok("GET", "/whoami")
    poll(lambda: redis.exists(KEYS.epoch_key(bob.project_id)), "the project's first mailbox rebuild")
    for worker in scaleout.workers:
        worker.signal(signal.SIGSTOP)  # the queue fills while no worker can take anything
    threads, per_thread = 4, 40
    message_ids = send_burst(ana, [web1, web2], threads, per_thread)
    assert redis.xlen(bob.mailbox) == 0  # nothing delivered by the web processes themselves

    victim = scaleout.workers.pop(0)
    for worker in [victim, *scaleout.workers]:
        worker.signal(signal.SIGCONT)
    poll(lambda: redis.xlen(bob.mailbox) >= 5, "the workers to start delivering", every=0.001)
    victim.kill()  # SIGKILL of its whole group while deliveries are in flight
    at_kill = redis.xlen(bob.mailbox)
    assert at_kill < len(message_ids), "the kill came after every delivery: nothing was in flight"
    scaleout.add_worker()  # the module's later users keep two workers

    # the survivor drains the queue; the clock's redelivery sweep covers what the dead one held
    poll(lambda: redis.xlen(bob.mailbox) >= len(message_ids),
         f"all {len(message_ids)} deliveries ({at_kill} in the mailbox at the kill)", timeout=90, every=0.2)
    entries = stream_deliveries(redis, bob.mailbox)
    counts = Counter(data["id"] for _, data in entries)
    assert [m for m, n in counts.items() if n > 1] == []
    assert sorted(counts) == message_ids
    unread = bob.on(web2).call("GET", "/mail", unread=1, limit=1000)
    assert sorted(m["id"] for m in unread.json) == message_ids
